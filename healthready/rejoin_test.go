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
)

// nodeReason is the reason the status page gives for node i of h.
func nodeReason(h *HealthReady, i int) string { return h.view(nil).Nodes[i].Reason }

// TestRejoinWaitsForWriteQuorum: a node back from a restart is not
// readmitted while it answers ready but does not see write quorum yet and
// a ready peer does (it would refuse writes and miss objects); it is once
// it sees quorum. When no ready node sees write quorum, the cluster is
// read-only everywhere and the node is readmitted for reads.
func TestRejoinWaitsForWriteQuorum(t *testing.T) {
	for _, tc := range []struct {
		name       string
		peerQuorum int32
		wantReady  bool
		wantReason string // while a waits
	}{
		{"peer sees quorum: wait", http.StatusOK, false, "sees write quorum (not rejoined yet)"},
		{"nobody sees quorum: ready for reads", http.StatusServiceUnavailable, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
			cfg := fastPool("rejoin-"+tc.name, a.addr(), b.addr())
			cfg.Rise, cfg.Fall = 1, 1
			h := provision(t, cfg)
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both ready")

			a.mode.Store(mode503) // a restarts
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady }, "a out")
			a.cluster.Store(http.StatusServiceUnavailable)
			b.cluster.Store(tc.peerQuorum)
			probes := a.probes.Load()
			a.mode.Store(modeOK) // a answers ready, without its peers' drives
			eventually(t, wait, func() bool { return a.probes.Load() >= probes+5 }, "probes go on")
			if !tc.wantReady {
				assert.Equal(t, nodeNotReady, stateOf(h, 0))
				assert.Contains(t, nodeReason(h, 0), tc.wantReason)
				assert.Equal(t, []string{b.addr()}, upstreamDials(h))
				a.cluster.Store(http.StatusOK) // reconnected
			}
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "a readmitted")
			assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h))
		})
	}
}

// TestHeldRequestsWaitForQuorumAtMostAHold: with no routable node, the
// first nodes back must show write quorum, but only for as long as the
// pool holds requests: a cluster that stays read-only is then served.
func TestHeldRequestsWaitForQuorumAtMostAHold(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	cfg := fastPool("quorum-hold", a.addr(), b.addr())
	cfg.Rise, cfg.Fall = 1, 1
	hold := caddy.Duration(400 * time.Millisecond)
	cfg.Hold = &hold
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both ready")

	a.mode.Store(mode503)
	b.mode.Store(mode503)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady && stateOf(h, 1) == nodeNotReady }, "both out")
	a.cluster.Store(http.StatusServiceUnavailable)
	b.cluster.Store(http.StatusServiceUnavailable)
	back := time.Now()
	a.mode.Store(modeOK)
	b.mode.Store(modeOK)
	eventually(t, wait, func() bool { return len(h.RoutableNodes()) > 0 }, "a node routable")
	assert.GreaterOrEqual(t, time.Since(back), time.Duration(hold), "no node before a hold went by without quorum")
}

// TestUndrainWaitsForFreshProbes: an undrained node is routable again
// only after rise probes that started after the undrain passed. Here its
// probe state still says ready from before (fall is never reached, as when
// a restart fell between two probes), while the new process answers
// offline.
func TestUndrainWaitsForFreshProbes(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	cfg := fastPool("undrain", a.addr(), b.addr())
	cfg.Rise, cfg.Fall = 2, 1000
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both ready")

	_, _, err := DrainNodes(context.Background(), a.addr(), "undrain", "test", false)
	require.NoError(t, err)
	assert.Equal(t, nodeDrained, stateOf(h, 0))
	a.mode.Store(modeOffline) // restarted, still starting
	_, err = UndrainNodes(a.addr(), "undrain", "test")
	require.NoError(t, err)
	assert.Equal(t, stateReady, a0Probe(h).State, "the probes' own verdict is stale")
	assert.Equal(t, []string{b.addr()}, upstreamDials(h), "not routable on a stale verdict")
	assert.Contains(t, nodeReason(h, 0), "undrained: waiting for 2 passing probe(s)")
	probes := a.probes.Load()
	eventually(t, wait, func() bool { return a.probes.Load() >= probes+5 }, "probes go on")
	assert.Equal(t, []string{b.addr()}, upstreamDials(h), "offline answers keep it out")

	passes := a.passes.Load()
	a.mode.Store(modeOK)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "routable again")
	assert.GreaterOrEqual(t, a.passes.Load()-passes, int64(2), "after rise fresh passes")
	assert.Equal(t, []string{a.addr(), b.addr()}, upstreamDials(h))
	assert.Zero(t, counter(counterKey{metric: "ejections", pool: "undrain", node: a.addr()}).Load(), "an undrain is no ejection")
}

func a0Probe(h *HealthReady) probeSnapshot { return h.nodes[0].probe.snapshot() }

// TestUndrainWaitsForItsPeers: an undrained node (likely restarted while
// drained) comes back only once MinIO on it sees as much of the cluster as
// a ready peer does (its maintenance check passes like the peer's): until
// it has reconnected it answers 404 and SlowDownWrite. When the peers see
// no more than it does, its readiness alone readmits it.
func TestUndrainWaitsForItsPeers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		peerSees int32
		waits    bool
	}{
		{"a peer sees more: waits", http.StatusOK, true},
		{"nobody sees more: readmitted", http.StatusPreconditionFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
			pool := fmt.Sprintf("undrain-peers-%d", time.Now().UnixNano())
			cfg := fastPool(pool, a.addr(), b.addr())
			cfg.Rise, cfg.Fall = 2, 1000
			h := provision(t, cfg)
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both ready")
			_, _, err := DrainNodes(context.Background(), a.addr(), pool, "test", false)
			require.NoError(t, err)

			a.maint.Store(http.StatusPreconditionFailed) // restarted: sees only part of the cluster
			b.maint.Store(tc.peerSees)
			_, err = UndrainNodes(a.addr(), pool, "test")
			require.NoError(t, err)
			if !tc.waits {
				eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "readmitted on its readiness")
				return
			}
			passes := a.passes.Load()
			eventually(t, wait, func() bool { return a.passes.Load() >= passes+5 }, "probes pass")
			assert.Equal(t, []string{b.addr()}, upstreamDials(h), "kept out while it sees less than its peer")
			assert.Contains(t, a0Probe(h).Last.reason(), "not reconnected to every peer yet")
			a.maint.Store(http.StatusOK)
			eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "routable once it sees its peers")
		})
	}
}

// TestBusyEverywhereProbesTheOthersFast: when every routable node refuses
// as busy (the first node back after a whole-cluster restart answers 503
// SlowDownWrite until its peers are) the nodes that are out are probed
// every 100 ms and one good probe readmits them, not rise probes an
// interval apart.
func TestBusyEverywhereProbesTheOthersFast(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	b.mode.Store(mode503)
	cfg := fastPool(fmt.Sprintf("busyfast-%d", time.Now().UnixNano()), a.addr(), b.addr())
	cfg.Interval = caddy.Duration(time.Hour) // only the first probe, unless urgent
	cfg.Rise, cfg.Fall = 3, 1
	hold := caddy.Duration(10 * time.Second)
	cfg.Hold = &hold
	cfg.BusyWindow = caddy.Duration(time.Minute)
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeNotReady }, "a ready, b not ready")

	b.mode.Store(modeOK) // b is back, but nothing probes it for an hour
	h.NodeBusy(a.addr(), "answered 503 SlowDownWrite")
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeBusy }, "a busy")
	eventually(t, wait, func() bool { return stateOf(h, 1) == nodeReady }, "b readmitted by the fast probes")
}

// TestSpentHoldEndsWaitingForANode: a request whose hold deadline has
// passed (its earlier waits and attempts took it) is not held again when
// no node is routable, and is marked as having ended waiting for a node,
// so that s3_errors answers 503 rather than the earlier attempt's error.
func TestSpentHoldEndsWaitingForANode(t *testing.T) {
	cfg := fastPool("spent", closedAddr(t))
	cfg.Hold = durp(time.Minute)
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return len(h.RoutableNodes()) == 0 }, "the node out")

	repl := caddy.NewReplacer()
	repl.Set(holdUntilKey, time.Now().Add(-time.Millisecond))
	r := httptest.NewRequest(http.MethodGet, "/bucket/key", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	start := time.Now()
	ups, err := h.GetUpstreams(r)
	require.NoError(t, err)
	assert.Empty(t, ups)
	assert.Less(t, time.Since(start), time.Second, "not held again")
	outcome, _ := repl.GetString(HoldOutcomeKey)
	assert.Equal(t, HoldOutcomeTimeout, outcome)
}
