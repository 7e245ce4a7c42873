package healthready

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
)

// TestMinIOSemantics: what a single probe of each kind of node decides.
func TestMinIOSemantics(t *testing.T) {
	tests := []struct {
		name      string
		mode      int32
		method    string
		closed    bool
		wantState nodeState
		wantWhy   string
	}{
		{name: "200 is ready", mode: modeOK, wantState: nodeReady},
		{name: "HEAD probe", mode: modeOK, method: http.MethodHead, wantState: nodeReady},
		{name: "starting node: 200 + offline header", mode: modeOffline, wantState: nodeNotReady, wantWhy: "X-Minio-Server-Status: offline"},
		{name: "busy node: 503", mode: mode503, wantState: nodeNotReady, wantWhy: "status 503"},
		{name: "wrong status", mode: mode404, wantState: nodeNotReady, wantWhy: "status 404"},
		{name: "hanging node times out", mode: modeHang, wantState: nodeNotReady, wantWhy: "timeout"},
		{name: "connection refused", closed: true, wantState: nodeNotReady, wantWhy: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr string
			if tt.closed {
				addr = closedAddr(t)
			} else {
				f := newFakeNode(t, "n")
				f.mode.Store(tt.mode)
				addr = f.addr()
			}
			cfg := fastPool("sem-"+tt.name, addr)
			cfg.Method = tt.method
			if tt.mode == modeHang {
				cfg.Timeout = caddy.Duration(150 * time.Millisecond)
			}
			cfg.Interval = caddy.Duration(time.Hour) // the first probe only
			h := provision(t, cfg)
			eventually(t, wait, func() bool { return stateOf(h, 0) != nodeUnknown }, "first probe")
			v := h.view(nil)
			assert.Equal(t, tt.wantState.String(), v.Nodes[0].State)
			assert.Contains(t, v.Nodes[0].Reason, tt.wantWhy)
			if tt.wantState == nodeReady {
				assert.Equal(t, []string{addr}, upstreamDials(h))
			}
		})
	}
}

// TestRiseFallLive: with a real loop, a node flips at exactly the fall-th
// failed and the rise-th good probe. The node answers each probe as the
// test says (a stepped node), so the test knows every probe the loop saw.
func TestRiseFallLive(t *testing.T) {
	f := newSteppedNode(t, "a")
	other := newFakeNode(t, "b")
	cfg := fastPool("risefall", f.addr(), other.addr())
	cfg.Rise, cfg.Fall = 3, 2
	cfg.Timeout = caddy.Duration(time.Minute) // a probe waits for the test's answer
	h := provision(t, cfg)
	p := h.nodes[0].probe
	// answer answers the next probe and returns the loop's state once it
	// recorded that probe; the next probe then waits for the next answer.
	answer := func(mode int32) probeSnapshot {
		t.Helper()
		want := p.snapshot().Probes + 1
		f.step(t, mode)
		eventually(t, wait, func() bool { return p.snapshot().Probes == want }, "probe %d recorded", want)
		return p.snapshot()
	}

	assert.Equal(t, stateReady, answer(modeOK).State, "from unknown the first probe decides")
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "pool sees ready")

	ps := answer(mode503)
	assert.Equal(t, stateReady, ps.State, "one failure of fall 2")
	assert.Equal(t, 1, ps.Fails)
	ps = answer(mode503)
	assert.Equal(t, stateNotReady, ps.State, "not_ready at the fall-th failure")
	assert.Equal(t, 2, ps.Fails)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady }, "pool sees not_ready")
	assert.Equal(t, []string{other.addr()}, upstreamDials(h))

	for i := 1; i < 3; i++ {
		ps = answer(modeOK)
		assert.Equal(t, stateNotReady, ps.State, "%d passes of rise 3", i)
		assert.Equal(t, i, ps.Passes)
	}
	ps = answer(modeOK)
	assert.Equal(t, stateReady, ps.State, "ready at the rise-th pass")
	assert.Equal(t, 3, ps.Passes)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "pool sees ready again")
	assert.Equal(t, []string{f.addr(), other.addr()}, upstreamDials(h), "config order")
	assert.Equal(t, uint64(6), ps.Probes, "the loop saw exactly the answered probes")
}

// TestStartingNodeOutAfterFirstProbe: a node that reports offline gets no
// traffic after its first probe, while unknown nodes stay routable.
func TestStartingNodeOutAfterFirstProbe(t *testing.T) {
	slow := newFakeNode(t, "slow")
	slow.mode.Store(modeHang) // its first probe does not finish during the test
	off := newFakeNode(t, "off")
	off.mode.Store(modeOffline)
	cfg := fastPool("starting", slow.addr(), off.addr())
	cfg.Timeout = caddy.Duration(time.Minute)
	cfg.Interval = caddy.Duration(time.Hour)
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 1) == nodeNotReady }, "offline node out")
	assert.Equal(t, nodeUnknown, stateOf(h, 0), "the hanging node's probe is still running")
	assert.Equal(t, []string{slow.addr()}, upstreamDials(h), "unknown counts as routable; offline is out")
}

// resetCacheReq is a request whose replacer names a failed attempt, as
// Caddy's proxy loop leaves it before a retry.
func resetCacheReq(hostport string) *http.Request {
	repl := caddy.NewReplacer()
	repl.Set(upstreamHostportKey, hostport)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

// TestPassiveEjectionAndReadmission: passive_fails failures eject at once;
// only rise good probes that started after the ejection readmit.
func TestPassiveEjectionAndReadmission(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	cfg := fastPool("passive", a.addr(), b.addr())
	cfg.PassiveFails = 2
	cfg.PassiveWindow = caddy.Duration(time.Minute)
	cfg.Rise = 3
	// Failed probes alone never take a out during the test, so what it
	// sees is the passive ejection, whenever the probes run.
	cfg.Fall = 1000
	cfg.Interval = caddy.Duration(40 * time.Millisecond)
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "ready")

	// Backend a now fails probes too, so it can only come back once fixed.
	a.mode.Store(mode503)
	r := resetCacheReq(a.addr())
	require.NoError(t, h.ResetCache(r))
	assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h), "one failure of two")
	// A second ResetCache of the same request (an iteration that selected
	// no upstream) does not count the failure again, and the placeholder
	// that selection policies read stays as Caddy set it.
	require.NoError(t, h.ResetCache(r))
	assert.Equal(t, 1, h.view(nil).Nodes[0].PassiveFailures, "one request counts once per node")
	assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h), "still one failure of two")
	hp, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer).GetString(upstreamHostportKey)
	assert.Equal(t, a.addr(), hp)
	require.NoError(t, h.ResetCache(resetCacheReq(a.addr())))
	assert.Equal(t, []string{b.addr()}, upstreamDials(h), "ejected at once by a second request")
	assert.Equal(t, nodeEjected, stateOf(h, 0))

	// Probes fail: it stays out for many intervals.
	probesAt := a.probes.Load()
	eventually(t, wait, func() bool { return a.probes.Load() >= probesAt+5 }, "probes go on")
	assert.Equal(t, nodeEjected, stateOf(h, 0))

	// Fixed: back only after rise good probes, all answered after the fix
	// (a answered no probe as ready since the ejection).
	passesAtFix := a.passes.Load()
	a.mode.Store(modeOK)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "readmitted")
	assert.GreaterOrEqual(t, a.passes.Load()-passesAtFix, int64(3), "readmitted only after rise good probes")
	assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h))
	assert.Equal(t, uint64(1), counter(counterKey{metric: "ejections", pool: "passive", node: a.addr()}).Load())
}

// TestPassiveIsPerDialAddress: failures of one port do not eject another
// port of the same host, though both share one probe target.
func TestPassiveIsPerDialAddress(t *testing.T) {
	s3 := newFakeNode(t, "s3")
	console := newFakeNode(t, "console")
	other := newFakeNode(t, "other")
	// One probe only: no later good probes readmit the ejected node while
	// the test looks.
	s3cfg := fastPool("perdial-s3", s3.addr())
	s3cfg.Interval = caddy.Duration(time.Hour)
	s3pool := provision(t, s3cfg)
	// A second console node stays routable: a pool with no routable node
	// probes at once and readmits a node after one good probe.
	cfg := fastPool("perdial-console", console.addr())
	cfg.ProbeTo = []string{s3.addr(), other.addr()}
	cfg.Upstreams = append(cfg.Upstreams, other.addr())
	cfg.Interval = caddy.Duration(time.Hour)
	consolePool := provision(t, cfg)
	require.Same(t, s3pool.nodes[0].probe, consolePool.nodes[0].probe, "one probe loop for both sites")
	// each pool evaluates the shared probe's result on its own goroutine
	eventually(t, wait, func() bool {
		return stateOf(s3pool, 0) == nodeReady && stateOf(consolePool, 0) == nodeReady && stateOf(consolePool, 1) == nodeReady
	}, "ready")

	require.NoError(t, consolePool.ResetCache(resetCacheReq(console.addr())))
	assert.Equal(t, nodeEjected, stateOf(consolePool, 0))
	assert.Equal(t, nodeReady, stateOf(s3pool, 0), "the S3 port is not ejected")
	assert.Equal(t, []string{other.addr()}, upstreamDials(consolePool))
}

// TestFailOpen: below min_ready routable nodes every upstream is returned.
func TestFailOpen(t *testing.T) {
	a, b, c := newFakeNode(t, "a"), newFakeNode(t, "b"), newFakeNode(t, "c")
	cfg := fastPool("failopen", a.addr(), b.addr(), c.addr())
	cfg.MinReady = intp(2)
	cfg.Rise, cfg.Fall = 1, 1
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 2) == nodeReady }, "ready")

	a.mode.Store(mode503)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady }, "a down")
	assert.Equal(t, []string{b.addr(), c.addr()}, upstreamDials(h))
	assert.False(t, h.view(nil).FailOpen)

	b.mode.Store(modeOffline)
	eventually(t, wait, func() bool { return h.view(nil).FailOpen }, "fail open")
	assert.Equal(t, []string{a.addr(), b.addr(), c.addr()}, upstreamDials(h), "all upstreams while failing open")

	b.mode.Store(modeOK)
	eventually(t, wait, func() bool { return !h.view(nil).FailOpen }, "leaves fail-open")
	assert.Equal(t, []string{b.addr(), c.addr()}, upstreamDials(h))
}

// TestReloadKeepsState: a second generation provisioned while the first
// is alive starts with the first's state and probe loop.
func TestReloadKeepsState(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	a.mode.Store(mode503)
	old := provision(t, fastPool("reload", a.addr(), b.addr()))
	eventually(t, wait, func() bool { return stateOf(old, 0) == nodeNotReady }, "a down")

	// the new config adds a node
	c := newFakeNode(t, "c")
	next := provision(t, fastPool("reload", a.addr(), b.addr(), c.addr()))
	assert.Equal(t, nodeNotReady, stateOf(next, 0), "state carried over, no new first probe needed")
	assert.Same(t, old.nodes[0].probe, next.nodes[0].probe)
	require.NoError(t, old.Cleanup())
	refs, ok := probers.References(next.nodes[0].spec)
	require.True(t, ok, "the loop survives the old generation")
	assert.Equal(t, 1, refs)
	before := a.probes.Load()
	eventually(t, wait, func() bool { return a.probes.Load() > before+2 }, "still probing")

	// a reload that removes c stops only c's loop
	last := provision(t, fastPool("reload", a.addr(), b.addr()))
	require.NoError(t, next.Cleanup())
	_, ok = probers.References(next.nodes[2].spec)
	assert.False(t, ok, "c's loop is gone")
	_, ok = probers.References(last.nodes[0].spec)
	assert.True(t, ok)
	// passive ejection also survives a reload (b fails its probes, so
	// nothing readmits it meanwhile)
	b.mode.Store(mode503)
	require.NoError(t, last.ResetCache(resetCacheReq(b.addr())))
	again := provision(t, fastPool("reload", a.addr(), b.addr()))
	require.NoError(t, last.Cleanup())
	assert.Equal(t, nodeEjected, stateOf(again, 1))
}

// TestSharedProbes: two sites naming the same target send one probe.
func TestSharedProbes(t *testing.T) {
	f := newFakeNode(t, "shared")
	cfg1 := fastPool("shared-1", f.addr())
	cfg1.Interval = caddy.Duration(time.Hour)
	cfg2 := fastPool("shared-2", f.addr())
	cfg2.Interval = caddy.Duration(time.Hour)
	h1 := provision(t, cfg1)
	h2 := provision(t, cfg2)
	// each pool evaluates on its own goroutine
	eventually(t, wait, func() bool { return stateOf(h1, 0) == nodeReady && stateOf(h2, 0) == nodeReady }, "ready")
	assert.Equal(t, int64(1), f.probes.Load(), "one probe for both sites")

	// a different probe config is a different loop
	cfg3 := fastPool("shared-3", f.addr())
	cfg3.Interval = caddy.Duration(time.Hour)
	cfg3.Method = http.MethodHead
	provision(t, cfg3)
	eventually(t, wait, func() bool { return f.probes.Load() == 2 }, "second loop")
}

// TestNoGoroutineLeak: Cleanup stops every goroutine it started: probe
// loops (one with a probe in flight), pool loops, cluster gates, and the
// connections of their HTTP clients.
func TestNoGoroutineLeak(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	b.mode.Store(modeHang) // a probe in flight at cleanup
	dead := closedAddr(t)
	before := goleak.IgnoreCurrent()
	var pools []*HealthReady
	for i, name := range []string{"leak-1", "leak-2", "leak-3"} {
		cfg := fastPool(name, a.addr(), b.addr(), dead)
		cfg.Timeout = caddy.Duration(150 * time.Millisecond) // b's probes time out
		cfg.Cluster = "write"
		cfg.Interval = caddy.Duration(time.Duration(10+i) * time.Millisecond)
		require.NoError(t, cfg.Provision(testCtx(t)))
		pools = append(pools, cfg)
	}
	// every loop ran: each node probed by every pool's loops, each gate
	// checked
	eventually(t, wait, func() bool {
		for _, h := range pools {
			if h.gate.view().Checked.IsZero() {
				return false
			}
			for i := range h.nodes {
				if stateOf(h, i) == nodeUnknown {
					return false
				}
			}
		}
		return true
	}, "every loop ran")
	for _, h := range pools {
		require.NoError(t, h.Cleanup())
	}
	// The fake nodes' connection goroutines are the test's own; closing
	// the servers waits for them.
	a.srv.Close()
	b.srv.Close()
	goleak.VerifyNone(t, before)
}

// TestGetUpstreamsFreshValues: every call returns new Upstream values
// (Caddy writes into them per request), in two allocations whatever the
// number of nodes.
func TestGetUpstreamsFreshValues(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	h := provision(t, fastPool("allocs", a.addr(), b.addr()))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	first, _ := h.GetUpstreams(r)
	second, _ := h.GetUpstreams(r)
	require.Len(t, first, 2)
	require.Len(t, second, 2)
	for i := range first {
		assert.Equal(t, first[i].Dial, second[i].Dial)
		assert.NotSame(t, first[i], second[i], "upstream %d shared between calls", i)
		assert.Nil(t, first[i].Host, "Caddy fills Host itself")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		ups, _ := h.GetUpstreams(r)
		if len(ups) == 0 {
			panic("no upstreams")
		}
	})
	assert.LessOrEqual(t, allocs, 2.0)
}

// TestRetryKeepsBusyNodesWhenNoOtherIsLeft: a busy node is left out of
// about half the calls, but not out of a retry's whose request already
// failed on every node that is not busy: its policy would find no node and
// Caddy would spend every retry on empty picks at once (seen: a HEAD got
// 502 after a whole-cluster restart when the one node not busy refused it
// and its six retries found no upstream within 6 ms).
func TestRetryKeepsBusyNodesWhenNoOtherIsLeft(t *testing.T) {
	a, b, c := newFakeNode(t, "a"), newFakeNode(t, "b"), newFakeNode(t, "c")
	cfg := fastPool("retrybusy", a.addr(), b.addr(), c.addr())
	cfg.BusyWindow = caddy.Duration(time.Minute)
	h := provision(t, cfg)
	eventually(t, wait, func() bool {
		return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady && stateOf(h, 2) == nodeReady
	}, "all three ready")
	h.NodeBusy(b.addr(), "answered 503 SlowDownRead")
	h.NodeBusy(c.addr(), "answered 503 SlowDownRead")

	// request is Caddy's copy of a request on its first attempt (no host
	// yet) or, with failedOn, on a retry after it failed there.
	request := func(failedOn string, f proxytrace.Failure) *http.Request {
		r := httptest.NewRequest(http.MethodHead, "/bucket/key", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.URL.Host = ""
		if failedOn != "" {
			r.URL.Host = failedOn
			tr := proxytrace.Ensure(r, s3op.HeadObject)
			tr.Fail(tr.Add(failedOn, false), f)
		}
		return r
	}
	// fewest is the fewest nodes GetUpstreams returned in 200 calls.
	fewest := func(r *http.Request) int {
		n := 3
		for range 200 {
			ups, err := h.GetUpstreams(r)
			require.NoError(t, err)
			n = min(n, len(ups))
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		failedOn string
		failure  proxytrace.Failure
		want     int
	}{
		{"first attempt: busy nodes left out of some calls", "", 0, 1},
		{"retry after the node not busy refused it as busy", a.addr(), proxytrace.Busy, 3},
		{"retry after a transport error on the node not busy", a.addr(), proxytrace.Error, 3},
		{"retry after the node not busy, just rejoined, answered 404", a.addr(), proxytrace.NotYetVisible, 3},
		{"retry after a busy node failed: the node not busy is left", b.addr(), proxytrace.Busy, 1},
		{"retry that may go back to the node not busy (unreachable)", a.addr(), proxytrace.Unreachable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fewest(request(tc.failedOn, tc.failure)))
		})
	}
}

// TestClusterGate: a lost quorum shows in the view and turns the
// readiness answer, but routing continues.
func TestClusterGate(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	cfg := fastPool("cluster", a.addr(), b.addr())
	cfg.Cluster = "write"
	h := provision(t, cfg)
	eventually(t, wait, func() bool { v := h.view(nil); return v.Cluster.Quorum == quorumOK }, "quorum ok")
	assert.True(t, h.view(nil).Ready)
	a.cluster.Store(http.StatusServiceUnavailable)
	b.cluster.Store(http.StatusServiceUnavailable)
	eventually(t, wait, func() bool { return h.view(nil).Cluster.Quorum == quorumLost }, "quorum lost")
	v := h.view(nil)
	assert.False(t, v.Ready)
	assert.Equal(t, 2, v.Routable)
	assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h), "routing unchanged")
}

// TestValidate: every rule holds on the config as written (zero values
// mean the default) and after Provision applied the defaults.
func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(h *HealthReady)
		wantErr string
	}{
		{"no upstreams", func(h *HealthReady) { h.Upstreams = nil }, "upstreams: at least one upstream is required"},
		{"url upstream", func(h *HealthReady) { h.Upstreams = []string{"http://127.0.0.1:9000"} }, `upstreams[0] "http://127.0.0.1:9000"`},
		{"no port", func(h *HealthReady) { h.Upstreams = []string{"127.0.0.1"} }, "upstreams[0]"},
		{"duplicate", func(h *HealthReady) { h.Upstreams = []string{"127.0.0.1:1", "127.0.0.1:1"} }, "listed twice"},
		{"relative path", func(h *HealthReady) { h.Path = "minio/health/ready" }, `path "minio/health/ready": must start with /`},
		{"bad method", func(h *HealthReady) { h.Method = "POST" }, `method "POST": must be GET or HEAD`},
		{"lower-case method", func(h *HealthReady) { h.Method = "head" }, ""},
		{"bad scheme", func(h *HealthReady) { h.Scheme = "ftp" }, `scheme "ftp": must be http or https`},
		{"port range", func(h *HealthReady) { h.Port = 70000 }, `port "70000": must be 1-65535`},
		{"negative port", func(h *HealthReady) { h.Port = -1 }, `port "-1": must be 1-65535`},
		{"probe_to count", func(h *HealthReady) { h.ProbeTo = []string{"127.0.0.1:2"} }, "probe_to: 1 addresses for 2 upstreams"},
		{"probe_to address", func(h *HealthReady) { h.ProbeTo = []string{"127.0.0.1:2", "127.0.0.1:99999"} }, `probe_to[1] "127.0.0.1:99999"`},
		{"port and probe_to", func(h *HealthReady) { h.Port = 9000; h.ProbeTo = []string{"127.0.0.1:2", "127.0.0.1:3"} }, "port and probe_to"},
		{"tls without https", func(h *HealthReady) { h.TLSInsecureSkipVerify = true }, "need scheme https"},
		{"tls with https", func(h *HealthReady) { h.Scheme = "HTTPS"; h.TLSServerName = "minio" }, ""},
		{"negative interval", func(h *HealthReady) { h.Interval = caddy.Duration(-time.Second) }, `interval "-1s": must be positive`},
		{"negative timeout", func(h *HealthReady) { h.Timeout = caddy.Duration(-time.Second) }, `timeout "-1s": must be positive`},
		{"negative rise", func(h *HealthReady) { h.Rise = -1 }, `rise "-1": must be at least 1`},
		{"negative fall", func(h *HealthReady) { h.Fall = -2 }, `fall "-2": must be at least 1`},
		{"negative concurrency", func(h *HealthReady) { h.Concurrency = -1 }, `concurrency "-1": must be at least 1`},
		{"expect_status range", func(h *HealthReady) { h.ExpectStatus = 42 }, `expect_status "42": must be an HTTP status (100-599)`},
		{"bad cluster", func(h *HealthReady) { h.Cluster = "yes" }, `cluster "yes": must be off, write or read`},
		{"cluster OFF", func(h *HealthReady) { h.Cluster = "OFF" }, ""},
		{"passive_fails -2", func(h *HealthReady) { h.PassiveFails = -2 }, `passive_fails "-2": must be at least 1 (or -1 to disable)`},
		{"passive off", func(h *HealthReady) { h.PassiveFails = -1 }, ""},
		{"negative passive_window", func(h *HealthReady) { h.PassiveWindow = caddy.Duration(-time.Minute) }, `passive_window "-1m0s": must be positive`},
		{"negative min_ready", func(h *HealthReady) { h.MinReady = intp(-1) }, `min_ready "-1": must not be negative`},
		{"min_ready too big", func(h *HealthReady) { h.MinReady = intp(3) }, `min_ready "3": must be at most the number of upstreams (2)`},
		{"defaults", func(h *HealthReady) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, defaults := range []bool{false, true} {
				h := &HealthReady{Upstreams: []string{"127.0.0.1:1", "127.0.0.1:2"}}
				tt.mut(h)
				if defaults {
					h.applyDefaults()
				}
				err := h.Validate()
				if tt.wantErr == "" {
					assert.NoError(t, err, "defaults applied: %v", defaults)
					continue
				}
				require.Error(t, err, "defaults applied: %v", defaults)
				assert.Contains(t, err.Error(), tt.wantErr, "defaults applied: %v", defaults)
			}
		})
	}
}

// TestPassiveCountsTransportFailuresOnly: through the minio transport
// (a request with a trace), only a transport failure of the attempt counts
// as a passive failure; a node that answered (an S3 5xx that lb_retry_match
// retries: MinIO's lock timeout or lost quorum, the cluster's and not the
// node's), refused as busy, went away, timed out (probed instead) or lost a
// hedge is not ejected by it.
func TestPassiveCountsTransportFailuresOnly(t *testing.T) {
	failureNames := map[proxytrace.Failure]string{proxytrace.Error: "transport error", proxytrace.Unreachable: "unreachable",
		proxytrace.NoFailure: "answered 5xx", proxytrace.Busy: "busy", proxytrace.ShuttingDown: "going away",
		proxytrace.TimedOut: "timed out", proxytrace.Cancelled: "hedge lost"}
	for _, tc := range []struct {
		failure proxytrace.Failure
		counts  bool
	}{
		{proxytrace.Error, true},
		{proxytrace.Unreachable, true},
		{proxytrace.NoFailure, false},
		{proxytrace.Busy, false},
		{proxytrace.ShuttingDown, false},
		{proxytrace.TimedOut, false},
		{proxytrace.Cancelled, false},
	} {
		t.Run(failureNames[tc.failure], func(t *testing.T) {
			a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
			cfg := fastPool(fmt.Sprintf("passive-kind-%d-%d", tc.failure, time.Now().UnixNano()), a.addr(), b.addr())
			cfg.PassiveFails = 1
			cfg.Fall = 1000
			h := provision(t, cfg)
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "ready")
			r := resetCacheReq(a.addr())
			tr := proxytrace.Ensure(r, s3op.GetObject)
			tr.Fail(tr.Add(a.addr(), false), tc.failure)
			require.NoError(t, h.ResetCache(r))
			if tc.counts {
				assert.Equal(t, nodeEjected, stateOf(h, 0))
			} else {
				assert.Equal(t, nodeReady, stateOf(h, 0))
				assert.Zero(t, h.view(nil).Nodes[0].PassiveFailures)
			}
		})
	}
}
