package healthready

import (
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The methods below are what the minio transport (miniotransport) asks of
// the pool its reverse_proxy routes by; they are safe for concurrent use.

// PoolName names the pool in metrics and on the status page.
func (h *HealthReady) PoolName() string { return h.Name }

// RoutableNodes returns the dial addresses that may get traffic now, in
// config order; never the fail-open set. It does not block.
func (h *HealthReady) RoutableNodes() []string { return h.snap.Load().nodes }

// NodeGoingAway takes the node at dial address node out at once: it
// answered that it is shutting down or not initialised. Only probes bring
// it back (rise good probes after this moment, one while the pool has no
// routable node).
func (h *HealthReady) NodeGoingAway(node, reason string) {
	n := h.byAddr[node]
	if n == nil || !n.passive.ejectNow(time.Now(), reason) {
		return
	}
	counter(counterKey{metric: "ejections", pool: h.Name, node: n.dial}).Add(1)
	h.logger.Warn("node ejected: it is going away",
		zap.String("pool", h.Name), zap.String("node", n.dial), zap.String("reason", reason))
	h.evaluate(false)
	for _, o := range n.passive.subscribers() {
		if o != h {
			o.kick()
		}
	}
}

// NodeBusy reduces the node's share of new requests for busy_window: it
// refused a request as overloaded. It is not ejected.
func (h *HealthReady) NodeBusy(node, reason string) {
	n := h.byAddr[node]
	if n == nil {
		return
	}
	now := time.Now()
	counter(counterKey{metric: "busy", pool: h.Name, node: n.dial}).Add(1)
	if !n.passive.markBusy(now, now.Add(time.Duration(h.BusyWindow)), reason) {
		return // already busy: the window was extended
	}
	h.logger.Info("node busy: reducing its share", zap.String("pool", h.Name), zap.String("node", n.dial),
		zap.String("reason", reason), zap.Duration("busy_window", time.Duration(h.BusyWindow)))
	h.evaluate(false)
	for _, o := range n.passive.subscribers() {
		if o != h {
			o.kick()
		}
	}
}

// AttemptFailed counts a failed attempt of r on node against the node's
// passive health, once per request and node (the same count ResetCache
// keeps, so a retry that follows does not count it again).
func (h *HealthReady) AttemptFailed(r *http.Request, node string) {
	if h.PassiveFails < 0 || r == nil {
		return
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		h.observeFailure(node)
		return
	}
	counted, _ := repl.Get(h.countedKey)
	seen, _ := counted.([]string)
	if slices.Contains(seen, node) {
		return
	}
	repl.Set(h.countedKey, append(seen, node))
	h.observeFailure(node)
}
