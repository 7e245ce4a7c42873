package healthready

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"
)

// Node states as the status page and metrics show them.
const (
	nodeReady    = "ready"
	nodeNotReady = "not_ready"
	nodeEjected  = "ejected"
	nodeUnknown  = "unknown"
)

// evaluate recomputes every node's state from its probe and passive state,
// readmits ejected nodes whose probes passed rise times since the
// ejection, and publishes a new snapshot when anything changed. With
// initial set (Provision) it records the states without logging
// transitions: a reload is no transition.
func (h *HealthReady) evaluate(initial bool) {
	type emitted struct{ name, host string }
	var events []emitted
	var readmitted []*passiveState

	h.evalMu.Lock()
	now := time.Now()
	changed := false
	routable := 0
	for _, n := range h.nodes {
		ps := n.probe.snapshot()
		ejected, ejectedAt := n.passive.status()
		if ejected && n.probe.passedSince(ejectedAt) {
			if n.passive.readmit(ejectedAt) {
				readmitted = append(readmitted, n.passive)
				h.logger.Info("ejected node readmitted by active probes",
					zap.String("pool", h.Name), zap.String("node", n.dial), zap.Int("rise", h.Rise))
			}
			ejected = false
		}
		state, since, reason := ps.State.String(), ps.Since, ps.Last.reason()
		if ejected {
			state, since = nodeEjected, ejectedAt
			reason = fmt.Sprintf("passive: %d failed attempt(s) within %v", h.PassiveFails, time.Duration(h.PassiveWindow))
			if r := ps.Last.reason(); r != "" && !ps.Last.OK {
				reason += "; last probe " + r
			}
		}
		ok := state == nodeReady || state == nodeUnknown
		if ok {
			routable++
		}
		if state != n.state {
			if !initial {
				since = now
				h.transition(n, state, reason)
				if ok != n.routable {
					name := "unhealthy"
					if ok {
						name = "healthy"
					}
					events = append(events, emitted{name, n.addr})
				}
			}
			n.state, n.since = state, since
			changed = true
		}
		n.routable, n.reason = ok, reason
	}
	failOpen := routable < h.MinReady
	if failOpen != h.failOpen || initial {
		if failOpen && !initial {
			h.logger.Warn("pool fails open: too few ready nodes, routing to all upstreams",
				zap.String("pool", h.Name), zap.Int("ready", routable), zap.Int("min_ready", h.MinReady))
		} else if !failOpen && h.failOpen {
			h.logger.Warn("pool no longer fails open", zap.String("pool", h.Name),
				zap.Int("ready", routable), zap.Int("min_ready", h.MinReady))
		} else if failOpen {
			h.logger.Warn("pool starts failing open: too few ready nodes, routing to all upstreams",
				zap.String("pool", h.Name), zap.Int("ready", routable), zap.Int("min_ready", h.MinReady))
		}
		if failOpen != h.failOpen {
			h.failOpenSince = now
		}
		h.failOpen = failOpen
		changed = true
	}
	if changed || h.snap.Load() == nil {
		dials := make([]string, 0, len(h.nodes))
		for _, n := range h.nodes {
			if failOpen || n.routable {
				dials = append(dials, n.dial)
			}
		}
		h.snap.Store(&snapshot{dials: dials, routable: routable, failOpen: failOpen})
	}
	h.evalMu.Unlock()

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

// transition logs and counts one node state change.
func (h *HealthReady) transition(n *node, to, reason string) {
	counter(counterKey{metric: "transitions", pool: h.Name, node: n.dial, to: to}).Add(1)
	fields := []zap.Field{
		zap.String("pool", h.Name), zap.String("node", n.dial), zap.String("probe", n.spec.Addr),
		zap.String("from", n.state), zap.String("to", to), zap.String("reason", reason),
	}
	if to == nodeReady {
		h.logger.Info("node state changed", fields...)
	} else {
		h.logger.Warn("node state changed", fields...)
	}
}

// eventEmitter emits Caddy events like the built-in health checker does
// ("healthy"/"unhealthy" with {"host": addr}). Its zero value emits nothing
// (a context without a config, as in unit tests).
//
// Events are emitted from the probe goroutines, which start while Caddy is
// still provisioning the rest of the config. The provisioning context's
// module ancestry shares its backing array with the modules loaded after
// this one (so reading it races with their provisioning and can even name
// a sibling as the origin); the emitter therefore keeps only the plain
// context, and its events carry no origin module: subscribe by event name.
type eventEmitter struct {
	app *caddyevents.App
	ctx caddy.Context
}

func (e eventEmitter) emit(name, host string) {
	if e.app == nil {
		return
	}
	e.app.Emit(e.ctx, name, map[string]any{"host": host})
}

// loadEvents gets the events app the way reverse_proxy does. A bare
// context (unit tests) has no config to load it from; ctx.App would then
// panic, so that case is caught and events are off.
func loadEvents(ctx caddy.Context, logger *zap.Logger) (em eventEmitter) {
	defer func() {
		if recover() != nil {
			em = eventEmitter{}
		}
	}()
	app, err := ctx.App("events")
	if err != nil {
		logger.Warn("events app unavailable; healthy/unhealthy events are off", zap.Error(err))
		return eventEmitter{}
	}
	ev, _ := app.(*caddyevents.App)
	return eventEmitter{app: ev, ctx: caddy.Context{Context: ctx.Context}}
}

// splitDial parses a dial address (host:port) the way Caddy does and
// returns it normalised as Caddy's {http.reverse_proxy.upstream.hostport},
// plus its host.
func splitDial(dial string) (addr, host string, err error) {
	if strings.Contains(dial, "://") {
		return "", "", fmt.Errorf("want a dial address host:port, not a URL")
	}
	if strings.Contains(dial, "{") {
		return "", "", fmt.Errorf("placeholders are not supported")
	}
	na, err := caddy.ParseNetworkAddress(dial)
	if err != nil {
		return "", "", err
	}
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		return "", "", fmt.Errorf("only TCP addresses can be probed")
	}
	if na.PortRangeSize() != 1 || na.StartPort == 0 {
		return "", "", fmt.Errorf("need exactly one port")
	}
	if na.Host == "" {
		return "", "", fmt.Errorf("need a host")
	}
	return na.JoinHostPort(0), na.Host, nil
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
