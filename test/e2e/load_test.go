package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Shed is the number of requests not sent because MaxInFlight were in
// flight.
func (l *load) Shed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shed
}

// PutsSkipped is the number of PUTs not sent because the key's previous
// PUT was still in flight.
func (l *load) PutsSkipped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.putSkipped
}

// loadKey is one affinity key of the load: one object, reached only through
// presigned URLs that carry `sessionid=<Session>` signed into their query
// (minio-go's Presign signs every parameter it is given, so the proxy sees
// the key and MinIO sees a valid signature).
type loadKey struct {
	Session, Object string
	get, head, put  string
}

// loadConfig shapes a steady, bounded, open-loop stream of GET, HEAD and
// PUT: requests are started at a fixed rate whatever the answers do, as
// independent clients would send them, so one hung request does not slow
// the others down (closed-loop workers would all end up waiting on the one
// hung node and measure nothing else).
type loadConfig struct {
	Workers     int           // key groups (one per simulated client), default 8
	KeysPerW    int           // keys per group, default 8
	Rate        int           // requests started per second, default 160
	MaxInFlight int           // bound on requests in flight; above it new ones are shed (counted), default 512
	Timeout     time.Duration // client timeout per request, default 45s (see defaultLoadTimeout)
	MaxDuration time.Duration // hard bound on the run, default 2m
}

// defaultLoadTimeout is above MinIO's drive timeout (30 s,
// MINIO_DRIVE_MAX_TIMEOUT; internal/config/drive): a write whose node
// waits that long on a peer's drive call (seen: a PUT on a live node 372 ms
// after a peer restarted, answered by nobody within the old 30 s client
// timeout) gets MinIO's own answer, as an S3 SDK, which sets no request
// timeout by default, would; the timeout only bounds the test.
const defaultLoadTimeout = 45 * time.Second

// requestIDHeader carries a unique id on every request the test's clients
// send (doOp, requestTagger). Caddy's access log records request headers,
// so a client's result and the log line of the same request can be joined
// exactly (byRequestID), and a test can wait until every request it sent
// is logged (caddyProc.waitLogged) instead of sleeping. The header is not
// signed: SigV4 (presigned or not) signs only the headers it lists, and
// MinIO ignores others.
const requestIDHeader = "X-E2e-Request"

var requestSeq atomic.Uint64

// nextRequestID is a process-wide unique request id.
func nextRequestID() string { return strconv.FormatUint(requestSeq.Add(1), 10) }

// requestTagger stamps every request of the clients the test does not
// drive through doOp (minio-go through minio.Options.Transport, plain
// http.Clients) with a fresh requestIDHeader, and remembers the ids of the
// requests that got an answer (Caddy logs those). sentRequests is the one
// every scenario's clients share: a scenario takes Mark before it starts
// and waits for IDsSince(mark) in the access log.
type requestTagger struct {
	mu  sync.Mutex
	ids []string
}

var sentRequests = &requestTagger{}

// Transport wraps base so that its requests are tagged.
func (tg *requestTagger) Transport(base http.RoundTripper) http.RoundTripper {
	return taggedTransport{tg, base}
}

type taggedTransport struct {
	tg   *requestTagger
	base http.RoundTripper
}

func (t taggedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	id := nextRequestID()
	r = r.Clone(r.Context())
	r.Header.Set(requestIDHeader, id)
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		t.tg.mu.Lock()
		t.tg.ids = append(t.tg.ids, id)
		t.tg.mu.Unlock()
	}
	return resp, err
}

// Mark is the number of answered requests so far; IDsSince(mark) lists
// the ids of the requests answered after it.
func (tg *requestTagger) Mark() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.ids)
}

func (tg *requestTagger) IDsSince(mark int) []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.ids[mark:]...)
}

// result is one request of the load.
type result struct {
	ID      string // requestIDHeader of every attempt
	Worker  int
	Session string
	Method  string
	Start   time.Time
	Dur     time.Duration
	Status  int
	Err     error
	Retried bool // sent again after its connection was closed under it
}

func (r result) Failed() bool {
	return r.Err != nil || r.Status != http.StatusOK
}

// loggedIDs lists the ids of the results Caddy must have logged: those
// that got an HTTP answer, and client timeouts (Caddy had the request and
// logs it when the client goes away, status 499). A request that never got
// through (refused, closed under it) may have no line.
func loggedIDs(rs []result) []string {
	var ids []string
	for _, r := range rs {
		if r.Status != 0 || isTimeout(r.Err) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// loadSet is the keys and the object body the load uses.
type loadSet struct {
	keys   [][]loadKey // per worker
	body   []byte
	sum    [32]byte
	bucket string
}

// prepareLoad uploads one object per key and presigns its GET, HEAD and PUT
// URLs with the key's sessionid.
func prepareLoad(t *testing.T, cl *minio.Client, bucket, prefix string, cfg loadConfig) *loadSet {
	t.Helper()
	cfg = cfg.withDefaults()
	ls := &loadSet{body: randomBytes(16<<10, 7), bucket: bucket}
	ls.sum = sha256.Sum256(ls.body)
	for w := 0; w < cfg.Workers; w++ {
		var ks []loadKey
		for k := 0; k < cfg.KeysPerW; k++ {
			sess := fmt.Sprintf("%s-w%d-k%d", prefix, w, k)
			obj := fmt.Sprintf("%s/w%d/k%d", prefix, w, k)
			// A cluster that just came back may still refuse writes for
			// a moment ("Resource requested is unwritable"): retry, for
			// up to a minute per object (not one bound for all 64 PUTs:
			// on a loaded machine each takes a second or more).
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var err error
			for {
				_, err = cl.PutObject(ctx, bucket, obj, bytes.NewReader(ls.body), int64(len(ls.body)), minio.PutObjectOptions{})
				if err == nil || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
			cancel()
			if err != nil {
				t.Fatalf("prepare load: put %s: %v", obj, err)
			}
			ctx = ctxT(t, time.Minute)
			q := url.Values{"sessionid": {sess}}
			get, err := cl.Presign(ctx, http.MethodGet, bucket, obj, time.Hour, q)
			if err != nil {
				t.Fatal(err)
			}
			head, err := cl.Presign(ctx, http.MethodHead, bucket, obj, time.Hour, q)
			if err != nil {
				t.Fatal(err)
			}
			put, err := cl.Presign(ctx, http.MethodPut, bucket, obj, time.Hour, q)
			if err != nil {
				t.Fatal(err)
			}
			ks = append(ks, loadKey{Session: sess, Object: obj, get: get.String(), head: head.String(), put: put.String()})
		}
		ls.keys = append(ls.keys, ks)
	}
	return ls
}

func (c loadConfig) withDefaults() loadConfig {
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.KeysPerW == 0 {
		c.KeysPerW = 8
	}
	if c.Rate == 0 {
		c.Rate = 160
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 512
	}
	if c.Timeout == 0 {
		c.Timeout = defaultLoadTimeout
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 2 * time.Minute
	}
	return c
}

// load is a running stream of requests.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    []result
	shed   int
	issued map[string][]time.Time // session -> when its requests were sent
	// putting marks the keys with a PUT in flight; putSkipped counts the
	// PUTs not sent for that.
	putting    map[string]bool
	putSkipped int
	keys       int
	rate       int
	client     *http.Client
}

// ops is the mix of one key's cycle: GET-heavy, a PUT in four.
var ops = []string{http.MethodGet, http.MethodHead, http.MethodGet, http.MethodPut}

// startLoad starts cfg.Rate requests per second, walking every key round
// robin with the op mix, until Stop or MaxDuration.
func startLoad(ls *loadSet, cfg loadConfig) *load {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.MaxDuration)
	l := &load{cancel: cancel, issued: map[string][]time.Time{}, putting: map[string]bool{}, rate: cfg.Rate, client: &http.Client{
		Timeout:   cfg.Timeout,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	var flat []struct {
		w int
		k loadKey
	}
	for w, ks := range ls.keys {
		for _, k := range ks {
			flat = append(flat, struct {
				w int
				k loadKey
			}{w, k})
		}
	}
	l.keys = len(flat)
	sem := make(chan struct{}, cfg.MaxInFlight)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Key j's n-th request is ops[(j+n) % 4]: every key walks the
			// op mix in turn, and at any moment the keys are spread over
			// the four ops, so any window of the load holds each op
			// (with one op for all keys per round, a 3-4 s window could
			// miss every HEAD: seen in SIGSTOP, 3 HEADs in the window).
			f := flat[i%len(flat)]
			op := ops[(i%len(flat)+i/len(flat))%len(ops)]
			// One writer per object, as an S3 client writes: a PUT is
			// not sent while the key's previous PUT is unanswered. MinIO
			// serialises PUTs of one object on its write lock; sent
			// every 1.6 s (one op in four, 160 req/s over 64 keys) to a
			// MinIO whose PUTs take longer on a loaded machine (seen:
			// 5-20 s), they queue on the lock without bound and time out,
			// which measures the lock queue, not the proxy.
			l.mu.Lock()
			if op == http.MethodPut && l.putting[f.k.Session] {
				l.putSkipped++
				l.mu.Unlock()
				continue
			}
			l.mu.Unlock()
			select {
			case sem <- struct{}{}:
			default:
				l.mu.Lock()
				l.shed++
				l.mu.Unlock()
				continue
			}
			l.mu.Lock()
			l.issued[f.k.Session] = append(l.issued[f.k.Session], time.Now())
			if op == http.MethodPut {
				l.putting[f.k.Session] = true
			}
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer func() { <-sem }()
				r := doOp(l.client, ls, f.k, op)
				r.Worker = f.w
				l.mu.Lock()
				l.res = append(l.res, r)
				if op == http.MethodPut {
					delete(l.putting, f.k.Session)
				}
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

// waitIssued waits until the load has sent at least perKey requests of
// every key since the given time: a scenario's "load runs on for a while"
// counted in requests, so a starved load generator on a busy machine
// lengthens the wait instead of shrinking the sample. At the nominal rate
// it takes perKey x keys / rate; the wait fails the test after ten times
// that (at least 30 s): the rate is not what a scenario measures.
func (l *load) waitIssued(tb testing.TB, what string, since time.Time, perKey int) {
	tb.Helper()
	nominal := time.Duration(perKey*l.keys) * time.Second / time.Duration(l.rate)
	deadline := time.Now().Add(max(10*nominal, 30*time.Second))
	for {
		least, behind := l.issuedSince(since)
		if least >= perKey {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("load: %s: key %s got %d requests since %s, want %d (%d keys at %d req/s; %d shed)",
				what, behind, least, since.Format("15:04:05.000"), perKey, l.keys, l.rate, l.Shed())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issuedSince is the smallest number of requests sent since t over the
// keys, and a key with that number.
func (l *load) issuedSince(t time.Time) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	least, key := -1, ""
	for s, ts := range l.issued {
		n := len(ts) - sort.Search(len(ts), func(i int) bool { return !ts[i].Before(t) })
		if least < 0 || n < least {
			least, key = n, s
		}
	}
	if len(l.issued) < l.keys {
		return 0, "(a key not sent yet)"
	}
	return least, key
}

// maxResends bounds the resends of a request whose connection was closed
// under it (minio-go retries up to 10 times, the AWS SDKs 3).
const maxResends = 3

// resendBackoff is the wait before resend number attempt+1: 50, 100,
// 200 ms, the order of minio-go's (100 ms base) and the AWS SDKs' backoff.
// By then the client's transport has seen its other pooled connections to
// the old server close and dropped them.
func resendBackoff(attempt int) time.Duration {
	return 50 * time.Millisecond << attempt
}

// doOp sends one request and checks what a client would: the status, and
// for GET that the bytes are the uploaded ones.
func doOp(client *http.Client, ls *loadSet, k loadKey, op string) result {
	r := result{ID: nextRequestID(), Session: k.Session, Method: op, Start: time.Now()}
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		var req *http.Request
		var err error
		switch op {
		case http.MethodGet:
			req, err = http.NewRequest(op, k.get, nil)
		case http.MethodHead:
			req, err = http.NewRequest(op, k.head, nil)
		case http.MethodPut:
			req, err = http.NewRequest(op, k.put, bytes.NewReader(ls.body))
		}
		if err != nil {
			r.Err = err
			return r
		}
		req.Header.Set(requestIDHeader, r.ID)
		// Like the S3 SDKs (minio-go, the AWS SDKs, boto3), send a
		// request again when its connection was closed under it (reset,
		// broken pipe, EOF before any answer). caddy reload closes every
		// idle keep-alive connection, and one may be closed just as the
		// client writes on it; the resend may then pick another one being
		// closed, or get a fresh connection whose source port the kernel
		// hands out again while the server still holds the old one in
		// TIME_WAIT (seen: a broken pipe on a new connection with the
		// closed one's port). A fresh connection can also be reset: Caddy
		// binds each config's listener with SO_REUSEPORT
		// (listenReusable in caddy's listen_unix.go), the kernel spreads
		// new connections over the old and the new socket, and closing
		// the old one resets the connections still in its accept queue
		// (seen: a GET on a connection Caddy never logged, reset at the
		// old server's "servers shutting down"). Go's transport resends a
		// GET or HEAD itself only when the connection was a reused one,
		// never a PUT. Bounded like the SDKs' retry counts, and after a
		// backoff as theirs: resent at once, a request takes the next
		// idle connection of the pool, which the same reload is closing
		// (seen: a PUT at the old server's "servers shutting down" got a
		// broken pipe on 4 pooled connections in a row, within
		// milliseconds). A refused connection (nothing listening: Caddy
		// down or between listeners) and a timeout are failures, never
		// resent. Counted in result.Retried.
		resp, err = client.Do(req)
		if err == nil {
			break
		}
		if attempt < maxResends && connClosedUnder(err) {
			r.Retried = true
			time.Sleep(resendBackoff(attempt))
			continue
		}
		r.Err, r.Dur = err, time.Since(r.Start)
		return r
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.Status, r.Dur = resp.StatusCode, time.Since(r.Start)
	switch {
	case err != nil:
		r.Err = fmt.Errorf("read body: %w", err)
	case op == http.MethodGet && resp.StatusCode == http.StatusOK && sha256.Sum256(body) != ls.sum:
		r.Err = fmt.Errorf("GET %s: %d bytes with another hash than the %d uploaded", k.Object, len(body), len(ls.body))
	case resp.StatusCode != http.StatusOK:
		r.Err = fmt.Errorf("%s %s: status %d: %.200s", op, k.Object, resp.StatusCode, body)
	}
	return r
}

// Stop ends the load and returns every result, in start order.
func (l *load) Stop() []result {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]result(nil), l.res...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// summary counts requests and failures per method and the latencies.
type summary struct {
	N, Failed     int
	ByMethod      map[string][2]int // method -> {requests, failed}
	P50, P99, Max time.Duration
	FirstErrs     []string
	Retried       int
}

func summarize(rs []result) summary {
	s := summary{ByMethod: map[string][2]int{}}
	var lat []time.Duration
	for _, r := range rs {
		s.N++
		if r.Retried {
			s.Retried++
		}
		m := s.ByMethod[r.Method]
		m[0]++
		if r.Failed() {
			s.Failed++
			m[1]++
			if len(s.FirstErrs) < 5 {
				s.FirstErrs = append(s.FirstErrs, fmt.Sprintf("%s %s at %s: %v", r.Method, r.Session, r.Start.Format("15:04:05.000"), r.Err))
			}
		}
		s.ByMethod[r.Method] = m
		lat = append(lat, r.Dur)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if n := len(lat); n > 0 {
		s.P50 = lat[n/2]
		s.P99 = lat[min(n-1, n*99/100)]
		s.Max = lat[n-1]
	}
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("%d requests (failed: GET %d/%d, HEAD %d/%d, PUT %d/%d; resent %d), latency p50 %s p99 %s max %s",
		s.N, s.ByMethod["GET"][1], s.ByMethod["GET"][0], s.ByMethod["HEAD"][1], s.ByMethod["HEAD"][0],
		s.ByMethod["PUT"][1], s.ByMethod["PUT"][0], s.Retried, ms(s.P50), ms(s.P99), ms(s.Max))
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

// randomBytes is n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// connClosedUnder reports an error of a connection the server closed while
// the request was being sent or before any answer came: a reset, a broken
// pipe, an EOF, or Go's "server closed idle connection". Refused
// connections and timeouts are not.
func connClosedUnder(err error) bool {
	if isTimeout(err) || errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		// the body write after the transport's read side saw the reset
		// and closed the connection ("use of closed network connection")
		errors.Is(err, net.ErrClosed) ||
		// net/http's unexported errServerClosedIdle: the idle connection
		// read EOF before the request went out (Go resends GET/HEAD then)
		strings.Contains(err.Error(), "http: server closed idle connection")
}

// isTimeout reports a client timeout (never retried: that is a slow
// answer, not a closed connection).
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// retried counts the results that were sent twice.
func retried(rs []result) int {
	n := 0
	for _, r := range rs {
		if r.Retried {
			n++
		}
	}
	return n
}

// TestConnClosedUnder pins which client errors the load resends: only a
// connection closed under the request, never a refusal or a timeout.
func TestConnClosedUnder(t *testing.T) {
	opErr := func(err error) error {
		return &url.Error{Op: "Put", URL: "http://127.0.0.1:1/x", Err: &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)}}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"reset", opErr(syscall.ECONNRESET), true},
		{"broken pipe", opErr(syscall.EPIPE), true},
		{"EOF", &url.Error{Op: "Put", URL: "u", Err: io.EOF}, true},
		{"unexpected EOF", &url.Error{Op: "Put", URL: "u", Err: io.ErrUnexpectedEOF}, true},
		{"server closed idle connection", &url.Error{Op: "Put", URL: "u", Err: errors.New("http: server closed idle connection")}, true},
		{"body write on the closed connection", &url.Error{Op: "Put", URL: "u", Err: &net.OpError{Op: "readfrom", Net: "tcp", Err: &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}}}, true},
		{"refused", opErr(syscall.ECONNREFUSED), false},
		{"timeout", &url.Error{Op: "Put", URL: "u", Err: context.DeadlineExceeded}, false},
		{"other", errors.New("status 503"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connClosedUnder(tt.err); got != tt.want {
				t.Errorf("connClosedUnder(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
