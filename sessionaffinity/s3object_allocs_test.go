//go:build !race

package sessionaffinity

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestS3ObjectDoesNotAllocate: the s3_object source, bounded load
// included, allocates nothing per request (path and virtual-host style).
func TestS3ObjectDoesNotAllocate(t *testing.T) {
	pool := newPool(addrs(6)...)
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{
		{Type: "query", Names: []string{"sessionid"}}, {Type: "s3_multipart"},
		{Type: "query", Names: []string{"uploadid"}}, {Type: "s3_object", Domains: []string{"s3.example.com"}}, {Type: "fingerprint"}}})
	for _, host := range []string{"", "bucket.s3.example.com"} {
		r := benchRequest("/bucket/some/object.bin?" + presign)
		if host != "" {
			r = benchRequest("/some/object.bin?" + presign)
			r.Host = host
		}
		allocs := testing.AllocsPerRun(200, func() {
			if p.Select(pool, r, nil) == nil {
				t.Fatal("no upstream")
			}
		})
		assert.Zero(t, allocs, "host %q", host)
	}
}
