package healthready

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Cluster quorum states.
const (
	quorumUnknown = "unknown"
	quorumOK      = "ok"
	quorumLost    = "lost"
)

// clusterGate asks one ready node of the pool, once per interval, whether
// the erasure sets still have quorum (/minio/health/cluster for write,
// /minio/health/cluster/read for read). It does not change routing: reads
// may still work without write quorum, and MinIO answers clear S3 errors.
// It is for visibility and for the status page's readiness answer, which
// turns 503 so keepalived or an outer load balancer can fail over.
type clusterGate struct {
	h      *HealthReady
	path   string
	client *http.Client

	mu      sync.Mutex
	state   string
	since   time.Time
	checked time.Time
	node    string
	status  int
	err     string
	rotate  int
}

func newClusterGate(h *HealthReady) *clusterGate {
	path := "/minio/health/cluster"
	if h.Cluster == "read" {
		path = "/minio/health/cluster/read"
	}
	return &clusterGate{
		h:    h,
		path: path,
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: time.Duration(h.Timeout)},
			Timeout:   time.Duration(h.Timeout),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		state: quorumUnknown,
		since: time.Now(),
	}
}

// run asks once per interval until ctx is done; ctx also cuts short a
// check in flight.
func (g *clusterGate) run(ctx context.Context) {
	defer g.client.CloseIdleConnections()
	defer recoverPanic(g.h.logger, "cluster gate loop panicked, quorum is no longer checked", zap.String("pool", g.h.Name))
	interval := time.Duration(g.h.Interval)
	for {
		// Wait one interval first: the node probes decide who is ready.
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		g.checkSafely(ctx)
	}
}

// checkSafely runs one check; a panic in it is logged and the gate checks
// again at the next interval, its state left as it was.
func (g *clusterGate) checkSafely(ctx context.Context) {
	defer recoverPanic(g.h.logger, "cluster quorum check panicked", zap.String("pool", g.h.Name))
	g.check(ctx)
}

// check probes one ready node (rotating among them).
func (g *clusterGate) check(ctx context.Context) {
	ready := g.h.readyNodes()
	if len(ready) == 0 {
		g.set(quorumUnknown, "", 0, "no ready node to ask")
		return
	}
	g.rotate++
	target := ready[g.rotate%len(ready)]
	spec := target.spec
	rctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, spec.Scheme+"://"+spec.Addr+g.path, nil)
	if err != nil {
		g.set(quorumUnknown, spec.Addr, 0, err.Error())
		return
	}
	if spec.Host != "" {
		req.Host = spec.Host
	}
	resp, err := g.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		g.set(quorumUnknown, spec.Addr, 0, shortErr(err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		g.set(quorumOK, spec.Addr, resp.StatusCode, "")
	case resp.StatusCode == http.StatusServiceUnavailable:
		g.set(quorumLost, spec.Addr, resp.StatusCode, "")
	default:
		g.set(quorumUnknown, spec.Addr, resp.StatusCode, "unexpected status")
	}
}

func (g *clusterGate) set(state, node string, status int, errText string) {
	prev := g.record(state, node, status, errText)
	if state == prev {
		return
	}
	fields := []zap.Field{
		zap.String("pool", g.h.Name), zap.String("gate", g.h.Cluster), zap.String("node", node),
		zap.String("from", prev), zap.String("to", state), zap.Int("status", status), zap.String("error", errText),
	}
	if state == quorumOK {
		g.h.logger.Info("cluster quorum state changed", fields...)
	} else {
		g.h.logger.Warn("cluster quorum state changed", fields...)
	}
}

// record stores one check's outcome and returns the previous state.
func (g *clusterGate) record(state, node string, status int, errText string) (prev string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev = g.state
	now := time.Now()
	g.checked, g.node, g.status, g.err = now, node, status, errText
	if state != prev {
		g.state, g.since = state, now
	}
	return prev
}

// clusterView is a copy of the gate's state for readers.
type clusterView struct {
	Gate    string    `json:"gate"`
	Quorum  string    `json:"quorum"`
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked,omitzero"`
	Node    string    `json:"node,omitempty"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
}

func (g *clusterGate) view() clusterView {
	g.mu.Lock()
	defer g.mu.Unlock()
	return clusterView{Gate: g.h.Cluster, Quorum: g.state, Since: g.since, Checked: g.checked,
		Node: g.node, Status: g.status, Error: g.err}
}
