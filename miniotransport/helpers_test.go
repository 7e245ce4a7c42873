package miniotransport

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/require"
)

// startProxy runs an in-process Caddy with one site whose handler is proxy
// and returns the site's base URL.
func startProxy(t testing.TB, proxy map[string]any) string {
	t.Helper()
	port := freeport.Port(t)
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s3": map[string]any{
			"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": []any{proxy}}},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, caddy.Load(raw, true))
	t.Cleanup(func() { _ = caddy.Stop() })
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// staticProxy is a reverse_proxy with the minio transport (options
// merged in) in front of nodes, tried in order: Caddy's passive health
// takes a failed node out for a minute, so a retry goes to the next one.
func staticProxy(transport map[string]any, nodes ...string) map[string]any {
	tr := map[string]any{"protocol": "minio"}
	for k, v := range transport {
		tr[k] = v
	}
	ups := make([]any, 0, len(nodes))
	for _, n := range nodes {
		ups = append(ups, map[string]any{"dial": n})
	}
	return map[string]any{
		"handler":   "reverse_proxy",
		"transport": tr,
		"upstreams": ups,
		"load_balancing": map[string]any{
			"selection_policy": map[string]any{"policy": "first"},
			"retries":          2,
			"retry_match":      []any{map[string]any{"method": []string{"GET", "HEAD"}}},
		},
		"health_checks": map[string]any{"passive": map[string]any{"fail_duration": int64(time.Minute), "max_fails": 1}},
	}
}

// nodeBehaviour says what a fake node does with a request.
type nodeBehaviour int

const (
	serve               nodeBehaviour = iota // read the body, answer 200 with its hash
	shutdown                                 // MinIO's shutdown answer, before reading the body
	busy429                                  // MinIO's full request pool: 429 TooManyRequests
	slowDown503                              // 503 SlowDownWrite XML, before reading the body
	stallHeaders                             // read the headers, never answer (a frozen node)
	readHalfThen503                          // read half the body, then answer 503
	readAllThenStall                         // read the whole body, never answer
	trickle                                  // answer 200 at once, then the body slowly
	slow                                     // serve after a delay (fakeNode.delay)
	slowDownHeadersOnly                      // 503 SlowDown as MinIO answers a HEAD: no body, x-minio-error-code
	notFound                                 // 404 NoSuchKey (a restarted node that does not see its peers yet)
	readHalfThenClose                        // read half the body, then close the connection (killed mid-upload)
)

// fakeNode is a raw HTTP/1.1 server on loopback whose behaviour can be
// switched; it records what it received.
type fakeNode struct {
	t        testing.TB
	ln       net.Listener
	mode     atomic.Int32
	mu       sync.Mutex
	received []received // complete requests it answered 200
	reqs     atomic.Int64
	bodyRead atomic.Int64 // body bytes read, over all requests
	probes   atomic.Int64 // readiness probes answered
	served   atomic.Int64 // requests answered 200
	delay    atomic.Int64 // slow mode: nanoseconds before answering
	stall    chan struct{}
	lnMu     sync.Mutex
	port     int
}

type received struct {
	method, target string
	size           int64
	sha            string
}

func newFakeNode(t testing.TB, mode nodeBehaviour) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeNode{t: t, ln: ln, stall: make(chan struct{}), port: ln.Addr().(*net.TCPAddr).Port}
	f.mode.Store(int32(mode))
	go f.accept(ln)
	t.Cleanup(func() {
		close(f.stall)
		f.lnMu.Lock()
		_ = f.ln.Close()
		f.lnMu.Unlock()
	})
	return f
}

func (f *fakeNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", f.port) }

// down closes the listener: new connections are refused, as to a stopped
// process.
func (f *fakeNode) down() {
	f.lnMu.Lock()
	defer f.lnMu.Unlock()
	_ = f.ln.Close()
}

// up listens again on the same port.
func (f *fakeNode) up() {
	f.t.Helper()
	f.lnMu.Lock()
	defer f.lnMu.Unlock()
	ln, err := net.Listen("tcp", f.addr())
	require.NoError(f.t, err)
	f.ln = ln
	go f.accept(ln)
}

func (f *fakeNode) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go f.serveConn(c)
	}
}

func (f *fakeNode) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !f.handle(c, br, req) {
			return
		}
	}
}

// handle answers one request; false closes the connection.
func (f *fakeNode) handle(c net.Conn, br *bufio.Reader, req *http.Request) bool {
	switch req.URL.Path {
	case "/minio/health/ready":
		return f.probe(c)
	case "/minio/health/cluster":
		// healthready's write-quorum check of a node that is not ready
		// yet: these nodes form no cluster, a node that answers has
		// quorum.
		if nodeBehaviour(f.mode.Load()) == stallHeaders {
			<-f.stall
			return false
		}
		writeResp(c, 200, nil, "")
		return true
	}
	f.reqs.Add(1)
	expect := strings.EqualFold(req.Header.Get("Expect"), "100-continue")
	cont := func() {
		if expect {
			_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
	}
	switch nodeBehaviour(f.mode.Load()) {
	case shutdown:
		writeResp(c, 503, map[string]string{"Connection": "close", "Retry-After": "60", "Content-Type": "text/plain; charset=utf-8"}, "http: Server closed")
		return false
	case busy429:
		writeResp(c, 429, map[string]string{"Connection": "close", "Content-Type": "application/xml"}, s3Error("TooManyRequests", "Please reduce your request rate"))
		return false
	case slowDown503:
		writeResp(c, 503, map[string]string{"Connection": "close", "Content-Type": "application/xml", "Retry-After": "120"}, s3Error("SlowDownWrite", "Resource requested is unwritable, please reduce your request rate"))
		return false
	case slowDownHeadersOnly:
		// MinIO's writeErrorResponseHeadersOnly (cmd/api-response.go): the
		// error code travels in a header, HEAD answers have no body.
		writeResp(c, 503, map[string]string{"x-minio-error-code": "SlowDown", "x-minio-error-desc": `"Please reduce your request rate."`, "Retry-After": "60"}, "")
		return true
	case stallHeaders:
		<-f.stall
		return false
	case notFound:
		writeResp(c, 404, map[string]string{"Content-Type": "application/xml", "X-Node": f.addr()}, s3Error("NoSuchKey", "The specified key does not exist."))
		return true
	case readHalfThen503:
		cont()
		n, _ := io.CopyN(io.Discard, req.Body, max(req.ContentLength/2, 1))
		f.bodyRead.Add(n)
		writeResp(c, 503, map[string]string{"Connection": "close", "Content-Type": "application/xml"}, s3Error("SlowDownWrite", "x"))
		return false
	case readHalfThenClose:
		cont()
		n, _ := io.CopyN(io.Discard, req.Body, max(req.ContentLength/2, 1))
		f.bodyRead.Add(n)
		return false
	case readAllThenStall:
		cont()
		n, _ := io.Copy(io.Discard, req.Body)
		f.bodyRead.Add(n)
		<-f.stall
		return false
	case trickle:
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
		for i := 0; i < 10; i++ {
			select {
			case <-f.stall:
				return false
			case <-time.After(300 * time.Millisecond):
			}
			_, _ = c.Write([]byte{'0' + byte(i)})
		}
		return true
	}
	if nodeBehaviour(f.mode.Load()) == slow {
		select {
		case <-f.stall:
			return false
		case <-time.After(time.Duration(f.delay.Load())):
		}
	}
	cont()
	h := sha256.New()
	n, err := io.Copy(h, req.Body)
	f.bodyRead.Add(n)
	if err != nil {
		return false
	}
	sum := hex.EncodeToString(h.Sum(nil))
	f.mu.Lock()
	f.received = append(f.received, received{req.Method, req.RequestURI, n, sum})
	f.served.Add(1)
	f.mu.Unlock()
	hdr := map[string]string{"X-Node": f.addr(), "X-Body-Sha256": sum}
	if req.Method == http.MethodHead {
		// A HEAD answer has the length of the GET's body, not the body.
		hdr["Content-Length"] = strconv.Itoa(len("ok " + f.addr()))
		writeResp(c, 200, hdr, "")
		return true
	}
	writeResp(c, 200, hdr, "ok "+f.addr())
	return true
}

// probe answers a readiness probe as MinIO would in the node's mode: the
// shutdown answer while shutting down, nothing while frozen, else 200.
func (f *fakeNode) probe(c net.Conn) bool {
	f.probes.Add(1)
	switch nodeBehaviour(f.mode.Load()) {
	case shutdown:
		writeResp(c, 503, map[string]string{"Connection": "close"}, "http: Server closed")
		return false
	case stallHeaders:
		<-f.stall
		return false
	}
	writeResp(c, 200, nil, "")
	return true
}

func (f *fakeNode) got() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.received...)
}

func writeResp(c net.Conn, status int, hdr map[string]string, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if _, ok := hdr["Content-Length"]; !ok {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	_, _ = io.WriteString(c, b.String())
}

func s3Error(code, msg string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>` + code + `</Code><Message>` + msg + `</Message><Resource>/b/o</Resource><RequestId>1</RequestId></Error>`
}

// payload is n random bytes and their SHA-256.
func payload(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// client is an HTTP client that waits up to 5 s for 100 Continue, like
// the AWS SDKs and boto3 do (1 s there).
func client() *http.Client {
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second, DisableKeepAlives: true},
	}
}
