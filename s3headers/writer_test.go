package s3headers

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawRoundTrip sends req on a fresh TCP connection to addr and returns every
// byte the server sent until it closed the connection.
func rawRoundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, req)
	require.NoError(t, err)
	b, err := io.ReadAll(conn)
	require.NoError(t, err)
	return string(b)
}

// headerNames returns the field names of the first header block in raw
// that starts with status line prefix statusPrefix (e.g. "HTTP/1.1 200").
func headerNames(t *testing.T, raw, statusPrefix string) []string {
	t.Helper()
	i := strings.Index(raw, statusPrefix)
	require.GreaterOrEqual(t, i, 0, "no %q response in:\n%s", statusPrefix, raw)
	r := bufio.NewReader(strings.NewReader(raw[i:]))
	_, _ = r.ReadString('\n') // status line
	var names []string
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			return names
		}
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
}

// serveWith runs next behind a HeaderCase with the default prefixes on a
// loopback HTTP/1.1 server and returns the raw response to a GET.
func serveWith(t *testing.T, next caddyhttp.HandlerFunc) string {
	t.Helper()
	hc := &HeaderCase{Prefixes: DefaultPrefixes}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hc.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	defer srv.Close()
	return rawRoundTrip(t, srv.Listener.Addr().String(),
		"GET /b/o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

func TestResponseWriterOnTheWire(t *testing.T) {
	setMeta := func(w http.ResponseWriter) {
		w.Header().Set("X-Amz-Meta-Mixedcase", "v")
		w.Header().Add("X-Amz-Meta-Multi", "1")
		w.Header().Add("X-Amz-Meta-Multi", "2")
		w.Header().Set("X-Amz-Request-Id", "r")
	}
	tests := []struct {
		name      string
		next      caddyhttp.HandlerFunc
		status    string
		wantNames []string
		wantBody  string
	}{
		{
			name: "WriteHeader then Write",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				w.WriteHeader(http.StatusOK)
				_, err := io.WriteString(w, "body")
				return err
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "x-amz-meta-multi", "X-Amz-Request-Id"},
			wantBody:  "body",
		},
		{
			name: "Write without WriteHeader",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				_, err := io.WriteString(w, "body")
				return err
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "X-Amz-Request-Id"},
			wantBody:  "body",
		},
		{
			name: "ReadFrom (io.Copy) without WriteHeader",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				_, err := io.Copy(w, strings.NewReader("copied"))
				return err
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "X-Amz-Request-Id"},
			wantBody:  "copied",
		},
		{
			name: "Flush via ResponseController before WriteHeader",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				if err := http.NewResponseController(w).Flush(); err != nil {
					return err
				}
				_, err := io.WriteString(w, "flushed")
				return err
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "X-Amz-Request-Id"},
			wantBody:  "flushed",
		},
		{
			name: "handler writes nothing",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				return nil
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "X-Amz-Request-Id"},
		},
		{
			name: "second WriteHeader is ignored",
			next: func(w http.ResponseWriter, r *http.Request) error {
				setMeta(w)
				w.WriteHeader(http.StatusPartialContent)
				w.WriteHeader(http.StatusTeapot)
				return nil
			},
			status:    "HTTP/1.1 206",
			wantNames: []string{"x-amz-meta-mixedcase", "x-amz-meta-multi", "X-Amz-Request-Id"},
		},
		{
			name: "no meta headers: nothing renamed",
			next: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("X-Amz-Request-Id", "r")
				w.Header().Set("Etag", `"e"`)
				w.WriteHeader(http.StatusOK)
				return nil
			},
			status:    "HTTP/1.1 200",
			wantNames: []string{"X-Amz-Request-Id", "Etag"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := serveWith(t, tt.next)
			names := headerNames(t, raw, tt.status)
			for _, n := range tt.wantNames {
				assert.Contains(t, names, n, "raw response:\n%s", raw)
			}
			assert.NotContains(t, names, "X-Amz-Meta-Mixedcase", "raw response:\n%s", raw)
			assert.NotContains(t, names, "X-Amz-Meta-Multi", "raw response:\n%s", raw)
			if tt.wantBody != "" {
				assert.Contains(t, raw[strings.Index(raw, "\r\n\r\n"):], tt.wantBody, "body of:\n%s", raw)
			}
		})
	}
}

func TestResponseWriterMultipleValuesInOrder(t *testing.T) {
	raw := serveWith(t, func(w http.ResponseWriter, r *http.Request) error {
		w.Header()["X-Amz-Meta-Multi"] = []string{"3", "1", "2"}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	assert.Contains(t, raw, "x-amz-meta-multi: 3\r\nx-amz-meta-multi: 1\r\nx-amz-meta-multi: 2\r\n")
}

func TestResponseWriterInformationalUntouched(t *testing.T) {
	tests := []struct {
		name   string
		status int
		line   string
	}{
		{"100 Continue", http.StatusContinue, "HTTP/1.1 100 Continue"},
		{"103 Early Hints", http.StatusEarlyHints, "HTTP/1.1 103 Early Hints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := serveWith(t, func(w http.ResponseWriter, r *http.Request) error {
				// What reverse_proxy does for a 1xx from upstream: copy
				// its headers, WriteHeader, then clear them.
				w.Header().Set("X-Amz-Meta-Hint", "h")
				w.WriteHeader(tt.status)
				w.Header().Del("X-Amz-Meta-Hint")
				w.Header().Set("X-Amz-Meta-Final", "f")
				w.WriteHeader(http.StatusOK)
				_, err := io.WriteString(w, "ok")
				return err
			})
			// The 1xx went out as it was: canonical name, not counted as
			// the final header.
			assert.Contains(t, headerNames(t, raw, tt.line), "X-Amz-Meta-Hint", raw)
			final := headerNames(t, raw, "HTTP/1.1 200")
			assert.Contains(t, final, "x-amz-meta-final", raw)
			assert.NotContains(t, final, "X-Amz-Meta-Final", raw)
		})
	}
}

func TestResponseWriterHijack(t *testing.T) {
	raw := serveWith(t, func(w http.ResponseWriter, r *http.Request) error {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhijacked")
		return brw.Flush()
	})
	assert.Equal(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhijacked", raw)
}

func TestResponseWriterCapabilities(t *testing.T) {
	// The wrapper must not hide what the server's writer can do.
	type result struct {
		isReaderFrom        bool
		flushErr, hijackErr error
	}
	hc := &HeaderCase{Prefixes: DefaultPrefixes}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = hc.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var res result
			_, res.isReaderFrom = w.(io.ReaderFrom)
			rc := http.NewResponseController(w)
			w.WriteHeader(http.StatusOK)
			res.flushErr = rc.Flush()
			conn, _, err := rc.Hijack()
			res.hijackErr = err
			if conn != nil {
				conn.Close()
			}
			results <- res
			return nil
		}))
	}))
	defer srv.Close()
	_ = rawRoundTrip(t, srv.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res := <-results
	assert.NoError(t, res.flushErr)
	assert.NoError(t, res.hijackErr)
	assert.True(t, res.isReaderFrom)
}

func TestFlushWithoutFlusher(t *testing.T) {
	// An underlying writer that cannot flush: the error must say so rather
	// than be swallowed by the wrapper.
	rw := &responseWriter{prefixes: DefaultPrefixes}
	rw.ResponseWriter = noFlushWriter{h: http.Header{"X-Amz-Meta-A": {"1"}}}
	err := http.NewResponseController(rw).Flush()
	assert.ErrorIs(t, err, http.ErrNotSupported)
	assert.Equal(t, http.Header{"x-amz-meta-a": {"1"}}, rw.Header())
}

type noFlushWriter struct{ h http.Header }

func (w noFlushWriter) Header() http.Header         { return w.h }
func (w noFlushWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w noFlushWriter) WriteHeader(int)             {}

func TestServeHTTPSkipsHTTP2(t *testing.T) {
	hc := &HeaderCase{Prefixes: DefaultPrefixes}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.ProtoMajor, req.ProtoMinor, req.Proto = 2, 0, "HTTP/2.0"
	var seen http.ResponseWriter
	err := hc.ServeHTTP(rec, req, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = w
		return nil
	}))
	require.NoError(t, err)
	assert.Same(t, rec, seen, "HTTP/2 needs no wrapper: it sends lower-case names anyway")
}
