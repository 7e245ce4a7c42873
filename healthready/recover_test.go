package healthready

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// panicFirst wraps next in a transport whose first n requests panic.
func panicFirst(n int32, next http.RoundTripper) http.RoundTripper {
	var calls atomic.Int32
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) <= n {
			panic("injected panic")
		}
		return next.RoundTrip(r)
	})
}

// assertPanicsLogged checks that msg was logged n times at error level with
// the panic value and a stack that names where it happened.
func assertPanicsLogged(t *testing.T, logs *observer.ObservedLogs, msg string, n int, stackHas string) {
	t.Helper()
	entries := logs.FilterMessage(msg).All()
	require.Len(t, entries, n, "logged once per panic")
	for _, e := range entries {
		assert.Equal(t, zapcore.ErrorLevel, e.Level)
		fields := e.ContextMap()
		assert.Equal(t, "injected panic", fields["panic"])
		assert.Contains(t, fields["stack"], stackHas)
	}
}

// TestProbePanicRecovered: a panic in a probe is logged with its stack and
// the loop goes on probing (the panic is recovered per probe, not once).
func TestProbePanicRecovered(t *testing.T) {
	f := newFakeNode(t, "n")
	core, logs := observer.New(zapcore.DebugLevel)
	spec := probeSpec{
		Scheme: "http", Addr: f.addr(), Path: "/minio/health/ready", Method: http.MethodGet,
		Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Rise: 1, Fall: 1, Expect: http.StatusOK,
	}
	p := newProber(spec, nil, nil)
	p.logger = func() *zap.Logger { return zap.New(core) }
	p.client.Transport = panicFirst(2, p.client.Transport)
	p.start()
	t.Cleanup(func() { _ = p.Destruct() })

	eventually(t, wait, func() bool { return p.snapshot().Probes >= 2 }, "probes after the panics")
	assert.Equal(t, stateReady, p.snapshot().State)
	recorded := p.snapshot().Probes
	assert.LessOrEqual(t, int64(recorded), f.probes.Load(), "only probes that reached the node are recorded")
	assertPanicsLogged(t, logs, "probe panicked", 2, "(*prober).do")
	assert.Equal(t, spec.Scheme+"://"+spec.Addr+spec.Path, logs.FilterMessage("probe panicked").All()[0].ContextMap()["target"])
	assert.Zero(t, logs.FilterMessage("probe loop panicked, the target is no longer probed").Len())
}

// TestPoolLoopPanicRecovered: a panic while the pool evaluates its nodes
// (here: in logging a transition, under the pool's lock) is logged and the
// pool goes on evaluating; the lock is free again.
func TestPoolLoopPanicRecovered(t *testing.T) {
	// stepped: the first probe answers once the pool is provisioned, so
	// its transition is the loop's to evaluate
	a := newSteppedNode(t, "a")
	core, logs := observer.New(zapcore.DebugLevel)
	var armed atomic.Bool
	armed.Store(true)
	h := fastPool("panic-loop", a.addr())
	h.Rise, h.Fall = 1, 1
	h.Timeout = caddy.Duration(time.Minute) // a probe waits for the test's answer
	h.logger = zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "node state changed" && armed.CompareAndSwap(true, false) {
			panic("injected panic")
		}
		return nil
	}))
	provision(t, h)

	a.step(t, modeOK) // unknown -> ready: logging the transition panics
	eventually(t, wait, func() bool { return logs.FilterMessage("evaluating node states panicked").Len() == 1 }, "panic logged")
	assert.Equal(t, nodeUnknown, stateOf(h, 0), "the evaluation that panicked stored nothing")
	assertPanicsLogged(t, logs, "evaluating node states panicked", 1, "(*HealthReady).transition")
	assert.Equal(t, "panic-loop", logs.FilterMessage("evaluating node states panicked").All()[0].ContextMap()["pool"])

	// the next probe's evaluation goes through, and the next ones follow
	// the node
	a.step(t, modeOK)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "ready on the next evaluation")
	a.step(t, mode503)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady }, "not_ready after the panic")
	assert.Zero(t, logs.FilterMessage("pool loop panicked, node states are no longer updated").Len())
}

// TestClusterGatePanicRecovered: a panic in a quorum check is logged and
// the gate checks again at the next interval.
func TestClusterGatePanicRecovered(t *testing.T) {
	a := newFakeNode(t, "a")
	core, logs := observer.New(zapcore.DebugLevel)
	h := fastPool("panic-gate", a.addr())
	h.logger = zap.New(core)
	provision(t, h)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady }, "ready")

	// A gate of its own (the pool runs none, cluster is off), so that its
	// client can be wrapped before it runs.
	g := newClusterGate(h)
	g.client.Transport = panicFirst(2, g.client.Transport)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, wait, func() bool { return g.view().Quorum == quorumOK }, "quorum checked after the panics")
	assertPanicsLogged(t, logs, "cluster quorum check panicked", 2, "(*clusterGate).check")
	cancel()
	<-done
	assert.Zero(t, logs.FilterMessage("cluster gate loop panicked, quorum is no longer checked").Len())
}
