package healthready

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
	"github.com/stretchr/testify/require"
)

// backend modes of a fake MinIO node.
const (
	modeOK      int32 = iota // 200
	modeOffline              // 200 + X-Minio-Server-Status: offline
	mode503                  // 503 (busy, KMS/etcd unreachable)
	modeHang                 // never answers (until the client gives up or the test ends)
	mode404
	mode502 // the S3 API answers 502 to real traffic
)

// fakeNode is a MinIO stand-in on loopback: /minio/health/* answers by
// mode, every other path serves "node <name>" (real traffic).
type fakeNode struct {
	srv     *httptest.Server
	mode    atomic.Int32
	probes  atomic.Int64 // readiness probes that arrived
	passes  atomic.Int64 // readiness probes answered as a ready node (200, no offline header)
	traffic atomic.Int64
	cluster atomic.Int32 // status of /minio/health/cluster
	maint   atomic.Int32 // status of /minio/health/cluster?maintenance=true
	bad     atomic.Bool  // real traffic gets 502, whatever the probes see
	name    string
	steps   chan int32    // a stepped node's answers (newSteppedNode)
	gone    chan struct{} // closed when the test ends: frees held probes
}

func newFakeNode(t testing.TB, name string) *fakeNode {
	t.Helper()
	return startFakeNode(t, &fakeNode{name: name})
}

// newSteppedNode is a fake node whose every readiness probe waits for the
// test to pick its answer (step): the test decides exactly how many probes
// the loop sees and what each of them says.
func newSteppedNode(t testing.TB, name string) *fakeNode {
	t.Helper()
	return startFakeNode(t, &fakeNode{name: name, steps: make(chan int32)})
}

// step answers the node's next probe (waiting for it to arrive) by mode.
func (f *fakeNode) step(t testing.TB, mode int32) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case f.steps <- mode:
	case <-deadline.C:
		require.FailNow(t, "no probe arrived", "node %s", f.name)
	}
}

func startFakeNode(t testing.TB, f *fakeNode) *fakeNode {
	t.Helper()
	f.gone = make(chan struct{})
	f.cluster.Store(http.StatusOK)
	f.maint.Store(http.StatusOK)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/minio/health/cluster", "/minio/health/cluster/read":
			if r.URL.Query().Get("maintenance") == "true" {
				w.WriteHeader(int(f.maint.Load()))
				return
			}
			w.WriteHeader(int(f.cluster.Load()))
			return
		case "/minio/health/ready", "/minio/health/live":
			mode := f.mode.Load()
			if f.steps != nil {
				select {
				case mode = <-f.steps:
				case <-r.Context().Done():
					return
				case <-f.gone:
					return
				}
			}
			f.probes.Add(1)
			switch mode {
			case modeOffline:
				w.Header().Set("X-Minio-Server-Status", "offline")
				w.WriteHeader(http.StatusOK)
			case mode503:
				w.WriteHeader(http.StatusServiceUnavailable)
			case modeHang:
				select {
				case <-r.Context().Done():
				case <-f.gone:
				}
			case mode404:
				w.WriteHeader(http.StatusNotFound)
			default:
				f.passes.Add(1)
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		f.traffic.Add(1)
		if f.mode.Load() == mode502 || f.bad.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte("node " + f.name))
	}))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.gone) }) // before Close, which waits for held probes
	return f
}

func (f *fakeNode) addr() string { return f.srv.Listener.Addr().String() }

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	return freeport.Addr(t)
}

// testCtx is a bare Caddy context (no config: no events app).
func testCtx(t testing.TB) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// fastPool returns a config that probes often, for tests. Its timeout is
// long: a probe of a healthy fake node that timed out on a busy machine
// would flip a node the test holds steady. Tests of hanging nodes set
// their own.
func fastPool(name string, upstreams ...string) *HealthReady {
	return &HealthReady{
		Upstreams: upstreams,
		Name:      name,
		Interval:  caddy.Duration(25 * time.Millisecond),
		Timeout:   caddy.Duration(wait),
		Rise:      2,
		Fall:      2,
	}
}

// provision provisions h and cleans it up at the end of the test.
func provision(t testing.TB, h *HealthReady) *HealthReady {
	t.Helper()
	require.NoError(t, h.Provision(testCtx(t)))
	t.Cleanup(func() {
		_ = h.Cleanup()
		// The traffic registry outlives the pool; -count=N makes new
		// pools in one process.
		traffic.Forget(h.Name)
	})
	return h
}

// wait is how long a test waits for a condition before it fails. It is
// a deadline, never a pause: conditions are polled, and on an idle
// machine they hold within milliseconds; the margin is for -race runs on
// a busy machine.
const wait = 10 * time.Second

// eventually polls cond every 2ms until it holds, for at most max.
func eventually(t testing.TB, max time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			require.Failf(t, "condition not met in time", msg, args...)
		case <-tick.C:
		}
	}
}

// upstreamDials lists what GetUpstreams returns.
func upstreamDials(h *HealthReady) []string {
	ups, _ := h.GetUpstreams(nil)
	out := make([]string, 0, len(ups))
	for _, u := range ups {
		out = append(out, u.Dial)
	}
	return out
}

// stateOf reads the state pool h gave node i.
func stateOf(h *HealthReady, i int) nodeState {
	h.evalMu.Lock()
	defer h.evalMu.Unlock()
	return h.nodes[i].state
}

func intp(n int) *int { return &n }

func durp(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }
