//go:build !race

package sessionaffinity

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSelectDoesNotAllocate checks the zero-allocation promise for every key
// source with default options (placeholders and response header off). The
// race detector changes allocation behaviour, hence the build tag.
func TestSelectDoesNotAllocate(t *testing.T) {
	pool := newPool(addrs(6)...)
	cases := []struct {
		name    string
		sources []Source
		target  string
		weights map[string]int
		bounded float64
		retry   bool
	}{
		{name: "query", sources: []Source{{Type: "query", Names: []string{"sessionid"}}}, target: "/b/o?" + presign + "&sessionId=a%62c"},
		{name: "header", sources: []Source{{Type: "header", Names: []string{"X-Session-Id"}}}, target: "/b/o"},
		{name: "cookie", sources: []Source{{Type: "cookie", Names: []string{"sid"}}}, target: "/b/o"},
		{name: "s3_multipart", sources: []Source{{Type: "s3_multipart", Scope: "bucket", Domains: []string{"s3.example.com"}}}, target: "/b/o?uploadId=x"},
		{name: "fingerprint", sources: []Source{{Type: "fingerprint", Placeholders: []string{
			"{http.vars.client_ip}", "{http.request.remote.host}", "{http.request.header.User-Agent}",
			"{http.request.cookie.sid}", "{http.request.uri.query.x}"}}}, target: "/b/o?x=1"},
		{name: "default chain to fingerprint", target: "/b/o?" + presign},
		{name: "weighted", target: "/b/o?sessionid=1", weights: map[string]int{addrs(6)[0]: 3}},
		{name: "bounded load", target: "/b/o?sessionid=1", bounded: 1.25},
		{name: "retry", target: "/b/o?sessionid=1", retry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: tc.sources, Weights: tc.weights, BoundedLoad: tc.bounded})
			r := benchRequest(tc.target)
			if tc.retry {
				markAttempt(r, p.Select(pool, r, nil).Dial)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if p.Select(pool, r, nil) == nil {
					t.Fatal("no upstream")
				}
			})
			assert.Zero(t, allocs)
		})
	}
}
