package miniotransport

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
)

// Slow nodes. Hedging under a budget cannot save the reads of a node that
// answers every read late (a slow disk, a saturated NIC, a node behind a
// bad link): it holds a quarter of the keys of a 4-node pool, far more
// than the 5% of reads the budget may hedge (seen: +200 ms on one node,
// read p99 2.0-2.6x the healthy cluster's). So a node whose median first
// byte of reads is an outlier among the pool's nodes gets no first
// attempts of reads for a while: a read whose key picks it first goes to
// the key's next node. MinIO is strongly consistent on every node, so a
// read served elsewhere is the same read. Writes keep their node (a
// multipart upload stays on one node). One read in slowSampleEvery still
// goes to the slow node, so that its latencies keep being measured and it
// gets its reads back once it is fast again.
const (
	defaultSlowFactor = 4.0
	// slowMargin: below this a node's median is never an outlier.
	slowMargin = 50 * time.Millisecond
	// slowSampleEvery: one read in this many that would go to a slow node
	// still goes there, unhedged, to measure it: few enough to stay out of
	// the read p99 (a slow node holding a quarter of the keys: 0.4% of
	// reads), enough to see it fast again within a minute or two.
	slowSampleEvery = 64
)

// slowState logs changes of the slow set and counts the reads let through
// to measure slow nodes.
type slowState struct {
	sampled atomic.Uint64
	seen    atomic.Pointer[latencyView] // the view logSlow last compared
	mu      sync.Mutex
	logged  []string
}

// avoidSlow returns the node a first read attempt should go to instead of
// node when node answers reads slowly, or "" to keep node; measure is true
// for the read in slowSampleEvery that goes to the slow node to measure it
// (it must not be hedged: a twin's win would hide the node's latency).
func (t *Transport) avoidSlow(req *http.Request, tr *proxytrace.Trace, src nodeSource, node string) (alt string, measure bool) {
	v := t.latencyView()
	t.logSlow(v)
	if !slices.Contains(v.slow, node) {
		return "", false
	}
	if t.slowState.sampled.Add(1)%slowSampleEvery == 0 {
		return "", true
	}
	return t.nextNode(req, src, func(n string) bool {
		return n == node || slices.Contains(v.slow, n) || !tr.MayRetryOn(n)
	}), false
}

// isSlow reports whether node answers reads slowly now.
func (t *Transport) isSlow(node string) bool {
	return t.slowFactor > 0 && slices.Contains(t.latencyView().slow, node)
}

// logSlow logs the nodes that became slow or fast again since the last
// view logged.
func (t *Transport) logSlow(v *latencyView) {
	st := t.slowState
	if st.seen.Load() == v {
		return // this view was compared already: no lock on the request path
	}
	st.mu.Lock()
	st.seen.Store(v)
	defer st.mu.Unlock()
	if slices.Equal(st.logged, v.slow) {
		return
	}
	for _, n := range v.slow {
		if !slices.Contains(st.logged, n) {
			t.logger.Warn("node answers reads slowly: reads go to their next node first",
				zap.String("node", n), zap.Duration("read_p50", v.p50[n]), zap.Duration("pool_median", v.median))
		}
	}
	for _, n := range st.logged {
		if !slices.Contains(v.slow, n) {
			t.logger.Info("node answers reads in time again", zap.String("node", n),
				zap.Duration("read_p50", v.p50[n]), zap.Duration("pool_median", v.median))
		}
	}
	st.logged = slices.Clone(v.slow)
}
