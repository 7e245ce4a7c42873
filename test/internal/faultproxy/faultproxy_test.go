package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/faultproxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer echoes every connection back until the client half-closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes data and reads it back (echo), within timeout.
func roundTrip(c net.Conn, data []byte, timeout time.Duration) ([]byte, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	got := make([]byte, len(data))
	_, err := io.ReadFull(c, got)
	if werr := <-errc; err == nil {
		err = werr
	}
	return got, err
}

func TestPass(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	c := dial(t, p.Addr())
	data := bytes.Repeat([]byte("0123456789"), 10000)
	got, err := roundTrip(c, data, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	st := p.Stats()
	assert.Equal(t, int64(1), st.Accepted)
	assert.Equal(t, int64(1), st.Active)
	assert.Equal(t, int64(len(data)), st.BytesToTarget)
	assert.Equal(t, int64(len(data)), st.BytesFromTarget)
}

// TestBandwidth: 1 MiB each way at 2 MiB/s takes about 0.5 s; two
// connections share the cap (a NIC), so 2 x 1 MiB take about 1 s.
func TestBandwidth(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	const rate = 2 << 20
	p.SetBandwidth(rate)
	data := bytes.Repeat([]byte{'x'}, 1<<20)

	start := time.Now()
	_, err := roundTrip(dial(t, p.Addr()), data, 10*time.Second)
	require.NoError(t, err)
	one := time.Since(start)
	assert.InDelta(t, 0.5, one.Seconds(), 0.2, "1 MiB each way at 2 MiB/s each way")

	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		c := dial(t, p.Addr())
		wg.Add(1)
		go func() { defer wg.Done(); _, err := roundTrip(c, data, 10*time.Second); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.InDelta(t, 1.0, time.Since(start).Seconds(), 0.3, "two connections share the cap")

	p.SetBandwidth(0)
	start = time.Now()
	_, err = roundTrip(dial(t, p.Addr()), data, 10*time.Second)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 250*time.Millisecond, "cap removed")
}

func TestLatency(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	c := dial(t, p.Addr())
	p.SetLatency(50 * time.Millisecond)
	start := time.Now()
	_, err := roundTrip(c, []byte("ping"), 5*time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "one chunk each way, 50 ms each")
	p.SetLatency(0)
	start = time.Now()
	_, err = roundTrip(c, []byte("ping"), 5*time.Second)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 50*time.Millisecond)
}

// TestFreeze: nothing passes while frozen, the connection stays open, and
// what was sent arrives once thawed.
func TestFreeze(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	c := dial(t, p.Addr())
	_, err := roundTrip(c, []byte("warm"), 2*time.Second)
	require.NoError(t, err)

	p.SetFrozen(true)
	_, err = c.Write([]byte("held"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := c.Read(make([]byte, 4))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "read while frozen: %d bytes, %v", n, err)
	assert.Equal(t, int64(1), p.Stats().Active, "the connection is held open")

	// A new connection while frozen is accepted and held too.
	c2 := dial(t, p.Addr())
	_, err = c2.Write([]byte("new"))
	require.NoError(t, err)

	p.SetFrozen(false)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, "held", string(got))
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	got = make([]byte, 3)
	_, err = io.ReadFull(c2, got)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
}

// TestRefuse: new connections get ECONNREFUSED, open ones keep working;
// switched off, the same port accepts again.
func TestRefuse(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	open := dial(t, p.Addr())
	// Accepted and proxied before the listener closes: a connection still
	// in the kernel's accept queue is reset with the listener (run 10).
	_, err := roundTrip(open, []byte("first"), 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, p.SetRefusing(true))
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial: %v", err)
	_, err = roundTrip(open, []byte("still"), 2*time.Second)
	require.NoError(t, err, "an open connection keeps working")

	require.NoError(t, p.SetRefusing(false))
	_, err = roundTrip(dial(t, p.Addr()), []byte("again"), 2*time.Second)
	require.NoError(t, err)
}

func TestResetConns(t *testing.T) {
	p := faultproxy.StartT(t, echoServer(t))
	c := dial(t, p.Addr())
	_, err := roundTrip(c, []byte("x"), 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, 1, p.ResetConns())
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the client side was reset")
	deadline := time.Now().Add(2 * time.Second)
	for p.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, int64(0), p.Stats().Active)
}

// TestTargetDown: a connection to a proxy whose target is gone is reset.
func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	p := faultproxy.StartT(t, addr)
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err == nil { // the reset may come before or after the dial returns
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	require.Error(t, err)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "reset, not silence: %v", err)
}

// TestCloseEndsEverything: Close returns while a connection is frozen with
// data in flight and a bandwidth wait pending; the port is closed after.
func TestCloseEndsEverything(t *testing.T) {
	p, err := faultproxy.Start(echoServer(t))
	require.NoError(t, err)
	c := dial(t, p.Addr())
	p.SetBandwidth(1024)
	_, _ = c.Write(bytes.Repeat([]byte{'x'}, 64<<10))
	c2 := dial(t, p.Addr())
	p.SetFrozen(true)
	_, _ = c2.Write([]byte("frozen"))
	time.Sleep(50 * time.Millisecond) // let both be in their waits (no assertion rests on it)
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err)
	assert.NoError(t, p.Close(), "twice")
}

func TestLoopbackOnly(t *testing.T) {
	for _, target := range []string{"10.0.0.1:80", "example.com:80", "1.1.1.1:53", "nohost", "127.0.0.1:http"} {
		_, err := faultproxy.Start(target)
		assert.Error(t, err, target)
		_, err = faultproxy.StartHTTP(target)
		assert.Error(t, err, target)
	}
	p, err := faultproxy.Start("localhost:1")
	require.NoError(t, err)
	p.Close()
	assert.True(t, strings.HasPrefix(p.Addr(), "127.0.0.1:"))
}

func TestHTTP(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		w.Header().Set("X-Backend", "yes")
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(backend.Close)
	h := faultproxy.StartHTTPT(t, strings.TrimPrefix(backend.URL, "http://"))
	c := &http.Client{Timeout: 5 * time.Second}
	do := func(path string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+h.Addr()+path, nil)
		require.NoError(t, err)
		req.Host = "bucket.s3.example.com"
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := do("/a%2Fb/c?x=1&y=%2F")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", body)
	mu.Lock()
	got := seen[0]
	mu.Unlock()
	assert.Equal(t, "/a%2Fb/c?x=1&y=%2F", got.RequestURI, "path and query unchanged")
	assert.Equal(t, "bucket.s3.example.com", got.Host)
	assert.Equal(t, "198.51.100.1", got.Header.Get("X-Forwarded-For"), "headers unchanged")

	h.SetDelay(200 * time.Millisecond)
	start := time.Now()
	do("/")
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	h.SetDelay(0)

	for _, tc := range []struct {
		status int
		code   string
	}{{503, "SlowDown"}, {429, "TooManyRequests"}} {
		h.SetAnswer(tc.status, "")
		resp, body = do("/bucket/obj")
		assert.Equal(t, tc.status, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
		assert.Equal(t, "application/xml", resp.Header.Get("Content-Type"))
		assert.Contains(t, body, "<Code>"+tc.code+"</Code>")
		assert.Contains(t, body, "<Resource>/bucket/obj</Resource>")
	}
	h.SetAnswer(0, "")
	resp, _ = do("/")
	assert.Equal(t, "yes", resp.Header.Get("X-Backend"))
	assert.Equal(t, int64(5), h.Requests())
	assert.Equal(t, int64(2), h.Answered())
	mu.Lock()
	assert.Len(t, seen, 3, "answered requests are not forwarded")
	mu.Unlock()
}

func TestHTTPHealthModes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/hold" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	h := faultproxy.StartHTTPT(t, strings.TrimPrefix(backend.URL, "http://"))
	c := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, "http://"+h.Addr()+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// HealthSame (default): the answer applies to probes too.
	h.SetAnswer(429, "")
	st, body := do(http.MethodGet, "/minio/health/ready")
	assert.Equal(t, 429, st)
	assert.Contains(t, body, "<Code>TooManyRequests</Code>")

	// HealthBusy: S3 requests get the answer, ready gets MinIO's busy
	// readiness answer, other health paths pass.
	h.SetHealth(faultproxy.HealthBusy)
	st, body = do(http.MethodGet, "/bucket/obj")
	assert.Equal(t, 429, st)
	assert.Contains(t, body, "<Code>TooManyRequests</Code>")
	st, body = do(http.MethodGet, "/minio/health/ready")
	assert.Equal(t, 503, st)
	assert.Contains(t, body, "<Code>ServerBusy</Code>")
	st, body = do(http.MethodHead, "/minio/health/ready")
	assert.Equal(t, 503, st)
	assert.Empty(t, body)
	st, body = do(http.MethodGet, "/minio/health/live")
	assert.Equal(t, 200, st)
	assert.Equal(t, "ok", body)
	h.SetAnswer(0, "")
	st, _ = do(http.MethodGet, "/minio/health/ready")
	assert.Equal(t, 200, st, "HealthBusy forwards probes while no answer is set")

	// HealthForward: probes pass at once while S3 requests are delayed and
	// answered.
	h.SetHealth(faultproxy.HealthForward)
	h.SetAnswer(503, "")
	h.SetDelay(300 * time.Millisecond)
	start := time.Now()
	st, _ = do(http.MethodGet, "/minio/health/ready")
	assert.Equal(t, 200, st)
	assert.Less(t, time.Since(start), 300*time.Millisecond)
	st, body = do(http.MethodGet, "/bucket/obj")
	assert.Equal(t, 503, st)
	assert.Contains(t, body, "<Code>SlowDown</Code>")
	h.SetDelay(0)
	h.SetAnswer(0, "")

	assert.Equal(t, int64(8), h.Requests())
	assert.Equal(t, int64(2), h.S3Requests(), "health requests are not S3 requests")
	mu.Lock()
	assert.Equal(t, []string{"GET /minio/health/live", "GET /minio/health/ready", "GET /minio/health/ready"}, seen)
	mu.Unlock()

	// InFlight and OpenConns follow the requests and the connections.
	done := make(chan struct{})
	go func() { defer close(done); do(http.MethodGet, "/hold") }()
	require.Eventually(t, func() bool { return h.InFlight() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, h.OpenConns(), int64(1))
	close(release)
	<-done
	assert.Equal(t, int64(0), h.InFlight())
	c.CloseIdleConnections()
	require.Eventually(t, func() bool { return h.OpenConns() == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestHTTPFreezeAndHeadAnswers(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	h := faultproxy.StartHTTPT(t, strings.TrimPrefix(backend.URL, "http://"))
	c := &http.Client{Timeout: 5 * time.Second}

	// A refused HEAD carries the code in a header, as MinIO's does; the
	// request pool's 429 does not.
	h.SetAnswer(503, "SlowDown")
	resp, err := c.Head("http://" + h.Addr() + "/bucket/obj")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, "SlowDown", resp.Header.Get("X-Minio-Error-Code"))
	h.SetAnswer(429, "")
	resp, err = c.Head("http://" + h.Addr() + "/bucket/obj")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 429, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("X-Minio-Error-Code"))
	h.SetAnswer(0, "")

	// Frozen: requests (probes too) wait until thawed; a client that gives
	// up leaves nothing in flight.
	h.SetFrozen(true)
	h.SetFrozen(true) // idempotent
	short := &http.Client{Timeout: 200 * time.Millisecond}
	_, err = short.Get("http://" + h.Addr() + "/minio/health/ready")
	require.Error(t, err, "a frozen proxy does not answer")
	require.Eventually(t, func() bool { return h.InFlight() == 0 }, 5*time.Second, 10*time.Millisecond)
	got := make(chan int, 1)
	go func() {
		resp, err := c.Get("http://" + h.Addr() + "/bucket/obj")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return h.InFlight() == 1 }, 5*time.Second, 10*time.Millisecond)
	select {
	case <-got:
		t.Fatal("answered while frozen")
	case <-time.After(100 * time.Millisecond): // the request stays held
	}
	h.SetFrozen(false)
	h.SetFrozen(false) // idempotent
	assert.Equal(t, 200, <-got)
}
