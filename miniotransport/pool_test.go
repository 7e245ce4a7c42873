package miniotransport

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/minio-lb/caddy-minio-lb/healthready"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
	_ "github.com/minio-lb/caddy-minio-lb/s3errors"
	_ "github.com/minio-lb/caddy-minio-lb/sessionaffinity"
)

// poolProxy is s3_errors + reverse_proxy with healthready (probes every
// interval, rise 1 fall 1, and the pool's own options), lb_policy first
// (the nodes are tried in order) and the minio transport.
func poolProxy(name string, pool map[string]any, transport map[string]any, nodes ...string) map[string]any {
	src := map[string]any{
		"source": "healthready", "name": name, "upstreams": nodes,
		"interval": int64(50 * time.Millisecond), "timeout": int64(time.Second),
		"rise": 1, "fall": 1,
	}
	for k, v := range pool {
		src[k] = v
	}
	tr := map[string]any{"protocol": "minio"}
	for k, v := range transport {
		tr[k] = v
	}
	return map[string]any{
		"handler": "subroute",
		"routes": []any{map[string]any{"handle": []any{
			map[string]any{"handler": "s3_errors"},
			map[string]any{
				"handler":           "reverse_proxy",
				"dynamic_upstreams": src,
				"transport":         tr,
				"load_balancing": map[string]any{
					"selection_policy": map[string]any{"policy": "first"},
					"retries":          len(nodes) + 1,
					"retry_match":      []any{map[string]any{"method": []string{"GET", "HEAD"}}},
				},
			},
		}}},
	}
}

// startAffinityPair starts poolProxy over a and b with session_affinity
// as the selection policy and waits until both are ready.
func startAffinityPair(t *testing.T, name string, pool, transport map[string]any, a, b *fakeNode) string {
	proxy := poolProxy(name, pool, transport, a.addr(), b.addr())
	rp := proxy["routes"].([]any)[0].(map[string]any)["handle"].([]any)[1].(map[string]any)
	rp["load_balancing"].(map[string]any)["selection_policy"] = map[string]any{"policy": "session_affinity"}
	return startReadyPair(t, name, proxy, a, b)
}

// startReadyPair starts proxy (a poolProxy of pool name over a and b) with
// the status page and waits until both nodes are ready.
func startReadyPair(t *testing.T, name string, proxy map[string]any, a, b *fakeNode) string {
	base := startProxy(t, withStatus(proxy))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, name)
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	return base
}

// statusOf reads a pool's node states from the status page of an extra
// route: it is served on /upstream/health/ by withStatus.
func withStatus(proxy map[string]any) map[string]any {
	return map[string]any{
		"handler": "subroute",
		"routes": []any{
			map[string]any{
				"match":  []any{map[string]any{"path": []string{"/upstream/health/*"}}},
				"handle": []any{map[string]any{"handler": "healthready_status"}},
			},
			map[string]any{"handle": []any{proxy}},
		},
	}
}

type poolStatus struct {
	Pools []struct {
		Name  string `json:"name"`
		Held  int    `json:"held"`
		Nodes []struct {
			Upstream string `json:"upstream"`
			State    string `json:"state"`
			Reason   string `json:"reason"`
		} `json:"nodes"`
	} `json:"pools"`
}

func nodeStates(t *testing.T, base, pool string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/upstream/health/?format=json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s poolStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	out := map[string]string{}
	for _, p := range s.Pools {
		if p.Name == pool {
			for _, n := range p.Nodes {
				out[n.Upstream] = n.State + ": " + n.Reason
			}
		}
	}
	return out
}

func heldIn(t *testing.T, base, pool string) int {
	t.Helper()
	resp, err := http.Get(base + "/upstream/health/?format=json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s poolStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	for _, p := range s.Pools {
		if p.Name == pool {
			return p.Held
		}
	}
	return -1
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stateIs(t *testing.T, base, pool, node, prefix string) func() bool {
	return func() bool {
		s := nodeStates(t, base, pool)[node]
		return len(s) >= len(prefix) && s[:len(prefix)] == prefix
	}
}

// TestGoingAwayEjectsAtOnce: MinIO's shutdown answer on real traffic takes
// the node out at once (no fall probes), the request goes on to the next
// node, and later requests do not touch the departing node.
func TestGoingAwayEjectsAtOnce(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	pool := map[string]any{"interval": int64(time.Hour)} // one probe each: only traffic changes the states
	base := startProxy(t, withStatus(poolProxy("away", pool, nil, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "away")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	a.mode.Store(int32(shutdown))
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, b.addr(), resp.Header.Get("X-Node"))
	assert.Contains(t, nodeStates(t, base, "away")[a.addr()], "ejected: going away: answered 503")
	asked := a.reqs.Load()
	for range 5 {
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, asked, a.reqs.Load(), "no request went to the departing node")
}

// TestHoldRidesThroughAnOutage: with every node down, a GET and an upload
// wait for the first node back (probes every 100 ms, one pass readmits)
// and succeed, the upload whole.
func TestHoldRidesThroughAnOutage(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	pool := map[string]any{"interval": int64(time.Hour), "rise": 3, "fall": 3, "hold": int64(10 * time.Second)}
	base := startReadyPair(t, "hold", poolProxy("hold", pool, nil, a.addr(), b.addr()), a, b)
	a.down()
	b.down()
	// The first request finds both down (dial refused): each is ejected
	// and the request is held.
	body, sum := payload(t, 512<<10)
	type result struct {
		method string
		status int
		node   string
		sha    string
		took   time.Duration
		err    error
	}
	results := make(chan result, 2)
	var back time.Time
	var backMu sync.Mutex
	send := func(req *http.Request) {
		resp, err := client().Do(req)
		if err != nil {
			results <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		backMu.Lock()
		took := time.Since(back)
		backMu.Unlock()
		results <- result{method: req.Method, status: resp.StatusCode, node: resp.Header.Get("X-Node"), sha: resp.Header.Get("X-Body-Sha256"), took: took}
	}
	get, _ := http.NewRequest(http.MethodGet, base+"/bucket/object", nil)
	put, _ := http.NewRequest(http.MethodPut, base+"/bucket/upload", bytes.NewReader(body))
	put.Header.Set("Expect", "100-continue")
	backMu.Lock()
	go send(get)
	go send(put)
	backMu.Unlock()
	eventually(t, "both nodes out", func() bool {
		s := nodeStates(t, base, "hold")
		return s[a.addr()][:5] != "ready" && s[b.addr()][:5] != "ready"
	})
	probes := b.probes.Load()
	backMu.Lock()
	back = time.Now()
	b.up()
	backMu.Unlock()
	for range 2 {
		r := <-results
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, b.addr(), r.node)
		if r.method == http.MethodPut {
			assert.Equal(t, sum, r.sha, "the held upload arrives whole")
		}
		assert.Less(t, r.took, 3*time.Second, "held requests go out soon after a node is back")
	}
	assert.LessOrEqual(t, b.probes.Load()-probes, int64(20), "one good probe readmits while nothing is routable")
}

// s3err decodes an S3 error document.
type s3err struct {
	Code, Message string
}

// TestHoldBounds: a hold that runs out and a hold that is full answer
// S3 errors, the first after the hold, the second at once.
func TestHoldBounds(t *testing.T) {
	a := newFakeNode(t, serve)
	a.down()
	pool := map[string]any{"hold": int64(700 * time.Millisecond), "hold_max": 1}
	base := startProxy(t, withStatus(poolProxy("bounds", pool, nil, a.addr())))
	eventually(t, "node out", stateIs(t, base, "bounds", a.addr(), "not_ready"))

	type answer struct {
		status     int
		code       string
		retryAfter string
		took       time.Duration
	}
	ask := func() answer {
		start := time.Now()
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		defer resp.Body.Close()
		var e s3err
		b, _ := io.ReadAll(resp.Body)
		_ = xml.Unmarshal(b, &e)
		return answer{resp.StatusCode, e.Code, resp.Header.Get("Retry-After"), time.Since(start)}
	}
	first := make(chan answer, 1)
	go func() { first <- ask() }()
	// The second request comes while the first one is held.
	eventually(t, "one request held", func() bool { return heldIn(t, base, "bounds") == 1 })
	second := ask()
	assert.Equal(t, answer{503, "SlowDown", "1", second.took}, second, "hold_max 1 is taken: SlowDown at once")
	assert.Less(t, second.took, 500*time.Millisecond)
	got := <-first
	assert.Equal(t, 503, got.status)
	assert.Equal(t, "ServiceUnavailable", got.code)
	assert.Equal(t, "1", got.retryAfter)
	assert.GreaterOrEqual(t, got.took, 700*time.Millisecond, "held for the whole hold")
}

// TestHoldRunOutAfterAFailedAttempt: a request whose node turned out to be
// gone (dial refused: ejected) and that then waited the whole hold for a
// node is told to retry later, 503 ServiceUnavailable with Retry-After, as a
// request held from the start is; not 502 for the attempt before the wait
// (seen in a whole-cluster restart that outlasted the hold).
func TestHoldRunOutAfterAFailedAttempt(t *testing.T) {
	a := newFakeNode(t, serve)
	// One probe: only the failed attempt takes the node out.
	pool := map[string]any{"interval": int64(time.Hour), "hold": int64(700 * time.Millisecond)}
	base := startProxy(t, withStatus(poolProxy("runout", pool, nil, a.addr())))
	eventually(t, "node ready", stateIs(t, base, "runout", a.addr(), "ready"))
	a.down()
	start := time.Now()
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	took := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	var e s3err
	require.NoError(t, xml.Unmarshal(b, &e), "%s", b)
	assert.Equal(t, "ServiceUnavailable", e.Code)
	assert.GreaterOrEqual(t, took, 700*time.Millisecond, "held for the whole hold")
}

// sessionOn finds a sessionid whose first node is n, asking with send
// (client().Get or client().Head).
func sessionOn(t *testing.T, base string, n *fakeNode, send func(string) (*http.Response, error)) string {
	t.Helper()
	for i := range 100 {
		resp, err := send(fmt.Sprintf("%s/bucket/object?sessionid=k%d", base, i))
		require.NoError(t, err)
		_ = resp.Body.Close()
		if resp.Header.Get("X-Node") == n.addr() {
			return fmt.Sprintf("k%d", i)
		}
	}
	t.Fatalf("no sessionid of 100 has %s as its first node", n.addr())
	return ""
}

// TestBusyIsNotDead: a node that answers 429 stays routable (busy, never
// ejected) with about half its share; every request succeeds on the next
// node of its key. The key is one whose first node is the busy one.
func TestBusyIsNotDead(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	base := startAffinityPair(t, "busy", map[string]any{"busy_window": int64(time.Minute)}, nil, a, b)
	key := sessionOn(t, base, a, client().Get)
	a.mode.Store(int32(busy429))
	before, served := a.reqs.Load(), b.served.Load()
	const n = 60
	for range n {
		resp, err := client().Get(base + "/bucket/object?sessionid=" + key)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Contains(t, nodeStates(t, base, "busy")[a.addr()], "busy: busy: answered 429")
	asked := a.reqs.Load() - before
	// Without the halving every request would ask a first (60); with it,
	// each does so with probability 1/2 (mean 30, sd 3.9).
	assert.GreaterOrEqual(t, asked, int64(15), "a busy node keeps part of its share")
	assert.LessOrEqual(t, asked, int64(45), "a busy node gets about half its share")
	assert.EqualValues(t, n, b.served.Load()-served)
}

// TestNoWritesWithoutWriteQuorum: a node that answered 503 SlowDownWrite
// (MinIO: no write quorum in its own view) takes no write for busy_window,
// even once it would take it (a write it refuses can delete a small
// object's previous version: healthready's NodeCannotWrite); the writes of
// its keys go to their next node, its reads still reach it (busy: half its
// share).
func TestNoWritesWithoutWriteQuorum(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	base := startAffinityPair(t, "nowrite", map[string]any{"busy_window": int64(time.Minute)}, nil, a, b)
	key := sessionOn(t, base, a, client().Get)
	url := base + "/bucket/object?sessionid=" + key
	body, _ := payload(t, 1<<10)

	a.mode.Store(int32(slowDown503))
	status, hdr, msg := put(t, url, body, true)
	require.Equal(t, http.StatusOK, status, msg)
	require.Equal(t, b.addr(), hdr.Get("X-Node"), "the refused write went to the next node")
	assert.Contains(t, nodeStates(t, base, "nowrite")[a.addr()], "busy: busy: answered 503 SlowDownWrite")

	a.mode.Store(int32(serve)) // it would take writes now; the proxy does not know
	before := a.reqs.Load()
	for i := range 20 {
		status, hdr, msg := put(t, url, body, true)
		require.Equal(t, http.StatusOK, status, "PUT %d: %s", i, msg)
		assert.Equal(t, b.addr(), hdr.Get("X-Node"), "PUT %d", i)
	}
	assert.Zero(t, a.reqs.Load()-before, "no write reached the node without write quorum")
	for range 20 {
		resp, err := client().Get(url)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Positive(t, a.reqs.Load()-before, "its reads still reach it (about half: busy)")
}

// TestBusyHeadIsNotDead: MinIO answers a HEAD it refuses as busy with 503
// and no body, the S3 error code in x-minio-error-code. That is busy, as
// for a GET with the XML error: the node stays routable (busy, never
// ejected by the 503 that Caddy's status-code retry would otherwise count
// as a failure) and every HEAD succeeds on the next node.
func TestBusyHeadIsNotDead(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	proxy := poolProxy("busyhead", map[string]any{"busy_window": int64(time.Minute)}, nil, a.addr(), b.addr())
	rp := proxy["routes"].([]any)[0].(map[string]any)["handle"].([]any)[1].(map[string]any)
	lb := rp["load_balancing"].(map[string]any)
	lb["selection_policy"] = map[string]any{"policy": "session_affinity"}
	// examples/Caddyfile: reads are also retried on 502/503/504 answers.
	lb["retry_match"] = append(lb["retry_match"].([]any), map[string]any{"method": []string{"GET", "HEAD"}, "expression": "{http.reverse_proxy.status_code} in [502, 503, 504]"})
	base := startProxy(t, withStatus(proxy))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "busyhead")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	key := sessionOn(t, base, a, client().Head)
	a.mode.Store(int32(slowDownHeadersOnly))
	before := a.reqs.Load()
	for i := range 20 {
		resp, err := client().Head(base + "/bucket/object?sessionid=" + key)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "HEAD %d", i)
		assert.Equal(t, b.addr(), resp.Header.Get("X-Node"))
	}
	assert.Positive(t, a.reqs.Load()-before, "the busy node was asked")
	assert.Contains(t, nodeStates(t, base, "busyhead")[a.addr()], "busy: busy: answered 503 SlowDown")
}

// TestHedgedReadWins: a GET to a slow node is hedged to the next node after
// the hedge delay; the client gets one answer, the fast one; the slow
// attempt is cancelled and leaves no goroutine behind.
func TestHedgedReadWins(t *testing.T) {
	// Registered first, so it runs last: after Caddy stopped and the fake
	// nodes closed. Caddy's own metrics updater outlives a config.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// Process-wide loops that the first Caddy of the test binary
		// starts and that outlive every config (when this test runs
		// alone, it is the first).
		goleak.VerifyNone(t, ignore,
			goleak.IgnoreAnyFunction("github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy.(*metricsUpstreamsHealthyUpdater).init.func1"),
			goleak.IgnoreAnyFunction("github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy.(*Upstream).fillDynamicHost.func1.1"),
			goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
			goleak.IgnoreAnyFunction("github.com/minio-lb/caddy-minio-lb/internal/traffic.sampleLoop"))
	})
	a, b := newFakeNode(t, slow), newFakeNode(t, serve)
	a.delay.Store(int64(2 * time.Second))
	base := startProxy(t, withStatus(poolProxy("hedge", nil, map[string]any{"hedge": "50ms", "hedge_budget": 1.0}, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "hedge")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	for i := range 5 {
		start := time.Now()
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "ok "+b.addr(), string(body), "request %d: the twin's answer, once", i)
		assert.Less(t, time.Since(start), time.Second, "not the slow node's time")
	}
	assert.Zero(t, a.served.Load(), "the slow node's answers never reached a client")
}

// TestHedgeNeedsBudget: with a small budget, most slow reads wait for the
// slow node: hedges stay within the budget.
func TestHedgeNeedsBudget(t *testing.T) {
	a, b := newFakeNode(t, slow), newFakeNode(t, serve)
	a.delay.Store(int64(100 * time.Millisecond))
	base := startProxy(t, withStatus(poolProxy("budget", nil, map[string]any{"hedge": "20ms", "hedge_budget": 0.1}, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "budget")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	const n = 50
	for range n {
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	hedges := b.reqs.Load()
	assert.LessOrEqual(t, hedges, int64(n/10+1), "hedges within 10%% of reads: %d of %d", hedges, n)
	assert.Positive(t, hedges)
}

// metricValue sums the samples of a metric whose labels include want.
func metricValue(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, traffic.Register(reg))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestTrafficRecordsAttempts: the per-node statistics see each attempt
// with its outcome: a departing node's refusal is a retried attempt with a
// shutdown refusal and a retry to the next node, whose answer is ok; a
// hedge loser is cancelled, the winner counted as a won hedge.
func TestTrafficRecordsAttempts(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	pool := map[string]any{"interval": int64(time.Hour)}
	base := startProxy(t, withStatus(poolProxy("traffic", pool, nil, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "traffic")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	a.mode.Store(int32(shutdown))
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	eventually(t, "attempts recorded", func() bool {
		return metricValue(t, "caddy_minio_lb_requests_total", map[string]string{"pool": "traffic", "node": b.addr(), "outcome": "ok"}) == 1
	})
	assert.Equal(t, 1.0, metricValue(t, "caddy_minio_lb_requests_total", map[string]string{"pool": "traffic", "node": a.addr(), "outcome": "retried", "status": "5xx", "op": "get_object"}))
	assert.Equal(t, 1.0, metricValue(t, "caddy_minio_lb_refusals_total", map[string]string{"pool": "traffic", "node": a.addr(), "reason": "shutdown"}))
	assert.Equal(t, 1.0, metricValue(t, "caddy_minio_lb_retries_total", map[string]string{"pool": "traffic", "from": a.addr(), "to": b.addr()}))
	assert.Equal(t, 0.0, metricValue(t, "caddy_minio_lb_in_flight", map[string]string{"pool": "traffic"}))
}

// TestBusyEverywhereWaits: when every node refuses an upload as busy
// before reading it, the transport waits on the client's behalf (within
// the pool's hold) and sends it again once a node takes it, whole.
func TestBusyEverywhereWaits(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	base := startProxy(t, withStatus(poolProxy("busyall", map[string]any{"hold": int64(10 * time.Second)}, nil, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "busyall")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	a.mode.Store(int32(slowDown503))
	b.mode.Store(int32(slowDown503))
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The scenario: both nodes refuse writes for about a second.
		time.Sleep(time.Second)
		b.mode.Store(int32(serve))
	}()
	body, sum := payload(t, 256<<10)
	start := time.Now()
	status, hdr, msg := put(t, base+"/bucket/object", body, false)
	<-done
	require.Equal(t, http.StatusOK, status, msg)
	assert.Equal(t, sum, hdr.Get("X-Body-Sha256"))
	assert.Equal(t, b.addr(), hdr.Get("X-Node"))
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "it waited for the node")
	assert.Zero(t, a.bodyRead.Load(), "no refusing node read anything")
}

// TestBusyEverywhereGivesUp: with a short hold, the node's own busy answer
// reaches the client once the wait runs out.
func TestBusyEverywhereGivesUp(t *testing.T) {
	a := newFakeNode(t, serve)
	base := startProxy(t, withStatus(poolProxy("busyout", map[string]any{"hold": int64(time.Second)}, nil, a.addr())))
	eventually(t, "ready", func() bool { return nodeStates(t, base, "busyout")[a.addr()] == "ready: status 200" })
	a.mode.Store(int32(slowDown503))
	body, _ := payload(t, 64<<10)
	start := time.Now()
	status, hdr, msg := put(t, base+"/bucket/object", body, false)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, msg, "<Code>SlowDownWrite</Code>", "MinIO's own answer")
	assert.Equal(t, "120", hdr.Get("Retry-After"))
	assert.Less(t, time.Since(start), 3*time.Second)
}

// TestBusyEverywhereTriesAtTheHoldsEnd: the last try is made when the
// hold ends, not when the next full pause would pass it. With a 3 s hold
// the pauses are 0.25, 0.5 and 1 s; the next, 2 s, would end after the
// hold, so the transport waits out the remaining 1.25 s and tries once
// more. The node takes writes again at 2.4 s, between the two.
func TestBusyEverywhereTriesAtTheHoldsEnd(t *testing.T) {
	a := newFakeNode(t, serve)
	base := startProxy(t, withStatus(poolProxy("busyend", map[string]any{"hold": int64(3 * time.Second)}, nil, a.addr())))
	eventually(t, "ready", func() bool { return nodeStates(t, base, "busyend")[a.addr()] == "ready: status 200" })
	a.mode.Store(int32(slowDown503))
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The scenario: the node refuses writes for 2.4 s.
		time.Sleep(2400 * time.Millisecond)
		a.mode.Store(int32(serve))
	}()
	body, sum := payload(t, 64<<10)
	start := time.Now()
	status, hdr, msg := put(t, base+"/bucket/object", body, false)
	took := time.Since(start)
	<-done
	require.Equal(t, http.StatusOK, status, "answered after %s: %s", took, msg)
	assert.Equal(t, sum, hdr.Get("X-Body-Sha256"))
	assert.GreaterOrEqual(t, took, 2900*time.Millisecond, "the last try waited for the hold's end")
}

// TestTryTimeoutEjectsOnlyFrozenNodes: an attempt abandoned at
// try_timeout has its node probed at once. A node that is only slow for
// this request (it answers its probe: on MinIO, a lock held for a frozen
// peer) stays; a frozen node (its probe times out too) is ejected. After
// one abandoned attempt the request waits on the next node, so a request
// that is slow everywhere is answered, not given up.
func TestTryTimeoutEjectsOnlyFrozenNodes(t *testing.T) {
	t.Run("slow everywhere: answered, nobody ejected", func(t *testing.T) {
		a, b := newFakeNode(t, slow), newFakeNode(t, slow)
		a.delay.Store(int64(700 * time.Millisecond))
		b.delay.Store(int64(700 * time.Millisecond))
		pool := map[string]any{"interval": int64(time.Hour), "timeout": int64(time.Second)}
		base := startProxy(t, withStatus(poolProxy("slowall", pool, map[string]any{"try_timeout": int64(300 * time.Millisecond)}, a.addr(), b.addr())))
		eventually(t, "both ready", func() bool {
			s := nodeStates(t, base, "slowall")
			return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
		})
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the second attempt waits")
		assert.Equal(t, b.addr(), resp.Header.Get("X-Node"), "the retry goes to another node")
		// The slow node's check probe has passed: it is still ready.
		eventually(t, "a checked", func() bool { return a.probes.Load() >= 2 })
		assert.Equal(t, "ready: status 200", nodeStates(t, base, "slowall")[a.addr()])
	})
	t.Run("frozen: ejected", func(t *testing.T) {
		a, b := newFakeNode(t, serve), newFakeNode(t, serve)
		pool := map[string]any{"interval": int64(time.Hour), "timeout": int64(300 * time.Millisecond)}
		base := startProxy(t, withStatus(poolProxy("frozen", pool, map[string]any{"try_timeout": int64(300 * time.Millisecond)}, a.addr(), b.addr())))
		eventually(t, "both ready", func() bool {
			s := nodeStates(t, base, "frozen")
			return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
		})
		a.mode.Store(int32(stallHeaders))
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, b.addr(), resp.Header.Get("X-Node"))
		eventually(t, "a ejected", stateIs(t, base, "frozen", a.addr(), "ejected: did not answer within try_timeout"))
	})
}

// TestHedgedPairTimesOutThenWaits: a read whose attempt and hedged twin
// both stall past try_timeout (a frozen node, and a peer waiting on its
// lock) is not failed: Caddy's next attempt goes to a third node, without a
// try deadline.
func TestHedgedPairTimesOutThenWaits(t *testing.T) {
	a, b, c := newFakeNode(t, serve), newFakeNode(t, serve), newFakeNode(t, slow)
	c.delay.Store(int64(600 * time.Millisecond))
	pool := map[string]any{"interval": int64(time.Hour), "timeout": int64(time.Second)}
	base := startProxy(t, withStatus(poolProxy("pair", pool, map[string]any{
		"try_timeout": int64(300 * time.Millisecond), "hedge": "50ms", "hedge_budget": 1.0,
	}, a.addr(), b.addr(), c.addr())))
	eventually(t, "all ready", func() bool {
		s := nodeStates(t, base, "pair")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200" && s[c.addr()] == "ready: status 200"
	})
	a.mode.Store(int32(stallHeaders))
	b.mode.Store(int32(stallHeaders))
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, "ok "+c.addr(), string(body), "the third node, waited for past try_timeout")
}

// TestHedgedPairTimesOutWithNoOtherNode: when the attempt and its hedged
// twin both stall past try_timeout and no other node is left (MinIO
// stalling everywhere on a frozen node, the frozen one out of the pool),
// session_affinity sends the retry back to the key's node, which answers
// without a try deadline: not the 504 of the abandoned pair.
func TestHedgedPairTimesOutWithNoOtherNode(t *testing.T) {
	a, b := newFakeNode(t, slow), newFakeNode(t, slow)
	pool := map[string]any{"interval": int64(time.Hour), "timeout": int64(time.Second)}
	base := startAffinityPair(t, "pairalone", pool, map[string]any{
		"try_timeout": int64(300 * time.Millisecond), "hedge": "50ms", "hedge_budget": 1.0,
	}, a, b)
	a.delay.Store(int64(600 * time.Millisecond))
	b.delay.Store(int64(600 * time.Millisecond))
	resp, err := client().Get(base + "/bucket/object?sessionid=s1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}

// TestRejoinedNodes404GoesToTheNextNode: a node that became routable
// again a moment ago and answers a read 404 (MinIO on a restarted node
// that has not reconnected to its peers yet) is not believed: the read
// asks the next node. That node's answer goes to the client, 404 or not.
func TestRejoinedNodes404GoesToTheNextNode(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	base := startProxy(t, withStatus(poolProxy("rejoin404", nil, nil, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "rejoin404")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	get := func() (int, string) {
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Node") + " " + string(body)
	}
	// a goes away (ejected at once) and comes back, not seeing its peers.
	a.mode.Store(int32(shutdown))
	status, _ := get()
	require.Equal(t, http.StatusOK, status)
	a.mode.Store(int32(notFound))
	eventually(t, "a routable again", stateIs(t, base, "rejoin404", a.addr(), "ready"))
	status, from := get()
	assert.Equal(t, http.StatusOK, status, "the next node has the object: %s", from)
	assert.Contains(t, from, b.addr())

	// When the next node says 404 too, that is the answer.
	b.mode.Store(int32(notFound))
	status, from = get()
	assert.Equal(t, http.StatusNotFound, status, from)
	assert.Contains(t, from, b.addr(), "the next node's own answer")
}

// TestRejoined404WithNoOtherNodeAsksAgain: when the node that rejoined a
// moment ago and answered a read 404 is the only routable node (after a
// whole-cluster restart the first node back did so for about a second),
// the read waits and asks again within notVisibleWait; a node that still
// says 404 then gives the client its 404.
func TestRejoined404WithNoOtherNodeAsksAgain(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	base := startProxy(t, withStatus(poolProxy("rejoin404only", nil, nil, a.addr(), b.addr())))
	eventually(t, "both ready", func() bool {
		s := nodeStates(t, base, "rejoin404only")
		return s[a.addr()] == "ready: status 200" && s[b.addr()] == "ready: status 200"
	})
	get := func() (int, string) {
		resp, err := client().Get(base + "/bucket/object")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Node") + " " + string(body)
	}
	// b stays down; a goes down and comes back, not seeing its peers.
	b.mode.Store(int32(shutdown))
	a.mode.Store(int32(shutdown))
	eventually(t, "both out", func() bool {
		s := nodeStates(t, base, "rejoin404only")
		return !strings.HasPrefix(s[a.addr()], "ready") && !strings.HasPrefix(s[b.addr()], "ready")
	})
	a.mode.Store(int32(notFound))
	eventually(t, "a routable again", stateIs(t, base, "rejoin404only", a.addr(), "ready"))

	// a sees its peers after its first 404: the read gets the object.
	before := a.reqs.Load()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a.reqs.Load() == before {
			time.Sleep(time.Millisecond)
		}
		a.mode.Store(int32(serve))
	}()
	status, from := get()
	<-done
	assert.Equal(t, http.StatusOK, status, "asked again: %s", from)
	assert.Contains(t, from, a.addr())
	assert.GreaterOrEqual(t, a.reqs.Load()-before, int64(2), "a was asked twice")

	// A node that keeps saying 404 gives the client its 404 in the end.
	a.mode.Store(int32(notFound))
	before = a.reqs.Load()
	status, from = get()
	assert.Equal(t, http.StatusNotFound, status, from)
	assert.Greater(t, a.reqs.Load()-before, int64(1), "asked again before the 404 went to the client")
}

// TestRevisitPauses: when every node already failed a request (connection
// refused: MinIO stopping as a whole-cluster restart begins) and the pool
// has not ejected them yet, a retry to a node the request already tried
// waits a moment instead of spending Caddy's retries in milliseconds: a
// node that comes back a moment later serves the request.
func TestRevisitPauses(t *testing.T) {
	a, b := newFakeNode(t, serve), newFakeNode(t, serve)
	// Probes far apart and passive ejection out of reach: the pool keeps
	// both nodes routable while they refuse connections, as in the moment
	// before their ejection lands.
	pool := map[string]any{"interval": int64(time.Hour), "passive_fails": 1000, "hold": int64(10 * time.Second)}
	base := startReadyPair(t, "revisit", poolProxy("revisit", pool, nil, a.addr(), b.addr()), a, b)
	a.down()
	b.down()
	// Attempts: a, b (refused at once), then a again after the pause: a
	// is back by then.
	start := time.Now()
	time.AfterFunc(100*time.Millisecond, a.up)
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, a.addr(), resp.Header.Get("X-Node"))
	assert.GreaterOrEqual(t, time.Since(start), revisitPause, "the revisit waited")
}
