package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// TestOperations drives what MinIO operators do on purpose through
// examples/Caddyfile, with clients that do not retry: every node restarted
// at once (an upgrade), a rolling restart with drains on two proxies (a
// keepalived pair), a drain MinIO refuses, the hold's bounds, and a reload
// during a drain. It prints requests, failures, p99, max and the time from
// the restart to the first success per scenario.
func TestOperations(t *testing.T) {
	began := time.Now()
	rep := &report{}
	defer func() { rep.print(t, time.Since(began)) }()
	c := miniocluster.StartT(t, miniocluster.Options{})
	caddyfile := filepath.Join(repoRoot(t), "examples", "Caddyfile")
	a := startCaddy(t, caddyfile, c)
	b := startCaddy(t, caddyfile, c) // the second proxy of the pair
	ops := &opsEnv{c: c, proxies: []*caddyProc{a, b}, rep: rep}
	for _, p := range ops.proxies {
		p.waitStatus(t, "every node ready", 45*time.Second, func(s status) bool { return s.allReady() })
	}
	ops.prepare(t)

	for _, sc := range []struct {
		name string
		run  func(*testing.T, *opsEnv)
	}{
		{"WholeClusterRestart", testWholeClusterRestart},
		{"RollingRestartWithDrain", testRollingRestartWithDrain},
		{"DrainRefusedByQuorum", testDrainRefused},
		{"ReloadKeepsDrain", testReloadKeepsDrain},
		{"HoldBounds", testHoldBounds},
	} {
		ok := t.Run(sc.name, func(t *testing.T) {
			ops.settle(t)
			sc.run(t, ops)
		})
		if !ok {
			ops.recover(t)
		}
	}
}

// settle waits until the cluster has recovered from the scenario before:
// every node takes a write (after a restart MinIO nodes answer their
// health checks, even the maintenance check, before they have reconnected
// to every peer; until then they answer 404 and 503 SlowDownWrite, seen
// when a rolling restart began right after a whole-cluster restart) and
// both proxies route to every node. An operator starts maintenance on a
// healthy cluster too.
func (o *opsEnv) settle(t *testing.T) {
	t.Helper()
	if err := o.c.WaitReady(ctxT(t, 90*time.Second)); err != nil {
		t.Fatalf("cluster not ready before the scenario: %v", err)
	}
	if err := o.c.WaitWritable(ctxT(t, 90*time.Second)); err != nil {
		t.Fatalf("cluster not writable through every node before the scenario: %v", err)
	}
	for _, p := range o.proxies {
		p.waitStatus(t, "every node ready before the scenario", 60*time.Second, func(s status) bool { return s.allReady() })
	}
}

// opsEnv is the cluster, the two proxies and the objects the load uses.
type opsEnv struct {
	c       *miniocluster.Cluster
	proxies []*caddyProc
	rep     *report
	bucket  string
	keys    []opsKey
}

// opsKey is one object with its presigned URLs on each proxy.
type opsKey struct {
	object         string
	get, head, put []string // per proxy
}

// prepare creates the bucket and the objects and presigns their URLs on
// both proxies (a presigned URL names its host).
func (o *opsEnv) prepare(t *testing.T) {
	user, pass := o.c.Credentials()
	o.bucket = "ops"
	ctx := ctxT(t, 2*time.Minute)
	var clients []*minio.Client
	for _, p := range o.proxies {
		cl, err := minio.New(p.S3Addr, &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	if err := miniocluster.RetrySlowDown(ctx, func() error { return clients[0].MakeBucket(ctx, o.bucket, minio.MakeBucketOptions{}) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 24; i++ {
		k := opsKey{object: fmt.Sprintf("obj-%02d", i)}
		body := opsBody(k.object, 0)
		if err := miniocluster.RetrySlowDown(ctx, func() error {
			_, err := clients[0].PutObject(ctx, o.bucket, k.object, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, cl := range clients {
			for _, m := range []struct {
				method string
				dst    *[]string
			}{{http.MethodGet, &k.get}, {http.MethodHead, &k.head}, {http.MethodPut, &k.put}} {
				u, err := cl.Presign(ctx, m.method, o.bucket, k.object, 2*time.Hour, url.Values{})
				if err != nil {
					t.Fatal(err)
				}
				*m.dst = append(*m.dst, u.String())
			}
		}
		o.keys = append(o.keys, k)
	}
}

// opsBody is the body of the seq-th PUT of object: distinct per PUT, so
// the object's final content names the PUT that wrote it.
func opsBody(object string, seq int) []byte {
	return randomBytes(64<<10+seq%7, uint64(len(object))*1e6+uint64(seq)+uint64(object[len(object)-1]))
}

// recover brings every node back and undrains everything after a failed
// scenario, so the next one starts from a healthy cluster.
func (o *opsEnv) recover(t *testing.T) {
	for _, n := range o.c.Nodes() {
		if n.Paused() {
			_ = n.Cont()
		}
		if !n.Running() {
			_ = n.Launch()
		}
	}
	_ = o.c.WaitReady(ctxT(t, 90*time.Second))
	for _, addr := range o.c.S3Addrs() {
		for _, p := range o.proxies {
			_ = exec.Command(p.bin, "minio-lb", "undrain", addr, "--address", p.AdminAddr()).Run()
		}
	}
}

// opsResult is one request of the strict client.
type opsResult struct {
	id     string // requestIDHeader: finds the request's access log line
	proxy  int
	method string
	expect bool
	object string
	sum    string // PUT: the body's SHA-256
	start  time.Time
	dur    time.Duration
	status int
	body   string
	err    error
}

func (r opsResult) failed() bool { return r.err != nil || r.status != http.StatusOK }

func (r opsResult) kind() string {
	switch {
	case r.method != http.MethodPut:
		return r.method
	case r.expect:
		return "PUT+Expect"
	}
	return "PUT"
}

// opsLoad is an open-loop stream of GET, HEAD, PUT with Expect:
// 100-continue and PUT without it, alternating between the proxies, from a
// client that never retries or resends (no keep-alive, so not even Go's
// transport resends anything).
type opsLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    []opsResult
	sums   map[string]map[string]bool // object → hashes of every PUT body sent
}

func (o *opsEnv) startLoad(rate int, proxies []int) *opsLoad {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	l := &opsLoad{cancel: cancel, sums: map[string]map[string]bool{}}
	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 5 * time.Second},
	}
	kinds := []string{http.MethodGet, http.MethodHead, "PUT+Expect", http.MethodPut}
	sem := make(chan struct{}, 256)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // bounded: shed, and the report shows fewer requests
			}
			k := o.keys[i%len(o.keys)]
			kind := kinds[(i/len(o.keys))%len(kinds)]
			px := proxies[i%len(proxies)]
			r := opsResult{id: nextRequestID(), proxy: px, object: k.object, method: kind, start: time.Now()}
			var body []byte
			switch kind {
			case "PUT+Expect", http.MethodPut:
				r.method, r.expect = http.MethodPut, kind == "PUT+Expect"
				body = opsBody(k.object, i)
				s := sha256.Sum256(body)
				r.sum = hex.EncodeToString(s[:])
				l.mu.Lock()
				if l.sums[k.object] == nil {
					l.sums[k.object] = map[string]bool{}
				}
				l.sums[k.object][r.sum] = true
				l.mu.Unlock()
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer func() { <-sem }()
				target := map[string]string{http.MethodGet: k.get[px], http.MethodHead: k.head[px], http.MethodPut: k.put[px]}[r.method]
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				req, err := http.NewRequest(r.method, target, rd)
				if err == nil {
					req.Header.Set(requestIDHeader, r.id)
					if r.expect {
						req.Header.Set("Expect", "100-continue")
					}
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
						_ = resp.Body.Close()
						r.status = resp.StatusCode
						if r.status != http.StatusOK {
							r.body = string(b)
						}
					}
				}
				r.err, r.dur = err, time.Since(r.start)
				l.mu.Lock()
				l.res = append(l.res, r)
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

func (l *opsLoad) stop() []opsResult {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]opsResult(nil), l.res...)
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// opsSummary counts per kind and measures latencies.
type opsSummary struct {
	n, failed     map[string]int
	p99, max      time.Duration
	firstFailures []opsResult // the first 8
}

func summarizeOps(rs []opsResult) opsSummary {
	s := opsSummary{n: map[string]int{}, failed: map[string]int{}}
	var lat []time.Duration
	for _, r := range rs {
		s.n[r.kind()]++
		lat = append(lat, r.dur)
		if r.failed() {
			s.failed[r.kind()]++
			if len(s.firstFailures) < 8 {
				s.firstFailures = append(s.firstFailures, r)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if n := len(lat); n > 0 {
		s.p99, s.max = lat[min(n-1, n*99/100)], lat[n-1]
	}
	return s
}

// describe says what a failed request got and, from its proxy's access
// log, how its attempts went: the client sees one status, the log shows
// which nodes were tried, whether it was held and how it ended.
func (o *opsEnv) describe(t *testing.T, r opsResult) string {
	t.Helper()
	why := fmt.Sprint(r.err)
	if r.err == nil {
		why = fmt.Sprintf("%d %.160s", r.status, strings.ReplaceAll(r.body, "\n", " "))
	}
	p := o.proxies[r.proxy]
	// Caddy writes the line after the answer; a request cut by the client
	// (its timeout) may be logged later still.
	es := p.waitLog(t, 0, 5*time.Second, func(es []logEntry) bool { return len(byRequestID(es)[r.id]) > 0 })
	return fmt.Sprintf("%s %s via proxy %d at %s, took %s: %s (access log: %s; error log: %s)", r.kind(), r.object, r.proxy,
		r.start.Format("15:04:05.000"), ms(r.dur), why, describeLines(byRequestID(es)[r.id], ""), errorLogged(t, p, r.id))
}

// errorLogged is the error logged (on stderr) for the request with id:
// the proxy's own error that a 502 or 504 stands for, e.g. the last
// attempt's dial error. s3_errors logs the errors it answers; Caddy logs
// the others (http.log.error).
func errorLogged(t *testing.T, p *caddyProc, id string) string {
	t.Helper()
	tag := fmt.Sprintf("%q:[%q]", requestIDHeader, id)
	for _, line := range strings.Split(readText(t, p.StderrPath()), "\n") {
		if !strings.Contains(line, tag) {
			continue
		}
		var e struct {
			Logger, Msg, Error string
		}
		if json.Unmarshal([]byte(line), &e) == nil && (e.Logger == "http.handlers.s3_errors" || strings.HasPrefix(e.Logger, "http.log.error")) {
			return strings.TrimSuffix(e.Msg+": "+e.Error, ": ")
		}
	}
	return "no line"
}

func (s opsSummary) String() string {
	var parts []string
	total, failed := 0, 0
	for _, k := range []string{"GET", "HEAD", "PUT+Expect", "PUT"} {
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, s.failed[k], s.n[k]))
		total += s.n[k]
		failed += s.failed[k]
	}
	return fmt.Sprintf("%d requests, %d failed (%s), p99 %s, max %s", total, failed, strings.Join(parts, ", "), ms(s.p99), ms(s.max))
}

// checkContents reads every object directly from a node and requires its
// content to be one of the bodies PUT to it (or the first one): no node
// stored a short, doubled or reordered body.
func (o *opsEnv) checkContents(t *testing.T, l *opsLoad) {
	t.Helper()
	user, pass := o.c.Credentials()
	cl, err := minio.New(o.c.S3Addrs()[0], &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	for _, k := range o.keys {
		var b []byte
		_, err := miniocluster.RetryNotYetVisible(ctx, func() error {
			return miniocluster.RetrySlowDown(ctx, func() error {
				obj, err := cl.GetObject(ctx, o.bucket, k.object, minio.GetObjectOptions{})
				if err != nil {
					return err
				}
				defer obj.Close()
				b, err = io.ReadAll(obj)
				return err
			})
		})
		if err != nil {
			t.Errorf("read %s back: %v", k.object, err)
			continue
		}
		s := sha256.Sum256(b)
		sum := hex.EncodeToString(s[:])
		first := sha256.Sum256(opsBody(k.object, 0))
		if !l.sums[k.object][sum] && sum != hex.EncodeToString(first[:]) {
			t.Errorf("%s holds %d bytes that no PUT sent (a short, doubled or reordered body)", k.object, len(b))
		}
	}
}

// splitAt separates the requests in flight at t from those started after.
func splitAt(rs []opsResult, t0 time.Time) (inFlight, later []opsResult) {
	for _, r := range rs {
		switch {
		case !r.start.Before(t0):
			later = append(later, r)
		case r.start.Add(r.dur).After(t0):
			inFlight = append(inFlight, r)
		}
	}
	return inFlight, later
}

func count(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// firstSuccessAfter is the time from t0 to the end of the first request
// started at or after t0 that succeeded.
func firstSuccessAfter(rs []opsResult, t0 time.Time) time.Duration {
	best := time.Duration(-1)
	for _, r := range rs {
		if r.start.Before(t0) || r.failed() {
			continue
		}
		if d := r.start.Add(r.dur).Sub(t0); best < 0 || d < best {
			best = d
		}
	}
	return best
}

// testWholeClusterRestart: SIGTERM to every node at once (MinIO's
// documented upgrade: no rolling upgrades), then start them all; a stream of
// requests through both proxies from a client that never retries.
func testWholeClusterRestart(t *testing.T, o *opsEnv) {
	const sc = "WholeClusterRestart"
	l := o.startLoad(40, []int{0, 1})
	time.Sleep(3 * time.Second) // the scenario: steady traffic before the restart
	restartAt := time.Now()
	var wg sync.WaitGroup
	for _, n := range o.c.Nodes() {
		wg.Go(func() {
			if err := n.Terminate(20 * time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stopped := time.Since(restartAt)
	for _, n := range o.c.Nodes() {
		if err := n.Launch(); err != nil {
			t.Fatal(err)
		}
	}
	directWrite := o.firstDirectWrite(ctxT(t, 90*time.Second))
	if err := o.c.WaitReady(ctxT(t, 90*time.Second)); err != nil {
		t.Fatal(err)
	}
	readyAt := time.Now()
	time.Sleep(5 * time.Second) // the scenario: steady traffic after the restart
	rs := l.stop()
	writableAt, ok := <-directWrite
	if !ok {
		t.Error("no node took a direct write within 90 s of the restart")
	}
	s := summarizeOps(rs)
	o.rep.add(sc, "load through both proxies", s.String())
	o.rep.addf(sc, "every node stopped after SIGTERM", "%s", ms(stopped))
	o.rep.addf(sc, "cluster ready after the restart began", "%s", ms(readyAt.Sub(restartAt)))
	o.rep.addf(sc, "first direct write MinIO took after the restart began", "%s", ms(writableAt.Sub(restartAt)))
	o.rep.addf(sc, "first success of a request started after the restart began", "%s", ms(firstSuccessAfter(rs, restartAt)))
	for _, f := range s.firstFailures {
		t.Log(o.describe(t, f))
	}
	// MinIO drops the requests it is serving when it gets SIGTERM (its
	// Shutdown closes the listener and returns at once; cmd/signals.go then
	// exits): a request in flight at that moment whose body was sent or
	// whose answer had started cannot be retried by any proxy. Those are
	// counted apart; every request that arrived later must succeed.
	inFlight, later := splitAt(rs, restartAt)
	// After the restart MinIO refuses writes (503 SlowDownWrite) until its
	// nodes have reconnected to each other, even while they answer ready:
	// its peer clients retry with a randomised exponential backoff (200 ms
	// up to 30 s, internal/rest/client.go), seen lasting 14.6 s after
	// ready. The proxy holds such a write for the whole hold; a write whose
	// hold ended while MinIO still took none directly gets MinIO's own
	// answer, which S3 SDKs retry. Those are counted apart; any other
	// failure, or this one once MinIO took writes, is the proxy's.
	later, refused := splitRefusedByMinIO(later, writableAt)
	lf := summarizeOps(later)
	o.rep.addf(sc, "PUT+Expect held the whole hold while MinIO took no write, answered its 503 SlowDownWrite", "%d of %d", len(refused), len(refused)+lf.n["PUT+Expect"])
	for _, k := range []string{"GET", "HEAD", "PUT+Expect"} {
		if lf.failed[k] > 0 {
			t.Errorf("%s: %d of %d started after the restart began failed, want 0", k, lf.failed[k], lf.n[k])
		}
	}
	fi := summarizeOps(inFlight)
	o.rep.addf(sc, "in flight at SIGTERM, dropped by MinIO (not retryable)", "%d of %d", count(fi.failed), count(fi.n))
	o.rep.addf(sc, "PUT without Expect started later, failed (body streamed to a departing node: not resendable)", "%d of %d", lf.failed["PUT"], lf.n["PUT"])
	o.checkContents(t, l)
}

// exampleHold is examples/Caddyfile's hold (HoldBounds checks it).
const exampleHold = 15 * time.Second

// busyPauseMax is the minio transport's longest pause between two tries
// of a write that every node refuses as busy: a write that ended this
// long after MinIO took one directly may still have made its last try
// before that.
const busyPauseMax = 2 * time.Second

// splitRefusedByMinIO takes out of rs the PUT+Expect requests that MinIO
// refused for the whole hold: answered MinIO's 503 SlowDownWrite, after at
// least the hold, ending before MinIO took a direct write (writableAt)
// plus busyPauseMax.
func splitRefusedByMinIO(rs []opsResult, writableAt time.Time) (kept, refused []opsResult) {
	for _, r := range rs {
		if r.kind() == "PUT+Expect" && r.err == nil && r.status == http.StatusServiceUnavailable &&
			strings.Contains(r.body, "<Code>SlowDownWrite</Code>") &&
			r.dur >= exampleHold && r.start.Add(r.dur).Before(writableAt.Add(busyPauseMax)) {
			refused = append(refused, r)
			continue
		}
		kept = append(kept, r)
	}
	return kept, refused
}

// firstDirectWrite PUTs a one-byte object straight to each node, no
// retries, every 100 ms until one takes it, and sends when that was; the
// channel is closed without a value if none did before ctx ended.
func (o *opsEnv) firstDirectWrite(ctx context.Context) <-chan time.Time {
	user, pass := o.c.Credentials()
	var clients []*minio.Client
	for _, n := range o.c.Nodes() {
		mc, err := minio.New(n.S3Addr(), &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1", MaxRetries: 1})
		if err == nil {
			clients = append(clients, mc)
		}
	}
	ch := make(chan time.Time, 1)
	go func() {
		defer close(ch)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, mc := range clients {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := mc.PutObject(pctx, o.bucket, "direct-write-probe", bytes.NewReader([]byte("w")), 1, minio.PutObjectOptions{})
				cancel()
				if err == nil {
					ch <- time.Now()
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}

// minioLB runs `caddy minio-lb <args>` against the proxies' admin
// endpoints and returns its output and whether it exited 0.
func (o *opsEnv) minioLB(t *testing.T, proxies []*caddyProc, args ...string) (string, bool) {
	t.Helper()
	var addrs []string
	for _, p := range proxies {
		addrs = append(addrs, p.AdminAddr())
	}
	args = append(args, "--address", strings.Join(addrs, ","))
	cmd := exec.Command(o.proxies[0].bin, append([]string{"minio-lb"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// testRollingRestartWithDrain: the documented recipe on both proxies, one
// node after the other: drain (wait until safe), SIGTERM, start, wait
// until ready, undrain. No request of any kind may fail.
func testRollingRestartWithDrain(t *testing.T, o *opsEnv) {
	const sc = "RollingRestartWithDrain"
	l := o.startLoad(40, []int{0, 1})
	time.Sleep(2 * time.Second) // the scenario: steady traffic first
	for i, n := range o.c.Nodes() {
		addr := n.S3Addr()
		out, ok := o.minioLB(t, o.proxies, "drain", addr, "--wait", "60s", "--by", "e2e rolling restart")
		if !ok {
			l.stop()
			t.Fatalf("drain node %d: %s", i+1, out)
		}
		if !strings.Contains(out, "safe to stop on every proxy: yes") {
			t.Errorf("drain node %d: not reported safe on every proxy:\n%s", i+1, out)
		}
		for _, p := range o.proxies {
			if st, err := p.Status(); err != nil || st.nodeState("s3", addr) != "drained" {
				t.Errorf("node %d not shown drained on a proxy's status page (%v)", i+1, err)
			}
		}
		if err := n.Terminate(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := n.Launch(); err != nil {
			t.Fatal(err)
		}
		if err := n.WaitReady(ctxT(t, 90*time.Second)); err != nil {
			t.Fatal(err)
		}
		if out, ok := o.minioLB(t, o.proxies, "undrain", addr); !ok {
			t.Fatalf("undrain node %d: %s", i+1, out)
		}
		for _, p := range o.proxies {
			p.waitStatus(t, fmt.Sprintf("node %d routable again", i+1), 60*time.Second, func(s status) bool {
				return s.nodeState("s3", addr) == "ready"
			})
		}
	}
	rs := l.stop()
	s := summarizeOps(rs)
	o.rep.add(sc, "load through both proxies", s.String())
	for _, f := range s.firstFailures {
		t.Log(o.describe(t, f))
	}
	if n := s.failed["GET"] + s.failed["HEAD"] + s.failed["PUT+Expect"] + s.failed["PUT"]; n > 0 {
		t.Errorf("%d requests failed during a rolling restart with drains, want 0", n)
	}
	o.checkContents(t, l)
}

// testDrainRefused: with node 1 down, draining node 2 would lose write
// quorum (4 drives, write quorum 3): MinIO's maintenance answer (412)
// refuses it, the admin API answers 409 with MinIO's reason, the command
// says why and fails, and nothing is drained; --force
// drains anyway.
func testDrainRefused(t *testing.T, o *opsEnv) {
	const sc = "DrainRefusedByQuorum"
	if err := o.c.Node(0).Kill(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = o.c.Node(0).Launch()
		_ = o.c.WaitReady(ctxT(t, 90*time.Second))
	}()
	addr := o.c.Node(1).S3Addr()
	var out string
	var ok bool
	// MinIO needs a moment to notice the dead peer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok = o.minioLB(t, o.proxies, "drain", addr)
		if !ok || time.Now().After(deadline) {
			break
		}
		o.minioLB(t, o.proxies, "undrain", addr)
		time.Sleep(500 * time.Millisecond) // polling MinIO's view of its peers
	}
	if ok {
		t.Fatalf("drain of node 2 with node 1 down was not refused:\n%s", out)
	}
	if !strings.Contains(out, "would lose quorum") || !strings.Contains(out, "409") {
		t.Errorf("the refusal does not give MinIO's reason:\n%s", out)
	}
	for _, p := range o.proxies {
		if st, _ := p.Status(); st.nodeState("s3", addr) == "drained" {
			t.Errorf("a refused drain drained the node")
		}
	}
	o.rep.add(sc, "drain refused", strings.TrimSpace(lastLine(out)))
	out, ok = o.minioLB(t, o.proxies, "drain", addr, "--force")
	if !ok {
		t.Errorf("forced drain failed:\n%s", out)
	}
	if out, ok := o.minioLB(t, o.proxies, "undrain", addr); !ok {
		t.Errorf("undrain: %s", out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "409") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// testReloadKeepsDrain: `caddy reload` during a drain keeps it.
func testReloadKeepsDrain(t *testing.T, o *opsEnv) {
	const sc = "ReloadKeepsDrain"
	p := o.proxies[0]
	addr := o.c.Node(2).S3Addr()
	// --wait: the node restarted by the scenario before may still be
	// reconnecting to its peers; MinIO refuses the drain until it has.
	if out, ok := o.minioLB(t, o.proxies[:1], "drain", addr, "--wait", "60s"); !ok {
		t.Fatalf("drain: %s", out)
	}
	p.Reload(t, filepath.Join(repoRoot(t), "examples", "Caddyfile"))
	out, _ := o.minioLB(t, o.proxies[:1], "status", addr)
	if !strings.Contains(out, "yes") || !strings.Contains(out, "drained") && !strings.Contains(out, addr) {
		t.Errorf("status after reload:\n%s", out)
	}
	st, err := p.Status()
	if err != nil || st.nodeState("s3", addr) != "drained" {
		t.Errorf("node not drained after caddy reload (%v)", err)
	}
	o.rep.add(sc, "drain after caddy reload", st.nodeState("s3", addr))
	if out, ok := o.minioLB(t, o.proxies[:1], "undrain", addr); !ok {
		t.Errorf("undrain: %s", out)
	}
	p.waitStatus(t, "undrained node routable", 60*time.Second, func(s status) bool { return s.nodeState("s3", addr) == "ready" })
}

// testHoldBounds: with every node down for longer than the hold, requests
// are held and answered with an S3 error (503 ServiceUnavailable,
// Retry-After) after the hold, promptly and never with an empty 502.
func testHoldBounds(t *testing.T, o *opsEnv) {
	const sc = "HoldBounds"
	for _, n := range o.c.Nodes() {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, n := range o.c.Nodes() {
			_ = n.Launch()
		}
		_ = o.c.WaitReady(ctxT(t, 90*time.Second))
		for _, p := range o.proxies {
			p.waitStatus(t, "every node ready", 60*time.Second, func(s status) bool { return s.allReady() })
		}
	}()
	p := o.proxies[0]
	p.waitStatus(t, "no routable node", 30*time.Second, func(s status) bool {
		for _, pl := range s.Pools {
			if pl.Name == "s3" {
				return pl.Routable == 0
			}
		}
		return false
	})
	type answer struct {
		status     int
		code       string
		retryAfter string
		took       time.Duration
	}
	var wg sync.WaitGroup
	answers := make([]answer, 4)
	for i := range answers {
		wg.Go(func() {
			start := time.Now()
			resp, err := http.Get(o.keys[i].get[0])
			if err != nil {
				answers[i] = answer{took: time.Since(start), code: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			var e struct{ Code string }
			_ = xml.Unmarshal(b, &e)
			answers[i] = answer{resp.StatusCode, e.Code, resp.Header.Get("Retry-After"), time.Since(start)}
		})
	}
	wg.Wait()
	hold := exampleHold
	for i, a := range answers {
		if a.status != http.StatusServiceUnavailable || a.code != "ServiceUnavailable" || a.retryAfter == "" {
			t.Errorf("request %d with every node down: %d %q Retry-After %q, want 503 ServiceUnavailable with Retry-After", i, a.status, a.code, a.retryAfter)
		}
		if a.took < hold-time.Second || a.took > hold+5*time.Second {
			t.Errorf("request %d answered after %s, want about the hold (%s)", i, ms(a.took), hold)
		}
	}
	// keepalived's check sees it at once: the status page is not held.
	start := time.Now()
	resp, err := statusClient.Get("http://" + p.S3Addr + "/upstream/health/ready")
	if err != nil {
		t.Fatalf("readiness with every node down: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > 2*time.Second {
		t.Errorf("readiness with every node down: %d after %s, want 503 at once", resp.StatusCode, ms(time.Since(start)))
	}
	o.rep.addf(sc, "every node down: held requests answered", "%d %s (Retry-After %s) after %s", answers[0].status, answers[0].code, answers[0].retryAfter, ms(answers[0].took))
}

// TestSplitRefusedByMinIO: only a PUT+Expect held the whole hold and
// answered MinIO's SlowDownWrite before MinIO took writes again is
// MinIO's; everything else stays the proxy's.
func TestSplitRefusedByMinIO(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 16, 16, 37, 0, time.UTC)
	writableAt := t0.Add(17 * time.Second)
	slowDown := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDownWrite</Code></Error>`
	tests := []struct {
		name    string
		r       opsResult
		refused bool
	}{
		{"held the hold, ended before MinIO took writes", opsResult{method: http.MethodPut, expect: true, start: t0, dur: 15500 * time.Millisecond, status: 503, body: slowDown}, true},
		{"ended within the longest busy pause after", opsResult{method: http.MethodPut, expect: true, start: t0.Add(3 * time.Second), dur: 15500 * time.Millisecond, status: 503, body: slowDown}, true},
		{"ended well after MinIO took writes", opsResult{method: http.MethodPut, expect: true, start: t0.Add(5 * time.Second), dur: 15500 * time.Millisecond, status: 503, body: slowDown}, false},
		{"given up before the hold", opsResult{method: http.MethodPut, expect: true, start: t0, dur: 14 * time.Second, status: 503, body: slowDown}, false},
		{"the proxy's own 503", opsResult{method: http.MethodPut, expect: true, start: t0, dur: 15500 * time.Millisecond, status: 503, body: `<Error><Code>ServiceUnavailable</Code></Error>`}, false},
		{"a GET", opsResult{method: http.MethodGet, start: t0, dur: 15500 * time.Millisecond, status: 503, body: slowDown}, false},
		{"a transport error", opsResult{method: http.MethodPut, expect: true, start: t0, dur: 15500 * time.Millisecond, err: io.ErrUnexpectedEOF}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, refused := splitRefusedByMinIO([]opsResult{tt.r}, writableAt)
			if tt.refused {
				assert.Len(t, refused, 1)
				assert.Empty(t, kept)
			} else {
				assert.Empty(t, refused)
				assert.Len(t, kept, 1)
			}
		})
	}
}
