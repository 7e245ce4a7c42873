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
	// HoldOutcomeKey says how a hold without a node ended: "timeout" (the
	// request's hold ran out) or "full" (hold_max requests were already
	// waiting). s3_errors answers both 503, "full" as SlowDown.
	HoldOutcomeKey = "http.reverse_proxy.healthready.hold"
	// HoldOutcomeTimeout and HoldOutcomeFull are the values of
	// HoldOutcomeKey.
	HoldOutcomeTimeout = "timeout"
	HoldOutcomeFull    = "full"
)

// holdState counts the requests of a pool that wait for a node, for
// hold_max and the status page's counts since the config was loaded. The
// same events also go to the pool's traffic stats (internal/traffic),
// which outlive reloads and which /metrics exports.
type holdState struct {
	waiting  atomic.Int64
	served   atomic.Uint64 // holds that ended with a node
	timedOut atomic.Uint64 // holds that ended at the deadline
	full     atomic.Uint64 // requests not held: hold_max were waiting
	waitNs   atomic.Uint64 // total time held, served or not
}

// waitForNode holds r until the pool has a routable node, the request's
// hold deadline passes, or the client goes away, and returns the snapshot
// to route by. Nothing of the request has been read: an upload waits as a
// download does. More than hold_max waiting requests are not held.
//
// A request that waited the whole hold is not sent to every node (no
// fail-open with zero routable nodes while holding is on): the probes ran
// every 100 ms and saw none that can serve, and sending it would only turn
// a clear "retry later" (503 with Retry-After) into connection errors.
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
		// The request spent its hold already (earlier waits and attempts):
		// it ends waiting for a node, as a hold that runs out does.
		if repl != nil {
			repl.Set(HoldOutcomeKey, HoldOutcomeTimeout)
		}
		return noNode
	}
	stats := traffic.Pool(h.Name)
	if h.holds.waiting.Add(1) > int64(h.HoldMax) {
		h.holds.waiting.Add(-1)
		h.holds.full.Add(1)
		stats.HoldRejected()
		if repl != nil {
			repl.Set(HoldOutcomeKey, HoldOutcomeFull)
		}
		return noNode
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
	defer func() { h.holds.waitNs.Add(uint64(time.Since(now))) }()
	for snap.routable == 0 {
		select {
		case <-snap.changed:
			snap = h.snap.Load()
		case <-timer.C:
			if snap = h.snap.Load(); snap.routable > 0 {
				continue // a node came back just as the hold ran out: served below
			}
			h.holds.timedOut.Add(1)
			result = traffic.HoldExpired
			if repl != nil {
				repl.Set(HoldOutcomeKey, HoldOutcomeTimeout)
			}
			h.logger.Debug("request held without a node until its deadline", zap.String("pool", h.Name),
				zap.Duration("hold", h.hold))
			return noNode
		case <-r.Context().Done():
			result = traffic.HoldCancelled
			return noNode
		}
	}
	h.holds.served.Add(1)
	return snap
}

// noNode routes nowhere: Caddy answers 503, s3_errors makes it an S3 error.
var noNode = &snapshot{}

// Holds reports whether requests wait for a node when none is routable.
func (h *HealthReady) Holds() bool { return h.hold > 0 }

// HoldFor is how long a request may wait for a node.
func (h *HealthReady) HoldFor() time.Duration { return h.hold }
