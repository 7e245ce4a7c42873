package s3headers

import (
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/stretchr/testify/assert"
)

// benchWriter is a ResponseWriter that does nothing but keep a header map,
// so a benchmark measures the wrapper and the rewrite only.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

// minioHeaders is the header map of a MinIO GET response (as seen in
// TestBoto3MetadataThroughCaddy) after reverse_proxy copied it.
func minioHeaders() http.Header {
	return http.Header{
		"Accept-Ranges":             {"bytes"},
		"Content-Length":            {"5"},
		"Content-Type":              {"binary/octet-stream"},
		"Etag":                      {`"5d41402abc4b2a76b9719d911017c592"`},
		"Last-Modified":             {"Mon, 23 Nov 2026 14:34:46 GMT"},
		"Server":                    {"MinIO"},
		"Strict-Transport-Security": {"max-age=31536000; includeSubDomains"},
		"Vary":                      {"Origin", "Accept-Encoding"},
		"Via":                       {"1.1 Caddy"},
		"X-Amz-Id-2":                {"a92230f1d4912a20dfc1104686d8135bbd4708d1e16c7389dbf0af4ab662990a"},
		"X-Amz-Request-Id":          {"18EAB33FB1B73377"},
		"X-Content-Type-Options":    {"nosniff"},
		"X-Ratelimit-Limit":         {"6606"},
		"X-Ratelimit-Remaining":     {"6606"},
		"X-Xss-Protection":          {"1; mode=block"},
	}
}

var metaNames = [...]struct{ canonical, lower string }{
	{"X-Amz-Meta-Mixedcase", "x-amz-meta-mixedcase"},
	{"X-Amz-Meta-Owner", "x-amz-meta-owner"},
	{"X-Amz-Meta-Content-Sha256", "x-amz-meta-content-sha256"},
}

// upstream stands in for reverse_proxy: it puts the canonical meta headers
// into the map (nMeta of them), writes the status, and removes whatever
// names they ended up with so that the next iteration starts the same.
func upstream(nMeta int) caddyhttp.HandlerFunc {
	vals := []string{"v"}
	return func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		for _, m := range metaNames[:nMeta] {
			h[m.canonical] = vals
		}
		w.WriteHeader(http.StatusOK)
		for _, m := range metaNames[:nMeta] {
			delete(h, m.canonical)
			delete(h, m.lower)
		}
		return nil
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	hc := &HeaderCase{Prefixes: DefaultPrefixes}
	req, _ := http.NewRequest(http.MethodGet, "http://s3.local/bucket/object", nil)
	for _, bc := range []struct {
		name  string
		nMeta int
	}{{"no_meta", 0}, {"3_meta", 3}} {
		next := upstream(bc.nMeta)
		w := &benchWriter{h: minioHeaders()}
		b.Run(bc.name+"/bare", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = next.ServeHTTP(w, req)
			}
		})
		b.Run(bc.name+"/s3_header_case", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = hc.ServeHTTP(w, req, next)
			}
		})
	}
}

func TestServeHTTPAllocs(t *testing.T) {
	hc := &HeaderCase{Prefixes: DefaultPrefixes}
	req, _ := http.NewRequest(http.MethodGet, "http://s3.local/bucket/object", nil)
	tests := []struct {
		name  string
		nMeta int
		max   float64 // allocations per request, on top of the bare handler
	}{
		// The wrapper comes from a pool; the rewrite finds nothing.
		{"no meta headers", 0, 0},
		// One new lower-case name string per renamed header.
		{"3 meta headers", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := upstream(tt.nMeta)
			w := &benchWriter{h: minioHeaders()}
			bare := testing.AllocsPerRun(200, func() { _ = next.ServeHTTP(w, req) })
			wrapped := testing.AllocsPerRun(200, func() { _ = hc.ServeHTTP(w, req, next) })
			assert.LessOrEqual(t, wrapped-bare, tt.max, "bare %v, with s3_header_case %v", bare, wrapped)
			if tt.nMeta > 0 {
				// Not vacuous: the names really were rewritten.
				_ = hc.ServeHTTP(w, req, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					w.Header()[metaNames[0].canonical] = []string{"v"}
					w.WriteHeader(http.StatusOK)
					return nil
				}))
				assert.Contains(t, w.h, metaNames[0].lower)
			}
		})
	}
}
