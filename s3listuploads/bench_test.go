package s3listuploads

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// presign is the query of a presigned S3 URL (SigV4).
const presign = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

// BenchmarkPassThrough is the cost the handler adds to every request that
// is not a bucket-wide ListMultipartUploads (baseline: calling next only):
//
//	go test -run '^$' -bench PassThrough -benchmem ./s3listuploads/
func BenchmarkPassThrough(b *testing.B) {
	l := &ListUploads{Pool: "s3"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := l.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()
	for _, tc := range []struct{ name, method, target string }{
		{"get_object", "GET", "/bucket/some/object.bin"},
		{"get_object_presigned", "GET", "/bucket/some/object.bin?" + presign},
		{"put_part", "PUT", "/bucket/some/object.bin?partNumber=7&uploadId=ZDQ4ZjE1ZjMtOTk2Ni00MWJlLWE5ODQtYzk0ZGE1YjQ0ZDM2Lj"},
		{"list_objects_v2", "GET", "/bucket?list-type=2&prefix=some%2F&delimiter=%2F"},
		{"list_parts", "GET", "/bucket/some/object.bin?uploadId=ZDQ4ZjE1ZjMtOTk2Ni00MWJlLWE5ODQtYzk0ZGE1YjQ0ZDM2Lj"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		b.Run("baseline/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = next.ServeHTTP(w, r)
			}
		})
		b.Run("handler/"+tc.name, func(b *testing.B) {
			if l.isListUploads(r) {
				b.Fatal("classified as a listing")
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = l.ServeHTTP(w, r, next)
			}
		})
	}
}
