package sessionaffinity

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// presign is the query of a realistic presigned S3 URL (SigV4).
const presign = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

// benchRequest is a GET of an object with a presigned query carrying a
// session id, with the headers a real S3 client sends, prepared as Caddy's
// server prepares requests.
func benchRequest(target string) *http.Request {
	return caddyRequest("GET", target, "203.0.113.7", http.Header{
		"User-Agent":      {"aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/s3#1.58.2"},
		"Accept-Language": {"en-US,en;q=0.9"},
		"X-Session-Id":    {"4f9c2a7e-8d1b-4c3e-9a6f-2b7d5e8c1a0f"},
		"Cookie":          {"_ga=GA1.2.123456789.1700000000; theme=dark; sid=4f9c2a7e-8d1b-4c3e-9a6f-2b7d5e8c1a0f; lang=en"},
		"X-Amz-Date":      {"20250101T000000Z"},
	})
}

type benchCase struct {
	name   string
	policy reverseproxy.Selector
	req    *http.Request
	prep   func(pool reverseproxy.UpstreamPool, r *http.Request) // e.g. mark a failed attempt
}

func benchCases(b *testing.B) []benchCase {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	stock := &reverseproxy.QueryHashSelection{Key: "sessionid"}
	if err := stock.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	ours := func(srcs ...Source) *SessionAffinitySelection {
		return provisioned(b, &SessionAffinitySelection{Salt: "bench-salt", Sources: srcs})
	}
	object := "/bucket/some/object.bin?" + presign + "&sessionid=4f9c2a7e-8d1b-4c3e-9a6f-2b7d5e8c1a0f"
	part := "/bucket/some/object.bin?partNumber=7&uploadId=" +
		"ZDQ4ZjE1ZjMtOTk2Ni00MWJlLWE5ODQtYzk0ZGE1YjQ0ZDM2Lj" + "&" + presign
	noID := "/bucket/some/object.bin?" + presign
	return []benchCase{
		{name: "stock_query", policy: stock, req: benchRequest(object)},
		{name: "stock_client_ip_hash", policy: reverseproxy.ClientIPHashSelection{}, req: benchRequest(noID)},
		{name: "query", policy: ours(Source{Type: "query", Names: []string{"sessionid"}}), req: benchRequest(object)},
		{name: "default_chain", policy: ours(), req: benchRequest(object)},
		{name: "header", policy: ours(Source{Type: "header", Names: []string{"X-Session-Id"}}), req: benchRequest(noID)},
		{name: "cookie", policy: ours(Source{Type: "cookie", Names: []string{"sid"}}), req: benchRequest(noID)},
		{name: "s3_multipart", policy: ours(Source{Type: "s3_multipart"}), req: benchRequest(part)},
		{name: "fingerprint", policy: ours(Source{Type: "fingerprint"}), req: benchRequest(noID)},
		{name: "retry", policy: ours(), req: benchRequest(object), prep: func(pool reverseproxy.UpstreamPool, r *http.Request) {
			p := provisioned(b, &SessionAffinitySelection{Salt: "bench-salt"})
			clearAttempts(r) // -count > 1 runs prep again on the same request
			markAttempt(r, p.Select(pool, r, nil).Dial)
		}},
	}
}

// BenchmarkSelect compares our policy, per key source, with Caddy's own
// query and client_ip_hash policies:
//
//	go test -run '^$' -bench . -benchmem ./sessionaffinity/
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{3, 6, 16, 64} {
		pool := newPool(addrs(n)...)
		for _, bc := range benchCases(b) {
			b.Run(fmt.Sprintf("upstreams=%d/policy=%s", n, bc.name), func(b *testing.B) {
				if bc.prep != nil {
					bc.prep(pool, bc.req)
				}
				if bc.policy.Select(pool, bc.req, nil) == nil {
					b.Fatal("no upstream selected")
				}
				b.ReportAllocs()
				for b.Loop() {
					bc.policy.Select(pool, bc.req, nil)
				}
			})
		}
	}
}
