package healthready

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// Replacer keys of the hold.
const (
	// holdUntilKey keeps a request's hold deadline across the attempts of
	// Caddy's proxy loop: a request waits at most `hold` in all.
	holdUntilKey = "http.reverse_proxy.healthready.hold_until"
	// HoldOutcomeKey says how a hold without a node ended: "timeout" or
	// "full" (hold_max requests were already waiting). s3_errors answers
	// "full" as SlowDown.
	HoldOutcomeKey = "http.reverse_proxy.healthready.hold"
)

// holdState counts the requests of a pool that wait for a node, for
// hold_max. How holds end (and how long they took) goes to the pool's
// traffic stats (internal/traffic), which /metrics and the status page
// show; those outlive reloads, this count is the config's.
type holdState struct {
	waiting atomic.Int64
}

// waitForNode holds r until the pool has a routable node, the request's
// hold deadline passes, or the client goes away, and returns the snapshot
// to route by. Nothing of the request has been read: an upload waits as a
// download does. More than hold_max waiting requests are not held.
func (h *HealthReady) waitForNode(r *http.Request, snap *snapshot) *snapshot {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	now := time.Now()
	deadline := now.Add(h.hold)
	if repl != nil {
		if v, ok := repl.Get(holdUntilKey); ok {
			if d, ok := v.(time.Time); ok {
				deadline = d
			}
		} else {
			repl.Set(holdUntilKey, deadline)
		}
	}
	if !now.Before(deadline) {
		return snap
	}
	stats := traffic.Pool(h.Name)
	if h.holds.waiting.Add(1) > int64(h.HoldMax) {
		h.holds.waiting.Add(-1)
		stats.HoldRejected()
		if repl != nil {
			repl.Set(HoldOutcomeKey, "full")
		}
		return snap
	}
	defer h.holds.waiting.Add(-1)
	stats.HoldBegin()
	result := traffic.HoldServed
	defer func() {
		waited := time.Since(now)
		stats.Hold(waited, result)
		if repl != nil {
			// for the access log: the request's time held, over all its
			// attempts
			ms, _ := repl.Get(traffic.PlaceholderHoldMS)
			prev, _ := ms.(float64)
			repl.Set(traffic.PlaceholderHoldMS, prev+float64(waited)/1e6)
		}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for snap.routable == 0 {
		select {
		case <-snap.changed:
			snap = h.snap.Load()
		case <-timer.C:
			result = traffic.HoldExpired
			if repl != nil {
				repl.Set(HoldOutcomeKey, "timeout")
			}
			h.logger.Debug("request held without a node until its deadline", zap.String("pool", h.Name),
				zap.Duration("hold", h.hold))
			return h.snap.Load()
		case <-r.Context().Done():
			result = traffic.HoldCancelled
			return snap
		}
	}
	return snap
}

// Holds reports whether requests wait for a node when none is routable.
func (h *HealthReady) Holds() bool { return h.hold > 0 }
