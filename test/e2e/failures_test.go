package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const loadBucket = "e2e-load"

// loadFor makes the load bucket (once) and the keys of one scenario, sent
// through the main Caddy.
func loadFor(t *testing.T, e *env, prefix string) *loadSet {
	t.Helper()
	return loadVia(t, e, e.caddy.S3Addr, prefix)
}

// loadVia is loadFor through the S3 site at addr (SigV4 signs the host).
func loadVia(t *testing.T, e *env, addr, prefix string) *loadSet {
	t.Helper()
	cl, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(e.user, e.pass, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	cl.SetAppInfo("e2e-load-setup", "1.0")
	ctx := ctxT(t, time.Minute)
	if err := cl.MakeBucket(ctx, loadBucket, minio.MakeBucketOptions{}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			t.Fatalf("make bucket %s: %v", loadBucket, err)
		}
	}
	return prepareLoad(t, cl, loadBucket, prefix, loadConfig{})
}

// loadEntries waits until Caddy has logged every request of the load
// that it must have logged (loggedIDs: Caddy writes a line after the
// response, so the client is ahead of the log), then returns the access
// log entries of the scenario's load (sessionid starting with prefix-)
// from offset from.
func loadEntries(t *testing.T, p *caddyProc, from int64, rs []result, prefix string) []logEntry {
	t.Helper()
	es := p.waitLogged(t, from, loggedIDs(rs), 30*time.Second)
	return filter(es, func(x logEntry) bool {
		return strings.HasPrefix(x.SessionID(), prefix+"-")
	})
}

// placements maps each session to the node that served its latest
// first-attempt request (Retries 0) started before t: where the key lived
// then. Unlike homeNodes it asserts nothing.
func placements(es []logEntry, before time.Time) map[string]string {
	m := map[string]string{}
	latest := map[string]time.Time{}
	for _, x := range es {
		if x.Upstream == "" || x.Retries > 0 || x.HedgedNode != "" || x.AvoidedNode != "" || !x.Start().Before(before) {
			continue
		}
		if s := x.SessionID(); x.Start().After(latest[s]) {
			m[s], latest[s] = x.Upstream, x.Start()
		}
	}
	return m
}

// keyNodes maps each session to the upstreams that served it (with counts).
// Retried requests are left out: after a failed first attempt (a stale
// keep-alive connection, say) the request rightly ends on the next node of
// the key's order, which says nothing about where the key lives; so are
// hedged reads, answered by whichever of two nodes was first, and reads
// the transport moved off a slow node (avoided_node).
func keyNodes(es []logEntry, keep func(logEntry) bool) map[string]map[string]int {
	m := map[string]map[string]int{}
	for _, x := range es {
		if x.Upstream == "" || x.Retries > 0 || x.HedgedNode != "" || x.AvoidedNode != "" || !keep(x) {
			continue
		}
		s := x.SessionID()
		if m[s] == nil {
			m[s] = map[string]int{}
		}
		m[s][x.Upstream]++
	}
	return m
}

// homeNodes is the single node of every session in steady state; it fails
// the test if a session used more than one node.
func homeNodes(t *testing.T, what string, m map[string]map[string]int) map[string]string {
	t.Helper()
	home := map[string]string{}
	for s, ups := range m {
		if len(ups) != 1 {
			t.Errorf("%s: session %s used %d nodes in steady state, want 1: %v", what, s, len(ups), ups)
			continue
		}
		for up := range ups {
			home[s] = up
		}
	}
	return home
}

// inWindow keeps entries whose request started in [a, b).
func inWindow(a, b time.Time) func(logEntry) bool {
	return func(x logEntry) bool { s := x.Start(); return !s.Before(a) && s.Before(b) }
}

// resultsIn keeps results that started in [a, b).
func resultsIn(rs []result, a, b time.Time) []result {
	var out []result
	for _, r := range rs {
		if !r.Start.Before(a) && r.Start.Before(b) {
			out = append(out, r)
		}
	}
	return out
}

// failedBy returns the failed results of the given methods.
func failedBy(rs []result, methods ...string) []result {
	var out []result
	for _, r := range rs {
		if r.Failed() && (len(methods) == 0 || contains(methods, r.Method)) {
			out = append(out, r)
		}
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// routable reports whether the S3 pool routes to addr.
func routable(s status, addr string) bool {
	for _, p := range s.Pools {
		if p.Name != "s3" {
			continue
		}
		for _, n := range p.Nodes {
			if n.Upstream == addr {
				return n.Routable
			}
		}
	}
	return false
}

// offlineWindow probes a starting node's /minio/health/ready every 10ms
// (bounded by timeout) and records when it answered 200 with
// X-Minio-Server-Status: offline, and when it first answered ready.
type offlineWindow struct {
	First, Last, Ready time.Time
	Offline            int // offline answers seen
}

func watchStart(n *miniocluster.Node, timeout time.Duration) offlineWindow {
	var w offlineWindow
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := n.Probe(ctx, "/minio/health/ready")
		cancel()
		now := time.Now()
		if err == nil && r.Status == http.StatusOK {
			if r.Offline() {
				if w.Offline == 0 {
					w.First = now
				}
				w.Offline++
				w.Last = now
			} else {
				w.Ready = now
				return w
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w
}

// crashLoad is the load of the SIGKILL and restart scenarios: the default
// rate and client timeout (30 s: on a loaded 2-core machine MinIO's PUTs
// took 6-10 s in steady state, before any node failed), and room for the
// requests that wait on objects MinIO keeps locked after the kill (every
// request of such an object waits up to the timeout: about 75 per object
// at 160 req/s over 64 keys) without shedding the other keys' load.
var crashLoad = loadConfig{MaxInFlight: 2048}

// testKill: SIGKILL one node under load, then start it again.
func testKill(t *testing.T, e *env) {
	const sc = "Failure/SIGKILL"
	ls := loadFor(t, e, "kill")
	victim := e.c.Node(1)
	vaddr := victim.S3Addr()
	from := e.caddy.LogSize()
	pc := e.caddy.probeConfig(t, "s3")
	began := time.Now()
	l := startLoad(ls, crashLoad)
	var once sync.Once
	stop := func() []result { var rs []result; once.Do(func() { rs = l.Stop() }); return rs }
	t.Cleanup(func() { stop() })

	// Steady state first: every key served 10 times (4 s at 160 req/s).
	l.waitIssued(t, "before the kill", began, 10)
	killAt := time.Now()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ejectedAt := e.caddy.waitStatus(t, "killed node not routable", pc.Detection()+10*time.Second, func(s status) bool { return !routable(s, vaddr) })
	// The scenario: the node stays dead for 8 s under load, its keys
	// served by the others.
	time.Sleep(time.Until(killAt.Add(8 * time.Second)))

	launchAt := time.Now()
	if err := victim.Launch(); err != nil {
		t.Fatal(err)
	}
	win := watchStart(victim, 60*time.Second)
	if win.Ready.IsZero() {
		t.Fatalf("node %s not ready 60s after its start:\n%s", vaddr, victim.LogTail(20))
	}
	backAt := e.caddy.waitStatus(t, "restarted node routable again", pc.Readmission()+20*time.Second, func(s status) bool { return routable(s, vaddr) && s.nodeState("s3", vaddr) == "ready" })
	// Back: every key served 10 more times (4 s at 160 req/s) from a
	// second after the readmission, the window checked below. A node that
	// rejoined may refuse its first writes with 503 SlowDownWrite (MinIO
	// without write quorum yet: seen for 14 s after a 0.7 s restart);
	// busy, it gets half its share by design (docs/healthready.md), so
	// the window starts once the node has been ready, not busy, for a
	// second, and holds no busy moment.
	settledAt, endAt := backAt, time.Time{}
	for deadline := time.Now().Add(60 * time.Second); ; {
		l.waitIssued(t, "after the restart", settledAt.Add(time.Second), 10)
		endAt = time.Now()
		if !e.caddy.busyDuring(t, "s3", vaddr, settledAt, endAt) {
			break
		}
		if endAt.After(deadline) {
			t.Fatalf("the restarted node %s was still busy now and then %s after its readmission", vaddr, ms(endAt.Sub(backAt)))
		}
		settledAt = e.caddy.waitStatus(t, "restarted node no longer busy", 30*time.Second, func(s status) bool { return s.nodeState("s3", vaddr) == "ready" })
	}
	rs := stop()

	es := loadEntries(t, e.caddy, from, rs, "kill")
	outAt := e.caddy.leftReady(t, "s3", vaddr, killAt)
	if outAt.IsZero() {
		t.Fatalf("caddy's log has no state change of the killed node %s after the kill (ejected on the status page at %s)", vaddr, ejectedAt.Format("15:04:05.000"))
	}
	home := homeNodes(t, "before the kill", keyNodes(es, inWindow(time.Time{}, killAt)))
	victimKeys := 0
	for _, n := range home {
		if n == vaddr {
			victimKeys++
		}
	}
	if victimKeys == 0 {
		t.Fatalf("no key of the load was on the victim %s before the kill: the scenario proves nothing (homes %v)", vaddr, home)
	}

	// Detection from the access log: the last request sent to the dead node.
	var lastToDead time.Time
	for _, x := range es {
		if x.Upstream == vaddr && x.Start().After(killAt) && x.Start().Before(launchAt) && x.Start().After(lastToDead) {
			lastToDead = x.Start()
		}
	}
	// While it was out: keys of live nodes stay home, keys of the dead
	// node go elsewhere (never to it).
	// (from Caddy's own log of the ejection until the node itself
	// answered ready: Caddy cannot route to it before that)
	out := keyNodes(es, inWindow(outAt.Add(outSlack), win.Ready))
	moved, stayed := 0, 0
	for s, ups := range out {
		h := home[s]
		for up := range ups {
			switch {
			case up == vaddr:
				t.Errorf("session %s reached the dead node %s while it was out (ejected %s, ready %s): %s", s, vaddr,
					outAt.Format("15:04:05.000"), win.Ready.Format("15:04:05.000"), describe(es, s, vaddr, outAt, win.Ready))
			case h != vaddr && up != h:
				t.Errorf("session %s moved from live node %s to %s while %s was out: only the dead node's keys may move", s, e.nodeOf(h), e.nodeOf(up), vaddr)
			}
		}
		if h == vaddr {
			moved++
		} else {
			stayed++
		}
	}
	// Back: every key on its home node again.
	after := keyNodes(es, inWindow(settledAt.Add(time.Second), endAt))
	returned := 0
	for s, ups := range after {
		if len(ups) != 1 || ups[home[s]] == 0 {
			t.Errorf("after the restart session %s used %v, want only its home %s", s, ups, e.nodeOf(home[s]))
		} else if home[s] == vaddr {
			returned++
		}
	}
	if returned == 0 {
		t.Errorf("no key of the restarted node %s came back to it", vaddr)
	}
	// A starting node gets nothing until Caddy has seen it ready `rise` times.
	for _, x := range es {
		if x.Upstream == vaddr && x.Start().After(launchAt) && x.Start().Before(win.Ready) {
			t.Errorf("request %s %s reached %s at %s while it was still starting", x.Request.Method, x.Request.URI, vaddr, x.Start().Format("15:04:05.000"))
		}
	}

	// Failures: only requests on the node when it died, and later ones on
	// the objects those held locked in MinIO (see crashFailures).
	cf := crashFailures(t, rs, es, crash{Victim: vaddr, KillAt: killAt, Killed: killed, OutAt: outAt, Home: placements(es, killAt)})
	metrics := e.caddy.Metrics(t)
	if !strings.Contains(metrics, "caddy_minio_lb_") {
		t.Errorf("admin /metrics has no caddy_minio_lb_* series")
	}

	sum := summarize(rs)
	e.rep.addf(sc, "load (open loop, 160 req/s, presigned GET/HEAD/PUT over 64 sessionid keys)", "%s", sum)
	e.rep.addf(sc, "PUTs not sent: the key's previous PUT unanswered", "%d", l.PutsSkipped())
	e.rep.addf(sc, "failed: in flight on the node at the kill / on objects MinIO kept locked / MinIO 404 or 503 SlowDownWrite / other", "%s", cf)
	e.rep.addf(sc, "detection: kill -> status page not routable", "%s", ms(ejectedAt.Sub(killAt)))
	if !lastToDead.IsZero() {
		e.rep.addf(sc, "detection: kill -> last request sent to the dead node (log)", "%s", ms(lastToDead.Sub(killAt)))
	} else {
		e.rep.add(sc, "detection: kill -> last request sent to the dead node (log)", "none after the kill")
	}
	e.rep.addf(sc, "keys: on the dead node moved / on live nodes kept", "%d / %d (of %d)", moved, stayed, len(home))
	e.rep.addf(sc, "restart: process start -> node ready (offline window)", "%s (%s, %d offline answers)", ms(win.Ready.Sub(launchAt)), ms(win.Last.Sub(win.First)), win.Offline)
	e.rep.addf(sc, fmt.Sprintf("recovery: node ready -> routable in caddy (rise %d x %s)", pc.Rise, pc.Interval), "%s", ms(backAt.Sub(win.Ready)))
	e.rep.addf(sc, "recovery: routable -> no longer busy (503 SlowDownWrite after the restart)", "%s", ms(settledAt.Sub(backAt)))
	e.rep.addf(sc, "keys back on the restarted node", "%d of %d", returned, victimKeys)
	if len(sum.FirstErrs) > 0 {
		t.Logf("failed requests (first %d): %s", len(sum.FirstErrs), strings.Join(sum.FirstErrs, "\n  "))
	}
}

// testHang: SIGSTOP one node under load (a frozen process: its sockets
// accept, nothing answers), then SIGCONT. Caddy's part: eject the node by
// probe timeouts, send it nothing more, stay responsive. MinIO's part is
// measured next to it: a direct client of a live node (no Caddy) shows how
// long MinIO's own GET/PUT wait on the frozen peer.
func testHang(t *testing.T, e *env) {
	const sc = "Failure/SIGSTOP"
	const hold = 16 * time.Second
	ls := loadFor(t, e, "hang")
	victim := e.c.Node(2)
	vaddr := victim.S3Addr()
	direct := directLoadSet(t, e, ls, e.c.Node(0).S3Addr())
	from := e.caddy.LogSize()
	pc := e.caddy.probeConfig(t, "s3")
	// A lower rate: every request started while the cluster stalls stays
	// in flight until it ends.
	began := time.Now()
	l := startLoad(ls, loadConfig{Rate: 60, MaxInFlight: 1500})
	ld := startLoad(direct, loadConfig{Rate: 10, MaxInFlight: 500})
	var once sync.Once
	var rs, rd []result
	stop := func() { once.Do(func() { rs, rd = l.Stop(), ld.Stop() }) }
	t.Cleanup(func() { stop(); _ = victim.Cont() })

	// Steady state first: every key served 4 times (about 4 s at 60 req/s).
	l.waitIssued(t, "before SIGSTOP", began, 4)
	stopAt := time.Now()
	if err := victim.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	ejectedAt := e.caddy.waitStatus(t, "hung node not routable", pc.Detection()+15*time.Second, func(s status) bool { return !routable(s, vaddr) })
	// Caddy itself answers at once while a node is frozen.
	st := time.Now()
	if _, err := e.caddy.Status(); err != nil {
		t.Errorf("status page while a node is frozen: %v", err)
	}
	statusLatency := time.Since(st)
	// The scenario: the node stays frozen for `hold` under load, and at
	// least 4 s after its ejection: the latency checks below need a window
	// of traffic after the ejection, which may take up to pc.Detection().
	time.Sleep(time.Until(later(stopAt.Add(hold), ejectedAt.Add(4*time.Second))))
	contAt := time.Now()
	if err := victim.Cont(); err != nil {
		t.Fatal(err)
	}
	backAt := e.caddy.waitStatus(t, "continued node routable again", pc.Readmission()+20*time.Second, func(s status) bool { return routable(s, vaddr) && s.nodeState("s3", vaddr) == "ready" })
	// Back: every key served twice more (about 2 s at 60 req/s).
	l.waitIssued(t, "after SIGCONT", backAt, 2)
	stop()

	es := loadEntries(t, e.caddy, from, rs, "hang")
	// When Caddy took the node out: its own log, not the status page poll.
	outAt := e.caddy.leftReady(t, "s3", vaddr, stopAt)
	if outAt.IsZero() {
		t.Fatalf("caddy's log has no state change of the frozen node %s after SIGSTOP (not routable on the status page at %s)", vaddr, ejectedAt.Format("15:04:05.000"))
	}
	// Objects with a request running on the node when it froze: MinIO
	// keeps that request's locks on the other nodes while the node is
	// frozen, and after SIGCONT until the request ends or the lock
	// expires, so every request of such an object waits whatever node the
	// proxy picks (seen: a PUT running on the node at SIGSTOP, then every
	// GET, HEAD and PUT of its object timed out after 30 s on the frozen
	// node and on the live one it moved to, until after SIGCONT).
	lockedAtStop := map[string]bool{}
	for _, x := range es {
		if x.Upstream == vaddr && x.Start().Before(stopped) && x.End().After(stopAt) {
			lockedAtStop[x.SessionID()] = true
		}
	}
	// After the ejection nothing new is sent to the frozen node.
	stuck := 0
	for _, x := range es {
		if x.Upstream != vaddr || x.Start().Before(stopAt) || !x.Start().Before(contAt) {
			continue
		}
		if x.Start().After(outAt.Add(outSlack)) {
			t.Errorf("request %s %s sent to the frozen node at %s, after its ejection at %s", x.Request.Method, x.Request.URI, x.Start().Format("15:04:05.000"), outAt.Format("15:04:05.000"))
		} else {
			stuck++
		}
	}
	// The stop lands anywhere in a probe interval, then fall probes must
	// time out; every interval is jittered by up to +10%.
	if limit := pc.Detection(); outAt.Sub(stopAt) > limit {
		t.Errorf("frozen node ejected %s after SIGSTOP, want within (fall+1) x interval x 1.1 (jitter) + timeout (%s; %s)", ms(outAt.Sub(stopAt)), limit, pc)
	}
	byMethod := func(rs []result, m string) []result {
		var out []result
		for _, r := range rs {
			if r.Method == m {
				out = append(out, r)
			}
		}
		return out
	}
	// HEAD is answered by MinIO's live nodes without waiting on the frozen
	// peer: through Caddy it must be fast once the node is ejected.
	// "Bounded" is measured against MinIO itself: through Caddy, HEAD is
	// not slower than a direct client of a live node sees it (MinIO's own
	// stall on its frozen peer varies from run to run).
	// The control client sends few HEADs (10 req/s over three methods), so
	// MinIO's own stall is its slowest request of any method meanwhile.
	// HEADs of objects locked by a request frozen with the node wait on
	// MinIO's lock wherever they go: left out.
	var unlocked []result
	for _, r := range resultsIn(rs, ejectedAt.Add(time.Second), contAt) {
		if !lockedAtStop[r.Session] {
			unlocked = append(unlocked, r)
		}
	}
	heads := summarize(byMethod(unlocked, http.MethodHead))
	ctrl := summarize(resultsIn(rd, ejectedAt, contAt))
	if bound := max(3*time.Second, 2*ctrl.Max); heads.N < 10 {
		t.Errorf("only %d HEAD between the ejection and SIGCONT", heads.N)
	} else if ctrl.N == 0 {
		t.Errorf("the direct control client finished no request between the ejection and SIGCONT")
	} else if heads.P99 > bound {
		t.Errorf("HEAD through caddy after the ejection: p99 %s, want under %s (3s, or twice the slowest direct request %s)", ms(heads.P99), ms(bound), ms(ctrl.Max))
	}
	// No GET or HEAD fails, but for two answers of MinIO's own, counted
	// apart:
	//   - a timeout (or 503) on an object locked by a request that was
	//     running on the node when it froze (lockedAtStop);
	//   - MinIO's 404 to a request Caddy had sent to the node before it
	//     froze or before its ejection: the node holds it until SIGCONT
	//     and may then answer 404 for an object that exists (seen: HEADs
	//     held 8-15 s answered 404 right after SIGCONT, before the node
	//     was back with its peers). The proxy passed MinIO's answer on.
	logged := byRequestID(es)
	heldAnswers, lockedFails := 0, 0
	for _, r := range failedBy(rs, http.MethodGet, http.MethodHead) {
		if lockedAtStop[r.Session] && (isTimeout(r.Err) || r.Status == http.StatusServiceUnavailable) {
			lockedFails++
			continue
		}
		if heldAndAnswered(logged[r.ID], vaddr, outAt.Add(outSlack), contAt, http.StatusNotFound) {
			heldAnswers++
			continue
		}
		t.Errorf("%s %s started %s after SIGSTOP failed during the hang (want 0 GET/HEAD failures): %v (access log: %s)",
			r.Method, r.Session, ms(r.Start.Sub(stopAt)), r.Err, describeLines(logged[r.ID], vaddr))
	}
	var hung time.Duration
	for _, r := range resultsIn(rs, stopAt, ejectedAt) {
		if r.Start.Add(r.Dur).After(contAt) && r.Dur > hung {
			hung = r.Dur
		}
	}
	win := func(rs []result, m string) summary { return summarize(byMethod(resultsIn(rs, ejectedAt, contAt), m)) }
	all := summarize(rs)
	e.rep.addf(sc, "load (open loop, 60 req/s)", "%s", all)
	e.rep.addf(sc, "PUTs not sent: the key's previous PUT unanswered", "%d", l.PutsSkipped())
	e.rep.addf(sc, fmt.Sprintf("detection: SIGSTOP -> not routable (timeout %s, fall %d, interval %s)", pc.Timeout, pc.Fall, pc.Interval), "%s", ms(outAt.Sub(stopAt)))
	e.rep.addf(sc, "caddy status page while the node is frozen", "%s", ms(statusLatency))
	e.rep.addf(sc, "requests sent to the frozen node before its ejection", "%d; the longest request that ended after SIGCONT took %s (a read is abandoned after try_timeout, an upload whose body was sent waits for the node)", stuck, ms(hung))
	for _, m := range []string{http.MethodHead, http.MethodGet, http.MethodPut} {
		c, d := win(rs, m), win(rd, m)
		e.rep.addf(sc, m+" started between ejection and SIGCONT: via caddy | direct to a live node", "p99 %s max %s | p99 %s max %s", ms(c.P99), ms(c.Max), ms(d.P99), ms(d.Max))
	}
	e.rep.addf(sc, "failed GET+HEAD (of them: on objects locked by a request frozen with the node / MinIO's 404 to a request held on it) / PUT (client timeout "+defaultLoadTimeout.String()+")", "%d (%d / %d) / %d",
		len(failedBy(rs, http.MethodGet, http.MethodHead)), lockedFails, heldAnswers, len(failedBy(rs, http.MethodPut)))
	e.rep.addf(sc, "objects locked by a request running on the node at SIGSTOP", "%d", len(lockedAtStop))
	e.rep.addf(sc, "recovery: SIGCONT -> routable", "%s", ms(backAt.Sub(contAt)))
	if len(all.FirstErrs) > 0 {
		t.Logf("failed requests (first %d): %s", len(all.FirstErrs), strings.Join(all.FirstErrs, "\n  "))
	}
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// heldAndAnswered reports whether a request's log lines show it was sent
// to the frozen node addr before sentBefore, held there until after
// contAt, and answered by the node (not by Caddy) with status code.
func heldAndAnswered(lines []logEntry, addr string, sentBefore, contAt time.Time, code int) bool {
	for _, x := range lines {
		if x.Upstream == addr && x.Start().Before(sentBefore) && x.End().After(contAt) && x.Answered() && x.Status == code {
			return true
		}
	}
	return false
}

// directLoadSet presigns the first keys of ls for one MinIO node's own
// address (no Caddy): the control group of the hang scenario.
func directLoadSet(t *testing.T, e *env, ls *loadSet, addr string) *loadSet {
	t.Helper()
	cl, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(e.user, e.pass, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	d := &loadSet{body: ls.body, sum: ls.sum, bucket: ls.bucket}
	for _, ks := range ls.keys[:2] {
		var out []loadKey
		for _, k := range ks {
			q := url.Values{"sessionid": {"direct-" + k.Session}}
			g, err1 := cl.Presign(ctx, http.MethodGet, ls.bucket, k.Object, time.Hour, q)
			h, err2 := cl.Presign(ctx, http.MethodHead, ls.bucket, k.Object, time.Hour, q)
			p, err3 := cl.Presign(ctx, http.MethodPut, ls.bucket, k.Object, time.Hour, q)
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Fatal(err)
			}
			out = append(out, loadKey{Session: "direct-" + k.Session, Object: k.Object, get: g.String(), head: h.String(), put: p.String()})
		}
		d.keys = append(d.keys, out)
	}
	return d
}

// testStartingNode: a node that restarts answers /minio/health/ready with
// 200 and X-Minio-Server-Status: offline while it rejoins; it must get no
// request in that window. The window of a restart in a running cluster is
// short here (tenths of a second to a few seconds, shorter than
// examples/Caddyfile's probe interval times rise, which alone would keep the
// node out), so this scenario runs a second Caddy on the same
// examples/Caddyfile with probes every 50ms and rise 1: its probes land
// inside the window, and a check of the status code alone would route to
// the node there.
func testStartingNode(t *testing.T, e *env) {
	const sc = "Failure/StartingNode"
	src := readText(t, filepath.Join(repoRoot(t), "examples", "Caddyfile"))
	// Every healthready block of examples/Caddyfile with `interval 50ms`
	// and `rise 1`, nothing else changed.
	const fastInterval, fastRise = 50 * time.Millisecond, 1
	intervalRe := regexp.MustCompile(`(?m)^(\s*)interval\s+\S+\s*$`)
	riseRe := regexp.MustCompile(`(?m)^(\s*)rise\s+\d+\s*$`)
	if n, m := len(intervalRe.FindAllString(src, -1)), len(riseRe.FindAllString(src, -1)); n == 0 || n != m {
		t.Fatalf("examples/Caddyfile has %d `interval` and %d `rise` lines, want one of each per healthready block; update this scenario", n, m)
	}
	fastCfg := riseRe.ReplaceAllString(intervalRe.ReplaceAllString(src, fmt.Sprintf("${1}interval %s", fastInterval)), fmt.Sprintf("${1}rise %d", fastRise))
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(fastCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	fast := startCaddy(t, path, e.c)
	fast.waitStatus(t, "fast-probing caddy: every node ready", 30*time.Second, func(s status) bool { return s.allReady() })
	example, err := e.caddy.Status()
	if err != nil {
		t.Fatal(err)
	}
	fastStatus, err := fast.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range example.Pools {
		want := example.probe(t, p.Name)
		want.Interval, want.Rise = fastInterval, fastRise
		if got := fastStatus.probe(t, p.Name); got != want {
			t.Fatalf("fast-probing caddy, pool %s: probes %s, want examples/Caddyfile's with interval %s and rise %d (%s)", p.Name, got, fastInterval, fastRise, want)
		}
	}
	fpc := fastStatus.probe(t, "s3")

	ls := loadVia(t, e, fast.S3Addr, "start")
	victim := e.c.Node(3)
	vaddr := victim.S3Addr()
	from := fast.LogSize()
	began := time.Now()
	l := startLoad(ls, crashLoad)
	var once sync.Once
	stop := func() []result { var rs []result; once.Do(func() { rs = l.Stop() }); return rs }
	t.Cleanup(func() { stop() })

	// Steady state first: every key served 8 times (3 s at 160 req/s).
	l.waitIssued(t, "before the restart", began, 8)
	offlineBefore := offlineAnswers(t, fast, vaddr)
	// A restart (systemctl restart): kill and start again at once.
	killAt := time.Now()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	launchAt := time.Now()
	if err := victim.Launch(); err != nil {
		t.Fatal(err)
	}
	win := watchStart(victim, 60*time.Second)
	backAt := fast.waitStatus(t, "restarted node routable", fpc.Readmission()+30*time.Second, func(s status) bool { return routable(s, vaddr) && s.nodeState("s3", vaddr) == "ready" })
	// Until the restarted node has answered a request (checked below),
	// and every key has been sent once more.
	fast.waitLog(t, from, 15*time.Second, func(es []logEntry) bool {
		for _, x := range es {
			if x.Upstream == vaddr && x.Answered() && x.Start().After(win.Ready) {
				return true
			}
		}
		return false
	})
	l.waitIssued(t, "after the restart", backAt, 1)
	rs := stop()
	if err := e.c.WaitReady(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}

	if win.Offline == 0 {
		t.Fatalf("never saw /minio/health/ready answer 200 + X-Minio-Server-Status: offline while %s started (ready after %s): the window could not be observed", vaddr, ms(win.Ready.Sub(launchAt)))
	}
	windowLen := win.Last.Sub(win.First)
	// offline_answers counts every probe answered with the header, so a
	// probe inside the window is seen however briefly the status page
	// would have shown it.
	sawOffline := offlineAnswers(t, fast, vaddr) > offlineBefore
	if windowLen >= 3*fpc.Interval && !sawOffline {
		t.Errorf("the offline window lasted %s (3 probe intervals of %s) but caddy's probe never got the offline header (offline_answers stayed %d)", ms(windowLen), fpc.Interval, offlineBefore)
	}
	es := loadEntries(t, fast, from, rs, "start")
	var inside int
	var first time.Time
	for _, x := range es {
		// A request the node never answered did not reach a starting
		// MinIO: kill and launch are a millisecond apart, and a PUT sent
		// on a pooled connection at the kill ends in EOF (seen); such
		// casualties of the kill are counted by crashFailures below.
		if x.Upstream != vaddr || x.Start().Before(launchAt) || !x.Answered() {
			continue
		}
		if !x.Start().After(win.Last) {
			inside++
			t.Errorf("request %s %s reached the starting node at %s, inside its offline window [%s, %s]",
				x.Request.Method, x.Request.URI, x.Start().Format("15:04:05.000"), win.First.Format("15:04:05.000"), win.Last.Format("15:04:05.000"))
		}
		if first.IsZero() || x.Start().Before(first) {
			first = x.Start()
		}
	}
	if first.IsZero() {
		t.Errorf("the restarted node %s got no request after it became ready", vaddr)
	}
	outAt := fast.leftReady(t, "s3", vaddr, killAt)
	if outAt.IsZero() {
		t.Fatalf("the fast-probing caddy's log has no state change of the restarted node %s after the kill", vaddr)
	}
	cf := crashFailures(t, rs, es, crash{Victim: vaddr, KillAt: killAt, Killed: launchAt, OutAt: outAt, Home: placements(es, killAt)})
	e.rep.addf(sc, "offline window of a restart (ready = 200 + offline header)", "%s, %d answers, from %s after start", ms(windowLen), win.Offline, ms(win.First.Sub(launchAt)))
	e.rep.addf(sc, fmt.Sprintf("requests to the node inside the window (caddy probing every %s, rise %d)", fpc.Interval, fpc.Rise), "%d", inside)
	e.rep.addf(sc, "caddy's probe saw the offline header", "%v", sawOffline)
	e.rep.addf(sc, "node ready -> first request routed to it / routable on the status page", "%s / %s", msOrNone(first, win.Ready), ms(backAt.Sub(win.Ready)))
	e.rep.addf(sc, "load", "%s", summarize(rs))
	e.rep.addf(sc, "PUTs not sent: the key's previous PUT unanswered", "%d", l.PutsSkipped())
	e.rep.addf(sc, "failed: in flight on the node at the kill / on objects MinIO kept locked / MinIO 404 or 503 SlowDownWrite / other", "%s", cf)
}

func msOrNone(t, since time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return ms(t.Sub(since))
}

// testReload: `caddy reload` of a changed Caddyfile under load.
func testReload(t *testing.T, e *env) {
	const sc = "Reload"
	ls := loadFor(t, e, "reload")
	src := readText(t, filepath.Join(repoRoot(t), "examples", "Caddyfile"))
	// The change: one more access log field, visible in the log after
	// the reload (a log setting, as an operator changes it).
	const anchor = "log_append upstream_duration_ms {http.reverse_proxy.upstream.duration_ms}"
	if !strings.Contains(src, anchor) {
		t.Fatalf("examples/Caddyfile no longer has %q; update the reload scenario", anchor)
	}
	changed := strings.Replace(src, anchor, anchor+"\n\tlog_append e2e_config reloaded", 1)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}

	e.waitAllReady(t, 30*time.Second)
	// The previous scenario restarted every node: MinIO answers ready
	// before it accepts writes everywhere (503 SlowDownWrite while its
	// locks and drives settle). Measure the reload, not that: every key
	// must take a PUT through Caddy first.
	waitWritable(t, ls, 60*time.Second)
	// Through Caddy those PUTs succeed even while a node still refuses
	// writes (they go to the next node, and the node is busy: half its
	// share). Wait until every node has write quorum in its own view, and
	// Caddy has no busy node left.
	waitNodesWritable(t, e.c, 60*time.Second)
	e.waitAllReady(t, 30*time.Second)
	s1, err := e.caddy.Status()
	if err != nil {
		t.Fatal(err)
	}
	from := e.caddy.LogSize()
	began := time.Now()
	l := startLoad(ls, loadConfig{})
	var once sync.Once
	stop := func() []result { var rs []result; once.Do(func() { rs = l.Stop() }); return rs }
	t.Cleanup(func() { stop() })
	// Load on the old config first: every key served 8 times (3 s at
	// 160 req/s).
	l.waitIssued(t, "before the reload", began, 8)
	reloadAt := time.Now()
	e.caddy.Reload(t, path)
	reloaded := time.Now()
	reloadTook := reloaded.Sub(reloadAt)
	// And on the new one: every key served 10 times (4 s at 160 req/s),
	// while the old config's connections close.
	l.waitIssued(t, "after the reload", reloaded, 10)
	rs := stop()
	s2, err := e.caddy.Status()
	if err != nil {
		t.Fatal(err)
	}
	// A node busy meanwhile (MinIO's 503 SlowDown, whatever the reload)
	// changes state and gets half its sessions' requests by design: its
	// state and its sessions say nothing about the reload.
	busy := map[string]bool{} // pool + " " + node
	for _, p := range s1.Pools {
		for _, n := range p.Nodes {
			if e.caddy.busyDuring(t, p.Name, n.Upstream, began, time.Now()) {
				busy[p.Name+" "+n.Upstream] = true
			}
		}
	}

	sum := summarize(rs)
	if sum.Failed > 0 {
		t.Errorf("%d requests failed across the reload (want 0): %s", sum.Failed, strings.Join(sum.FirstErrs, "; "))
	}
	// Health state kept: same nodes, same states, same `since`, probe
	// counters went on (a fresh state would start at unknown, 0 probes).
	kept := 0
	for i, p := range s1.Pools {
		if i >= len(s2.Pools) || s2.Pools[i].Name != p.Name {
			t.Fatalf("pools changed across the reload: %v -> %v", poolNames(s1), poolNames(s2))
		}
		for j, n := range p.Nodes {
			m := s2.Pools[i].Nodes[j]
			// `since` is not compared: after a reload the pool takes it
			// from the shared probe (see the report).
			sameState := m.State == n.State && m.Routable == n.Routable
			if busy[p.Name+" "+n.Upstream] {
				sameState = true // its own busy window moved it
			}
			if m.Upstream != n.Upstream || !sameState || m.Probes < n.Probes {
				t.Errorf("pool %s node %s: state %s since %s probes %d before the reload, %s since %s probes %d after",
					p.Name, n.Upstream, n.State, n.Since.Format(time.RFC3339Nano), n.Probes, m.State, m.Since.Format(time.RFC3339Nano), m.Probes)
			} else {
				kept++
			}
		}
	}
	es := loadEntries(t, e.caddy, from, rs, "reload")
	sessions := keyNodes(es, func(logEntry) bool { return true })
	onBusy := 0
	for s, ups := range sessions {
		for up := range ups {
			if busy["s3 "+up] {
				delete(sessions, s)
				onBusy++
				break
			}
		}
	}
	home := homeNodes(t, "across the reload", sessions)
	newField := 0
	raw := readRawLog(t, e.caddy.AccessLog, from)
	for _, line := range raw {
		if strings.Contains(line, `"e2e_config":"reloaded"`) {
			newField++
		}
	}
	if newField == 0 {
		t.Errorf("no access log entry carries the field the reloaded config adds: the reload did not take effect")
	}
	e.rep.addf(sc, "load across `caddy reload` (changed log_append)", "%s", sum)
	e.rep.addf(sc, "PUTs not sent: the key's previous PUT unanswered", "%d", l.PutsSkipped())
	e.rep.addf(sc, "failed requests / requests resent after caddy closed their connection", "%d / %d", sum.Failed, retried(rs))
	e.rep.addf(sc, "caddy reload command took", "%s", ms(reloadTook))
	e.rep.addf(sc, "health state kept (node state, since, probe count)", "%d of %d nodes", kept, nodesIn(s1))
	e.rep.addf(sc, "sessions on one node across the reload / left out: on a node busy meanwhile", "%d / %d (busy: %v)", len(home), onBusy, busy)
}

func poolNames(s status) string {
	var n []string
	for _, p := range s.Pools {
		n = append(n, p.Name)
	}
	return fmt.Sprint(n)
}

func nodesIn(s status) int {
	n := 0
	for _, p := range s.Pools {
		n += len(p.Nodes)
	}
	return n
}

// describe lists a session's requests to addr in [a, b) for messages.
func describe(es []logEntry, session, addr string, a, b time.Time) string {
	var out []string
	for _, x := range es {
		if x.SessionID() == session && x.Upstream == addr && !x.Start().Before(a) && x.Start().Before(b) {
			out = append(out, fmt.Sprintf("%s started %s took %.1fms status %d", x.Request.Method, x.Start().Format("15:04:05.000"), x.Duration*1000, x.Status))
		}
	}
	return strings.Join(out, "; ")
}

// errClass names a failed result for counting: the status and MinIO's
// error code, or the transport error.
func errClass(r result) string {
	if r.Status == 0 {
		return "transport error"
	}
	msg := fmt.Sprint(r.Err)
	if i := strings.Index(msg, "<Code>"); i >= 0 {
		if j := strings.Index(msg[i:], "</Code>"); j > 0 {
			return fmt.Sprintf("%d %s", r.Status, msg[i+6:i+j])
		}
	}
	return fmt.Sprint(r.Status)
}

// crashStats sorts the failed requests of a crash scenario.
type crashStats struct {
	InFlight  int      // on the node when it died, or sent to it before Caddy took it out
	StaleLock int      // later, on an object a request on the dead node still held locked
	MinIO     int      // MinIO's own 404/503 answer, passed through (a just-rejoined node)
	Other     int      // anything else: a test failure
	Locked    []string // the objects (sessions) with a request on the node when it died
}

func (c crashStats) String() string {
	return fmt.Sprintf("%d / %d (objects %v) / %d / %d", c.InFlight, c.StaleLock, c.Locked, c.MinIO, c.Other)
}

// crash describes one SIGKILL for crashFailures.
type crash struct {
	Victim string            // the killed node's S3 address (its upstream in the log)
	KillAt time.Time         // just before the SIGKILL was sent
	Killed time.Time         // when Kill returned (the process was gone)
	OutAt  time.Time         // when Caddy took the node out of routing (Caddy's log, leftReady)
	Home   map[string]string // session -> its node before the kill (placements)
}

// outSlack covers the moment between healthready's "node state changed"
// log line and the pool's routing snapshot that follows it in the same
// call: a request may still be sent to the node in between.
const outSlack = 5 * time.Millisecond

// sentToVictim reports whether a request's log line shows it went to the
// killed node while Caddy still routed there (started before until): its
// last attempt went there, or Caddy retried it (Retries > 0) and its key
// lived there, so its first attempt did (every node was routable then,
// and session_affinity tries the key's node first).
func (k crash) sentToVictim(x logEntry, until time.Time) bool {
	if !x.Start().Before(until) || x.End().Before(k.KillAt) {
		return false
	}
	// A hedged twin or a first attempt on the victim took the object's
	// lock there as well as the attempt that answered.
	return x.Upstream == k.Victim || x.HedgedNode == k.Victim || x.FirstNode == k.Victim ||
		(x.Retries > 0 && k.Home[x.SessionID()] == k.Victim)
}

// crashFailures checks the failed requests around a SIGKILL, joined with
// their access log lines by request id (es from loadEntries):
//   - in flight: the request's log line shows it went to the killed node
//     before Caddy took the node out (k.OutAt): running there when the
//     node died, or sent over a kept-alive connection of the dead process
//     before the first failure ejected it. A PUT's streamed body cannot be
//     sent again, nor can a response already streaming; a GET or HEAD that
//     Caddy resent to the next node can still time out there on a stale
//     lock (below). The proxy cannot save these.
//   - stale lock: a later request that timed out (or got 503) on an object
//     that had a request running on the killed node when it died, whether
//     that request failed or Caddy resent it successfully: MinIO's dsync
//     keeps the dead node's locks on the surviving nodes until they expire
//     (lockValidityDuration 1m, swept every 1m in
//     cmd/lock-rest-server.go), so the object stays locked cluster-wide
//     whatever node the proxy picks. A GET's stale read lock lets later
//     GETs through and holds every PUT (seen: GETs retried off the dead
//     node answered 200, then every PUT of those objects timed out for
//     20 s);
//   - MinIO's own answer: 404, or 503 SlowDownWrite on a PUT. A node
//     that has just rejoined answers its health checks (ready, and even
//     /minio/health/cluster) before it sees its peers' drives again, and
//     for a moment answers 404 for objects that exist and 503 to writes.
//     The proxy passed MinIO's answer on (GETs are retried on 503 and
//     502/504 are not MinIO's); these are counted and reported;
//   - anything else (transport errors, 502, 504, 5xx that are not
//     MinIO's quorum answer, a failure with no log line) fails the test.
func crashFailures(t *testing.T, rs []result, es []logEntry, k crash) crashStats {
	t.Helper()
	var c crashStats
	locked := map[string]bool{}
	for _, x := range es {
		// Running on the node when it died: started before Kill returned.
		if s := x.SessionID(); k.sentToVictim(x, k.Killed) && !locked[s] {
			locked[s] = true
			c.Locked = append(c.Locked, s)
		}
	}
	sort.Strings(c.Locked)
	logged := byRequestID(es)
	for _, r := range failedBy(rs) {
		lines := logged[r.ID]
		inFlight := false
		for _, x := range lines {
			inFlight = inFlight || k.sentToVictim(x, k.OutAt.Add(outSlack))
		}
		// A read whose answer had begun (200) before the kill and was cut
		// mid-body: the node died while streaming it; no proxy can resume
		// a response (its log line may name no upstream).
		cutMidBody := r.Status == http.StatusOK && r.Err != nil && r.Start.Before(k.Killed) &&
			strings.Contains(r.Err.Error(), "unexpected EOF")
		switch {
		case inFlight || cutMidBody:
			c.InFlight++
		case locked[r.Session] && (isTimeout(r.Err) || r.Status == http.StatusServiceUnavailable):
			c.StaleLock++
		case minioAnswer(r):
			c.MinIO++
		default:
			c.Other++
			if c.Other <= 5 {
				t.Errorf("%s %s started %s after the kill failed: %v (access log: %s)", r.Method, r.Session, ms(r.Start.Sub(k.KillAt)), r.Err, describeLines(lines, k.Victim))
			}
		}
	}
	return c
}

// describeLines sums up a request's access log lines for messages.
func describeLines(lines []logEntry, victim string) string {
	if len(lines) == 0 {
		return "no line"
	}
	var out []string
	for _, x := range lines {
		up := x.Upstream
		if victim != "" && up == victim {
			up += " (the failed node)"
		}
		out = append(out, fmt.Sprintf("status %d upstream %q retries %d started %s took %.1fms; first node %q, retried on %q, hedged to %q, %d attempts, outcome %q, held %.0fms",
			x.Status, up, x.Retries, x.Start().Format("15:04:05.000"), x.Duration*1000,
			x.FirstNode, x.RetriedNodes, x.HedgedNode, x.Attempts, x.Outcome, x.HoldMs))
	}
	return strings.Join(out, "; ")
}

// offlineAnswers is the fast Caddy's count of probes of probe address
// addr answered with X-Minio-Server-Status (summed over pools).
func offlineAnswers(t *testing.T, c *caddyProc, addr string) uint64 {
	t.Helper()
	s, err := c.Status()
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	var n uint64
	for _, p := range s.Pools {
		for _, nd := range p.Nodes {
			if nd.Probe == addr {
				n += nd.OfflineAnswers
			}
		}
	}
	return n
}

// waitWritable puts every key of ls once through Caddy, retrying a key
// until MinIO accepts it or timeout has passed since its first try. The
// bound is per key: the PUTs run one after the other, and one bound for
// all 64 counted slow successes against it (on a machine at load 75 the
// wait was still running after a minute).
func waitWritable(t *testing.T, ls *loadSet, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	for _, ks := range ls.keys {
		for _, k := range ks {
			deadline := time.Now().Add(timeout)
			for r := doOp(client, ls, k, http.MethodPut); r.Failed(); r = doOp(client, ls, k, http.MethodPut) {
				if time.Now().After(deadline) {
					t.Fatalf("cluster not writable through caddy %s after the previous scenario: %s: %v", timeout, k.Object, errClass(r))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// waitNodesWritable waits until every node of c answers
// /minio/health/cluster 200: its erasure sets have write quorum in its own
// view. A node restarted a moment ago answers ready before that and
// refuses writes with 503 SlowDownWrite (seen for 14 s).
func waitNodesWritable(t *testing.T, c *miniocluster.Cluster, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range c.Nodes() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := n.Probe(ctx, "/minio/health/cluster")
			cancel()
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: /minio/health/cluster not 200 within %s (%v, %+v)", n.S3Addr(), timeout, err, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// minioAnswer reports a failed result that is MinIO's own answer passed
// on by the proxy: a 404, or a PUT answered 503 SlowDownWrite (write
// quorum not reached).
func minioAnswer(r result) bool {
	switch {
	case r.Status == http.StatusNotFound:
		return true
	case r.Status == http.StatusServiceUnavailable && r.Method == http.MethodPut:
		return r.Err != nil && strings.Contains(r.Err.Error(), "SlowDownWrite")
	}
	return false
}
