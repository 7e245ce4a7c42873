package s3listuploads

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeNode answers listings as a MinIO node would: its own uploads, MinIO's
// headers; it records every request it got.
type fakeNode struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	ups  []upload

	status atomic.Int32 // 0: 200 with the listing
	body   atomic.Value // string: a fixed body instead of the listing
	gzip   atomic.Bool
	hang   atomic.Bool
}

func newFakeNode(t *testing.T, id string, ups ...upload) *fakeNode {
	t.Helper()
	f := &fakeNode{ups: ups}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.mu.Unlock()
		if f.hang.Load() {
			<-r.Context().Done()
			return
		}
		h := w.Header()
		h.Set("Server", "MinIO")
		h.Set("X-Amz-Request-Id", "REQ-"+id)
		h.Set("X-Amz-Id-2", "host-"+id)
		h.Set("Vary", "Origin, Accept-Encoding")
		h.Set("Content-Type", "application/xml")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "dropped")
		var body []byte
		if b, ok := f.body.Load().(string); ok && b != "" {
			body = []byte(b)
		} else {
			res := node(f.ups...)
			res.XMLName = xml.Name{Space: s3NS, Local: "ListMultipartUploadsResult"}
			res.MaxUploads = 1000
			body, _ = encodeResult(res)
		}
		if f.gzip.Load() {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
			h.Set("Content-Encoding", "gzip")
		}
		status := int(f.status.Load())
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeNode) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

// handler provisions a ListUploads whose pool is nodes (routable unless
// listed in down).
func handler(t *testing.T, nodes []*fakeNode, down map[int]bool, opts ...func(*ListUploads)) *ListUploads {
	t.Helper()
	l := &ListUploads{Pool: "s3"}
	for _, o := range opts {
		o(l)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	require.NoError(t, l.Provision(ctx))
	t.Cleanup(func() { _ = l.Cleanup() })
	l.upstreams = func(name string) ([]string, []bool, bool) {
		if name != "s3" {
			return nil, nil, false
		}
		var dials []string
		var ok []bool
		for i, n := range nodes {
			dials = append(dials, n.addr())
			ok = append(ok, !down[i])
		}
		return dials, ok, true
	}
	return l
}

// serve runs a request through the handler as Caddy's server would.
func serve(t *testing.T, l *ListUploads, r *http.Request) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	nextCalled := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		nextCalled = true
		w.WriteHeader(299)
		return nil
	})
	require.NoError(t, l.ServeHTTP(w, r, next))
	return w, nextCalled
}

func signedList(query string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://s3.example.com:9000/bkt?"+query, nil)
	r.RemoteAddr = "198.51.100.9:43210"
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20261130/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=abc")
	r.Header.Set("X-Amz-Date", "20261130T190022Z")
	r.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	r.Header.Set("User-Agent", "Boto3/1.26")
	r.Header.Set("Connection", "keep-alive, X-Client-Hop")
	r.Header.Set("X-Client-Hop", "secret")
	return r
}

func TestHandlerMergesEveryNode(t *testing.T) {
	n1 := newFakeNode(t, "1", up("b/x", 1, 0), up("c", 3, 2))
	n2 := newFakeNode(t, "2", up("a/y", 2, 1))
	n3 := newFakeNode(t, "3")
	l := handler(t, []*fakeNode{n1, n2, n3}, nil)

	w, next := serve(t, l, signedList("uploads&max-uploads=2"))
	require.False(t, next)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	res, err := decodeResult(w.Body.Bytes())
	require.NoError(t, err)
	assert.Equal(t, []string{"a/y", "b/x"}, keys(res))
	assert.True(t, res.IsTruncated)
	assert.Equal(t, "b/x", res.NextKeyMarker)

	// The first node's headers, hop-by-hop ones dropped, framing recomputed.
	assert.Equal(t, "REQ-1", w.Header().Get("X-Amz-Request-Id"))
	assert.Equal(t, "MinIO", w.Header().Get("Server"))
	assert.Equal(t, "Origin, Accept-Encoding", w.Header().Get("Vary"))
	assert.Empty(t, w.Header().Get("X-Hop"))
	assert.Empty(t, w.Header().Get("Connection"))
	assert.Equal(t, itoa(w.Body.Len()), w.Header().Get("Content-Length"))

	// Every node got the request as the client sent it.
	for i, n := range []*fakeNode{n1, n2, n3} {
		reqs := n.requests()
		require.Len(t, reqs, 1, "node %d", i+1)
		got := reqs[0]
		assert.Equal(t, "/bkt?uploads&max-uploads=2", got.RequestURI, "node %d: path and raw query byte for byte", i+1)
		assert.Equal(t, "s3.example.com:9000", got.Host, "node %d: the client's Host", i+1)
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "User-Agent"} {
			assert.Equal(t, signedList("").Header.Get(h), got.Header.Get(h), "node %d: %s", i+1, h)
		}
		assert.Empty(t, got.Header.Get("X-Client-Hop"), "named in Connection: hop-by-hop")
		assert.Empty(t, got.Header.Get("Accept-Encoding"), "Go must not add one")
		assert.Equal(t, "198.51.100.9", got.Header.Get("X-Forwarded-For"))
		assert.Equal(t, "http", got.Header.Get("X-Forwarded-Proto"))
		assert.Equal(t, "s3.example.com:9000", got.Header.Get("X-Forwarded-Host"))
	}
}

// TestHandlerPassesOtherRequests: anything but a bucket-wide
// ListMultipartUploads goes to next, and no node is asked.
func TestHandlerPassesOtherRequests(t *testing.T) {
	n1 := newFakeNode(t, "1")
	l := handler(t, []*fakeNode{n1}, nil, func(l *ListUploads) { l.Domains = []string{"s3.example.com"} })
	for _, tc := range []struct{ method, target string }{
		{"GET", "/bkt/obj"},
		{"GET", "/bkt?list-type=2"},
		{"GET", "/bkt/obj?uploadId=abc"},                 // ListParts
		{"GET", "/bkt?uploads&uploadId=abc"},             // not a listing
		{"POST", "/bkt/obj?uploads"},                     // CreateMultipartUpload
		{"HEAD", "/bkt?uploads"},                         // not GET
		{"GET", "/?uploads"},                             // no bucket
		{"GET", "/minio/health/ready?uploads"},           // MinIO's own
		{"GET", "http://bkt.s3.example.com/obj?uploads"}, // vhost: an object
		{"GET", "/bkt?uploadsx"},
	} {
		w, next := serve(t, l, httptest.NewRequest(tc.method, tc.target, nil))
		assert.True(t, next, "%s %s", tc.method, tc.target)
		assert.Equal(t, 299, w.Code)
	}
	assert.Empty(t, n1.requests())

	// Virtual-host style bucket listing is handled.
	_, next := serve(t, l, httptest.NewRequest("GET", "http://bkt.s3.example.com/?uploads", nil))
	assert.False(t, next)
	require.Len(t, n1.requests(), 1)
	assert.Equal(t, "bkt.s3.example.com", n1.requests()[0].Host)
}

func TestHandlerFailsRatherThanPartial(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(n2 *fakeNode) (down map[int]bool, opts []func(*ListUploads), closeN2 bool)
		wantCode  int
		wantInXML string
		asked     bool // were the nodes asked at all
	}{
		{"a node not routable", func(*fakeNode) (map[int]bool, []func(*ListUploads), bool) {
			return map[int]bool{1: true}, nil, false
		}, 503, "node 2 of 2 is not available", false},
		{"a node refuses connections", func(*fakeNode) (map[int]bool, []func(*ListUploads), bool) {
			return nil, nil, true
		}, 503, "node 2 of 2 did not answer", true},
		{"a node hangs past the timeout", func(n2 *fakeNode) (map[int]bool, []func(*ListUploads), bool) {
			n2.hang.Store(true)
			return nil, []func(*ListUploads){func(l *ListUploads) { l.Timeout = caddy.Duration(200 * time.Millisecond) }}, false
		}, 503, "node 2 of 2 did not answer", true},
		{"a node answers something that is not a listing", func(n2 *fakeNode) (map[int]bool, []func(*ListUploads), bool) {
			n2.body.Store("<html>proxy error page</html>")
			return nil, nil, false
		}, 503, "cannot read from node 2 of 2", true},
		{"a node answers too much", func(n2 *fakeNode) (map[int]bool, []func(*ListUploads), bool) {
			return nil, []func(*ListUploads){func(l *ListUploads) { l.MaxResponseSize = 100 }}, false
		}, 503, "did not answer", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n1 := newFakeNode(t, "1", up("a", 1, 0))
			n2 := newFakeNode(t, "2", up("b", 2, 0))
			down, opts, closeN2 := tc.setup(n2)
			l := handler(t, []*fakeNode{n1, n2}, down, opts...)
			if closeN2 {
				n2.srv.Close()
			}
			start := time.Now()
			w, next := serve(t, l, signedList("uploads"))
			require.False(t, next)
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.Equal(t, tc.wantCode, w.Code)
			assert.Equal(t, "application/xml", w.Header().Get("Content-Type"))
			assert.NotEmpty(t, w.Header().Get("X-Amz-Request-Id"))
			var e s3Error
			require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
			assert.Equal(t, "ServiceUnavailable", e.Code)
			assert.Contains(t, e.Message, tc.wantInXML)
			assert.Equal(t, "bkt", e.BucketName)
			assert.Equal(t, "/bkt", e.Resource)
			assert.Equal(t, tc.asked, len(n1.requests()) > 0)
		})
	}
}

// TestHandlerPassesANodesError: a node's own S3 error reaches the client
// as the node sent it (the first in pool order).
func TestHandlerPassesANodesError(t *testing.T) {
	n1 := newFakeNode(t, "1", up("a", 1, 0))
	n2 := newFakeNode(t, "2")
	const denied = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match.</Message><Resource>/bkt</Resource><RequestId>REQ-2</RequestId><HostId>host-2</HostId></Error>`
	n2.status.Store(http.StatusForbidden)
	n2.body.Store(denied)
	n2.gzip.Store(true)
	l := handler(t, []*fakeNode{n1, n2}, nil)
	w, _ := serve(t, l, signedList("uploads"))
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Equal(t, denied, w.Body.String(), "gunzipped, byte for byte")
	assert.Equal(t, "REQ-2", w.Header().Get("X-Amz-Request-Id"))
	assert.Empty(t, w.Header().Get("Content-Encoding"))
}

func TestHandlerGzipAnswers(t *testing.T) {
	n1 := newFakeNode(t, "1", up("a", 1, 0))
	n2 := newFakeNode(t, "2", up("b", 2, 1))
	n1.gzip.Store(true)
	n2.gzip.Store(true)
	l := handler(t, []*fakeNode{n1, n2}, nil)
	r := signedList("uploads")
	r.Header.Set("Accept-Encoding", "gzip")
	w, _ := serve(t, l, r)
	require.Equal(t, http.StatusOK, w.Code)
	res, err := decodeResult(w.Body.Bytes())
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, keys(res))
	assert.Empty(t, w.Header().Get("Content-Encoding"), "answered uncompressed")
	assert.Equal(t, "gzip", n1.requests()[0].Header.Get("Accept-Encoding"), "the client's Accept-Encoding went to the node")
}

func TestHandlerUnknownPool(t *testing.T) {
	n1 := newFakeNode(t, "1")
	l := handler(t, []*fakeNode{n1}, nil)
	l.Pool = "other"
	w, _ := serve(t, l, signedList("uploads"))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Contains(t, w.Body.String(), "<Code>ServiceUnavailable</Code>")
}

// TestForwardedHeaders: X-Forwarded-For from the client is replaced unless
// the client is a trusted proxy (as Caddy's reverse_proxy does).
func TestForwardedHeaders(t *testing.T) {
	r := httptest.NewRequest("GET", "/bkt?uploads", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "203.0.113.1")
	r.Header.Set("X-Forwarded-Proto", "https")
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	h := outHeader(r)
	assert.Equal(t, []string{"10.0.0.1"}, h["X-Forwarded-For"])
	assert.Equal(t, []string{"http"}, h["X-Forwarded-Proto"])
	assert.Equal(t, []string{""}, h["User-Agent"])

	caddyhttp.SetVar(r.Context(), caddyhttp.TrustedProxyVarKey, true)
	h = outHeader(r)
	assert.Equal(t, []string{"203.0.113.1, 10.0.0.1"}, h["X-Forwarded-For"])
	assert.Equal(t, []string{"https"}, h["X-Forwarded-Proto"])
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
