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
	slowMargin      = 50 * time.Millisecond
	slowSampleEvery = 16
)

// slowState logs changes of the slow set and counts the reads let through
// to measure slow nodes.
type slowState struct {
	sampled atomic.Uint64
	mu      sync.Mutex
	logged  []string
}

// avoidSlow returns the node a first read attempt should go to instead of
// node when node answers reads slowly, or "" to keep node.
func (t *Transport) avoidSlow(req *http.Request, tr *proxytrace.Trace, src nodeSource, node string) string {
	v := t.latencyView()
	t.logSlow(v)
	if !slices.Contains(v.slow, node) {
		return ""
	}
	if t.slowState.sampled.Add(1)%slowSampleEvery == 0 {
		return "" // keep measuring it
	}
	return t.nextNode(req, src, func(n string) bool {
		return n == node || slices.Contains(v.slow, n) || !tr.MayRetryOn(n)
	})
}

// logSlow logs the nodes that became slow or fast again since the last
// view logged.
func (t *Transport) logSlow(v *latencyView) {
	st := t.slowState
	st.mu.Lock()
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
