package healthready

import (
	"time"

	"go.uber.org/zap"
)

// The methods below are what the minio transport (miniotransport) asks of
// the pool its reverse_proxy routes by; they are safe for concurrent use.

// PoolName names the pool in metrics and on the status page.
func (h *HealthReady) PoolName() string { return h.Name }

// RoutableNodes returns the dial addresses that may get traffic now, in
// config order; never the fail-open set. It does not block.
func (h *HealthReady) RoutableNodes() []string { return h.snap.Load().nodes }

// rejoinWindow is how long after it became routable again a node's 404 to
// a read is not trusted: MinIO on a restarted node answers ready before it
// has reconnected to its peers' drives, and meanwhile answers 404 for
// objects that exist (seen for 3-10 s after a restart).
const rejoinWindow = 30 * time.Second

// JustRejoined reports whether node became routable again, after it was
// out (restarted, ejected, drained), within rejoinWindow.
func (h *HealthReady) JustRejoined(node string) bool {
	n := h.byAddr[node]
	if n == nil {
		return false
	}
	at := n.rejoined.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < rejoinWindow
}

// NodeGoingAway takes the node at dial address node out at once: it
// answered that it is shutting down or not initialised. Only probes bring
// it back (rise good probes after this moment, one while the pool has no
// routable node).
func (h *HealthReady) NodeGoingAway(node, reason string) {
	n := h.byAddr[node]
	if n == nil || !n.passive.ejectNow(time.Now(), "going away: "+reason) {
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

// NodeCannotWrite says node answered 503 SlowDownWrite: in its own view
// its erasure set has no write quorum (MinIO maps errErasureWriteQuorum to
// it and to nothing else; seen on a node restarted a moment ago that had
// not reconnected to every peer yet). It is busy (NodeBusy) and takes no
// write for busy_window (CanWrite), because a write it refuses can cost
// data: MinIO undoes a refused overwrite on the drives it reached, and for
// a small object stored inline in xl.meta the undo deletes xl.meta
// (xl-storage.go DeleteVersion with UndoWrite and no old data dir), so
// reads answer 404 for an object that exists until the next write of it.
func (h *HealthReady) NodeCannotWrite(node, reason string) {
	n := h.byAddr[node]
	if n == nil {
		return
	}
	n.noWriteUntil.Store(time.Now().Add(time.Duration(h.BusyWindow)).UnixNano())
	h.NodeBusy(node, reason)
}

// CanWrite reports whether node may take writes: it did not answer 503
// SlowDownWrite within busy_window (see NodeCannotWrite).
func (h *HealthReady) CanWrite(node string) bool {
	n := h.byAddr[node]
	return n == nil || time.Now().UnixNano() >= n.noWriteUntil.Load()
}

// NodeSlow says node did not answer an attempt within the transport's
// try_timeout. That is not a failure by itself: on MinIO a request often
// waits for a lock held for a frozen peer, on every node alike. The node
// is probed at once (one check at a time per node); if that probe fails
// too, the node is ejected as passive failures eject it, and only rise good
// probes bring it back.
func (h *HealthReady) NodeSlow(node, reason string) {
	n := h.byAddr[node]
	if n == nil || h.PassiveFails < 0 || h.ctx.Err() != nil || !n.passive.startCheck() {
		return
	}
	go func() {
		defer n.passive.endCheck()
		defer recoverPanic(h.logger, "checking a slow node panicked", zap.String("pool", h.Name), zap.String("node", n.dial))
		res := n.probe.do()
		if res.OK {
			h.logger.Debug("slow node answers its probe: not ejected", zap.String("pool", h.Name),
				zap.String("node", n.dial), zap.String("attempt", reason))
			return
		}
		why := "did not answer within try_timeout and its readiness probe failed (" + res.reason() + ")"
		if !n.passive.ejectNow(time.Now(), why) {
			return
		}
		counter(counterKey{metric: "ejections", pool: h.Name, node: n.dial}).Add(1)
		h.logger.Warn("node ejected: it does not answer", zap.String("pool", h.Name), zap.String("node", n.dial),
			zap.String("attempt", reason), zap.String("probe", res.reason()))
		h.kick()
		for _, o := range n.passive.subscribers() {
			if o != h {
				o.kick()
			}
		}
	}()
}
