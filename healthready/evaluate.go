package healthready

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// evaluate recomputes every node's state from its probe and passive state,
// readmits ejected nodes whose probes passed rise times since the
// ejection, and publishes a new snapshot when anything changed. With
// initial set (Provision) it records the states without logging
// transitions: a reload is no transition.
//
// Events are emitted and other pools kicked after evalMu is released:
// event handlers are other modules' code, which may take its time or ask
// this pool for its state.
func (h *HealthReady) evaluate(initial bool) {
	events, readmitted := h.evaluateLocked(initial)
	for _, e := range events {
		h.events.emit(e.name, e.host)
	}
	for _, s := range readmitted {
		for _, o := range s.subscribers() {
			if o != h {
				o.kick()
			}
		}
	}
}

// emitted is a Caddy event evaluate emits once evalMu is released.
type emitted struct{ name, host string }

// evaluateLocked is evaluate's part under evalMu. The deferred unlock
// matters: a panic in here is recovered by the pool's goroutine, which
// must find the lock free on its next evaluation.
func (h *HealthReady) evaluateLocked(initial bool) (events []emitted, readmitted []*passiveState) {
	h.evalMu.Lock()
	defer h.evalMu.Unlock()
	now := time.Now()
	changed := false
	routable := 0
	takers := 0            // routable and not busy
	var busyEnds time.Time // the soonest end of a busy period, to evaluate again then
	for _, n := range h.nodes {
		ps := n.probe.snapshot()
		ejected, ejectedAt := n.passive.status()
		goingAway := n.passive.goingAwayReason()
		if ejected && n.probe.passedSince(ejectedAt) {
			if n.passive.readmit(ejectedAt) {
				readmitted = append(readmitted, n.passive)
				h.logger.Info("ejected node readmitted by active probes",
					zap.String("pool", h.Name), zap.String("node", n.dial), zap.Int("rise", h.Rise))
			}
			ejected = false
		}
		state, since, reason := nodeStateOf(ps.State), ps.Since, ps.Last.reason()
		busyUntil, busyWhy := n.passive.busy()
		if probeBusy := ps.LastBusy.Add(time.Duration(h.BusyWindow)); probeBusy.After(busyUntil) {
			busyUntil, busyWhy = probeBusy, "readiness probe answered busy"
		}
		drain, drained := drainOf(n.addr)
		switch {
		case drained:
			state, since = nodeDrained, drain.Since
			reason = "drained by " + drain.By
			if !ps.Last.OK && ps.HasResult {
				reason += "; last probe " + ps.Last.reason()
			}
		case ejected && goingAway != "":
			state, since = nodeEjected, ejectedAt
			reason = goingAway
		case ejected:
			state, since = nodeEjected, ejectedAt
			reason = fmt.Sprintf("passive: %d failed attempt(s) within %v", h.PassiveFails, time.Duration(h.PassiveWindow))
			if r := ps.Last.reason(); r != "" && !ps.Last.OK {
				reason += "; last probe " + r
			}
		case state == nodeReady && busyUntil.After(now):
			state, reason = nodeBusy, "busy: "+busyWhy
			if busyEnds.IsZero() || busyUntil.Before(busyEnds) {
				busyEnds = busyUntil
			}
		}
		if state.routable() {
			routable++
			if state == nodeReady {
				takers++
			}
		}
		if state != n.state {
			if !initial {
				if state != nodeDrained && state != nodeEjected {
					since = now
				}
				h.transition(n, state, reason)
				if state.routable() != n.state.routable() {
					name := "unhealthy"
					if state.routable() {
						name = "healthy"
					}
					events = append(events, emitted{name, n.addr})
				}
			}
			if !initial && state.routable() && !n.state.routable() && n.state != nodeUnknown {
				n.rejoined.Store(now.UnixNano())
			}
			n.state, n.since = state, since
			changed = true
		}
		n.reason = reason
	}
	if !busyEnds.IsZero() {
		h.wakeAt(busyEnds)
	}
	// Urgent also while every routable node refuses as busy and others are
	// out: after a whole-cluster restart the first node back refuses
	// writes (503 SlowDownWrite) until its peers are, and at the normal
	// interval they would come back rise x interval later (seen: 9 s of
	// refused writes while the other nodes were ready).
	h.setUrgent(h.hold > 0 && (routable == 0 || (takers == 0 && routable < len(h.nodes))), routable)
	failOpen := routable < h.minReady
	if failOpen != h.failOpen || initial {
		if failOpen && !initial {
			h.logger.Warn("pool fails open: too few routable nodes, routing to all upstreams",
				zap.String("pool", h.Name), zap.Int("routable", routable), zap.Int("min_ready", h.minReady))
		} else if !failOpen && h.failOpen {
			h.logger.Warn("pool no longer fails open", zap.String("pool", h.Name),
				zap.Int("routable", routable), zap.Int("min_ready", h.minReady))
		} else if failOpen {
			h.logger.Warn("pool starts failing open: too few routable nodes, routing to all upstreams",
				zap.String("pool", h.Name), zap.Int("routable", routable), zap.Int("min_ready", h.minReady))
		}
		if failOpen != h.failOpen {
			h.failOpenSince = now
		}
		h.failOpen = failOpen
		changed = true
	}
	if changed || h.snap.Load() == nil {
		next := &snapshot{routable: routable, failOpen: failOpen, changed: make(chan struct{})}
		for _, n := range h.nodes {
			if n.state.routable() {
				next.nodes = append(next.nodes, n.dial)
			}
			if failOpen || n.state.routable() {
				next.dials = append(next.dials, n.dial)
				next.busy = append(next.busy, n.state == nodeBusy)
			}
		}
		if prev := h.snap.Swap(next); prev != nil {
			close(prev.changed) // wakes the requests held on it
		}
	}
	return events, readmitted
}

// wakeAt makes the pool evaluate again at t (the end of a busy period);
// an earlier wake-up already due is kept. Called under evalMu.
func (h *HealthReady) wakeAt(t time.Time) {
	if !h.nextWake.IsZero() && !h.nextWake.After(t) && h.nextWake.After(time.Now()) {
		return
	}
	h.nextWake = t
	time.AfterFunc(time.Until(t)+time.Millisecond, h.kick)
}

// setUrgent tells the pool's probers whether no node can take requests
// (none is routable, or every routable one refuses as busy while others
// are out): its probes then run every fastInterval and one good probe
// (with write quorum) readmits a node, so held and refused requests go out
// as soon as a node can take them. Called under evalMu.
func (h *HealthReady) setUrgent(on bool, routable int) {
	if on == h.urgent {
		return
	}
	h.urgent = on
	for _, n := range h.nodes {
		n.probe.setUrgent(on)
	}
	switch {
	case on && routable == 0:
		h.logger.Warn("no routable node: probing every 100ms, holding new requests",
			zap.String("pool", h.Name), zap.Duration("hold", h.hold), zap.Int("hold_max", h.HoldMax))
	case on:
		h.logger.Warn("every routable node refuses as busy: probing the others every 100ms",
			zap.String("pool", h.Name), zap.Int("routable", routable))
	default:
		h.logger.Info("a node can take requests again: probing at the normal interval", zap.String("pool", h.Name))
	}
}

// transition logs and counts one node state change.
func (h *HealthReady) transition(n *node, to nodeState, reason string) {
	counter(counterKey{metric: "transitions", pool: h.Name, node: n.dial, to: to}).Add(1)
	fields := []zap.Field{
		zap.String("pool", h.Name), zap.String("node", n.dial), zap.String("probe", n.spec.Addr),
		zap.String("from", n.state.String()), zap.String("to", to.String()), zap.String("reason", reason),
	}
	if to == nodeReady {
		h.logger.Info("node state changed", fields...)
	} else {
		h.logger.Warn("node state changed", fields...)
	}
}

// readyNodes returns the nodes whose state is ready (probed and not
// ejected; unknown ones are not), in config order.
func (h *HealthReady) readyNodes() []*node {
	h.evalMu.Lock()
	defer h.evalMu.Unlock()
	var ready []*node
	for _, n := range h.nodes {
		if n.state == nodeReady {
			ready = append(ready, n)
		}
	}
	return ready
}
