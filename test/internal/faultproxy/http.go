package faultproxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
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
//	h.SetHealth(faultproxy.HealthBusy)   // readiness probes see what a busy MinIO answers
//	h.SetFrozen(true)                    // hold every request (probes too) until SetFrozen(false)
//	h.Requests()                         // requests received
//	h.S3Requests(); h.InFlight(); h.OpenConns()
//
// By default (HealthSame) the delay and the answer apply to every request,
// MinIO's health endpoints included; SetHealth changes what the proxies'
// readiness probes see.
type HTTPProxy struct {
	target string
	srv    *http.Server
	ln     net.Listener
	rp     *httputil.ReverseProxy

	delay      atomic.Int64 // time.Duration
	health     atomic.Int32 // HealthMode
	mu         sync.Mutex
	status     int
	code       string
	thaw       chan struct{} // closed when not frozen; replaced when frozen
	requests   atomic.Int64
	s3requests atomic.Int64
	answered   atomic.Int64
	inFlight   atomic.Int64
	openConns  atomic.Int64
	done       chan struct{}
}

// HealthMode says what the delay and the answer do to requests of MinIO's
// health endpoints (paths under /minio/health/), which proxies probe.
type HealthMode int32

const (
	// HealthSame: health requests are delayed and answered like every
	// other request (the default).
	HealthSame HealthMode = iota
	// HealthForward: health requests are always forwarded at once: the
	// probes see the real node while S3 requests get the fault (a node
	// whose S3 handlers answer 503 SlowDown while its readiness is fine).
	HealthForward
	// HealthBusy: health requests are delayed like the others; while an
	// answer is set, /minio/health/ready answers what MinIO's readiness
	// handler answers when its request queue is over capacity (503, the S3
	// error ServerBusy for GET, no body for HEAD) and the other health
	// paths are forwarded. With SetAnswer(429, "") this is a MinIO node
	// whose request pool is full (cmd/handler-api.go maxClients,
	// cmd/healthcheck-handler.go ReadinessCheckHandler).
	HealthBusy
)

// healthPrefix is where MinIO serves its health endpoints.
const healthPrefix = "/minio/health/"

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
	h := &HTTPProxy{target: target, ln: ln, done: make(chan struct{}), thaw: make(chan struct{})}
	close(h.thaw)
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
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				h.openConns.Add(1)
			case http.StateClosed, http.StateHijacked:
				h.openConns.Add(-1)
			}
		}}
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

// SetFrozen holds every request that arrives (health requests included,
// whatever the HealthMode) until SetFrozen(false), the client goes away or
// the proxy closes: a node that accepts connections and never answers, as
// seen by the proxy in front, while the node itself keeps serving its
// peers (a partition between the proxy and one node, a hung NIC queue).
func (h *HTTPProxy) SetFrozen(frozen bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.thaw:
		if frozen {
			h.thaw = make(chan struct{})
		}
	default:
		if !frozen {
			close(h.thaw)
		}
	}
}

// SetHealth sets what the delay and the answer do to health requests.
func (h *HTTPProxy) SetHealth(m HealthMode) { h.health.Store(int32(m)) }

// Requests is the number of requests received; Answered the number the
// proxy answered itself.
func (h *HTTPProxy) Requests() int64 { return h.requests.Load() }

// S3Requests is the number of requests received outside MinIO's health
// endpoints (what a proxy in front sent on behalf of its clients).
func (h *HTTPProxy) S3Requests() int64 { return h.s3requests.Load() }

// InFlight is the number of requests being served now (delayed, answered
// or forwarded and not finished).
func (h *HTTPProxy) InFlight() int64 { return h.inFlight.Load() }

// OpenConns is the number of client connections open now, idle ones
// included (the proxy never closes an idle connection itself).
func (h *HTTPProxy) OpenConns() int64 { return h.openConns.Load() }

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
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	health := strings.HasPrefix(r.URL.Path, healthPrefix)
	if !health {
		h.s3requests.Add(1)
	}
	h.mu.Lock()
	thaw := h.thaw
	h.mu.Unlock()
	select {
	case <-thaw:
	case <-r.Context().Done():
		return
	case <-h.done:
		return
	}
	mode := HealthMode(h.health.Load())
	if health && mode == HealthForward {
		h.rp.ServeHTTP(w, r)
		return
	}
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
	if status == 0 || (health && mode == HealthBusy && r.URL.Path != healthPrefix+"ready") {
		h.rp.ServeHTTP(w, r)
		return
	}
	h.answered.Add(1)
	if health && mode == HealthBusy {
		// MinIO's readiness handler over capacity: 503 ServerBusy, the S3
		// error document for GET, nothing for HEAD.
		status, code = http.StatusServiceUnavailable, "ServerBusy"
		if r.Method == http.MethodHead {
			w.WriteHeader(status)
			return
		}
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>Please reduce your request rate</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId><HostId>faultproxy</HostId></Error>`,
		code, xmlEscape(r.URL.Path))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead && status != http.StatusTooManyRequests {
		// MinIO's object handlers answer a HEAD they refuse without a
		// body, the code in headers (writeErrorResponseHeadersOnly); its
		// request pool's 429 is the XML error, whose body HEAD drops.
		w.Header().Set("X-Minio-Error-Code", code)
		w.Header().Set("X-Minio-Error-Desc", `"Please reduce your request rate"`)
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
