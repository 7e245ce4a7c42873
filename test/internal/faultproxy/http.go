package faultproxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HTTPProxy is an HTTP reverse proxy in front of one loopback address that
// forwards every request unchanged (method, path, raw query, Host, headers,
// body) and can, switched at run time, delay every response or answer
// requests itself the way a busy MinIO node does:
//
//	h := faultproxy.StartHTTPT(t, node.S3Addr())
//	h.SetDelay(300 * time.Millisecond)   // before forwarding each request
//	h.SetAnswer(503, "SlowDown")         // 503 + S3 XML error + Retry-After, nothing forwarded
//	h.SetAnswer(429, "")                 // 429 TooManyRequests (MinIO's full request pool)
//	h.SetAnswer(0, "")                   // forward again
//	h.Requests()                         // requests received
type HTTPProxy struct {
	target string
	srv    *http.Server
	ln     net.Listener
	rp     *httputil.ReverseProxy

	delay    atomic.Int64 // time.Duration
	mu       sync.Mutex
	status   int
	code     string
	requests atomic.Int64
	answered atomic.Int64
	done     chan struct{}
}

// StartHTTP listens on a free loopback port and proxies to target, a
// loopback host:port.
func StartHTTP(target string) (*HTTPProxy, error) {
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &HTTPProxy{target: target, ln: ln, done: make(chan struct{})}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL = &url.URL{Scheme: "http", Host: target, Path: r.In.URL.Path, RawPath: r.In.URL.RawPath, RawQuery: r.In.URL.RawQuery}
			r.Out.Host = r.In.Host
			// Rewrite drops these from the outbound request; put back
			// what came in, so the request passes unchanged.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := r.In.Header[k]; ok {
					r.Out.Header[k] = v
				}
			}
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// StartHTTPT is StartHTTP for tests: it fails the test on error and closes
// the proxy when the test ends.
func StartHTTPT(tb testing.TB, target string) *HTTPProxy {
	tb.Helper()
	h, err := StartHTTP(target)
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// Addr is the proxy's listening address, "127.0.0.1:port".
func (h *HTTPProxy) Addr() string { return h.ln.Addr().String() }

// SetDelay waits d before forwarding (or answering) each request; 0
// removes the delay.
func (h *HTTPProxy) SetDelay(d time.Duration) { h.delay.Store(int64(max(d, 0))) }

// SetAnswer makes the proxy answer every request itself with status and
// an S3 XML error of code (default: TooManyRequests for 429, SlowDown for
// 503, the status text otherwise), with Retry-After: 1 for 429 and 503;
// nothing is forwarded. status 0 forwards again.
func (h *HTTPProxy) SetAnswer(status int, code string) {
	if code == "" {
		switch status {
		case http.StatusTooManyRequests:
			code = "TooManyRequests"
		case http.StatusServiceUnavailable:
			code = "SlowDown"
		default:
			code = http.StatusText(status)
		}
	}
	h.mu.Lock()
	h.status, h.code = status, code
	h.mu.Unlock()
}

// Requests is the number of requests received; Answered the number the
// proxy answered itself.
func (h *HTTPProxy) Requests() int64 { return h.requests.Load() }

// Answered is the number of requests the proxy answered itself.
func (h *HTTPProxy) Answered() int64 { return h.answered.Load() }

// Close stops the server (open requests are cut after 2 s).
func (h *HTTPProxy) Close() error {
	select {
	case <-h.done:
		return nil
	default:
		close(h.done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		return h.srv.Close()
	}
	return nil
}

func (h *HTTPProxy) serve(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if d := time.Duration(h.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-h.done:
			t.Stop()
			return
		}
	}
	h.mu.Lock()
	status, code := h.status, h.code
	h.mu.Unlock()
	if status == 0 {
		h.rp.ServeHTTP(w, r)
		return
	}
	h.answered.Add(1)
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>Please reduce your request rate</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId><HostId>faultproxy</HostId></Error>`,
		code, xmlEscape(r.URL.Path))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func xmlEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
