package healthready

import (
	"time"
)

// PoolView is the JSON shape of one pool on the status page. Field names
// are stable; see docs/healthready_status.md.
type PoolView struct {
	// Name is the pool name (option name, default: the upstream list).
	Name string `json:"name"`
	// Ready is the readiness answer: at least max(min_ready,1) routable
	// nodes, not failing open, and no lost cluster quorum.
	Ready bool `json:"ready"`
	// Routable counts nodes that are ready or unknown (not yet probed).
	Routable int `json:"routable"`
	// Total counts the configured upstreams.
	Total int `json:"total"`
	// MinReady is the fail-open threshold: with fewer routable nodes the
	// pool fails open.
	MinReady int `json:"min_ready"`
	// FailOpen is true while the pool routes to every upstream.
	FailOpen bool `json:"fail_open"`
	// Held counts the requests waiting for a node right now (no node is
	// routable; see hold).
	Held int64 `json:"held"`
	// HoldsServed, HoldsTimedOut and HoldsFull count holds that ended with
	// a node, holds that ran out, and requests not held because hold_max
	// were waiting (since the pool's config was loaded).
	HoldsServed   uint64 `json:"holds_served"`
	HoldsTimedOut uint64 `json:"holds_timed_out"`
	HoldsFull     uint64 `json:"holds_full"`
	// FailOpenSince is when fail_open last changed.
	FailOpenSince time.Time `json:"fail_open_since,omitzero"`
	// Probe is the probe configuration.
	Probe ProbeConfigView `json:"probe"`
	// Cluster is the quorum gate, absent when off.
	Cluster *clusterView `json:"cluster,omitempty"`
	// Nodes lists the upstreams in config order.
	Nodes []NodeView `json:"nodes"`
	// Traffic is the pool's traffic over the last minute (the status
	// page's; zero in the metrics collector's and readiness answer's views).
	Traffic PoolTrafficView `json:"traffic"`
}

// ProbeConfigView summarises a pool's probe settings, defaults applied.
type ProbeConfigView struct {
	// Scheme, Method and Path make up the probe request.
	Scheme string `json:"scheme"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// IntervalMS and TimeoutMS are interval and timeout in milliseconds.
	IntervalMS float64 `json:"interval_ms"`
	TimeoutMS  float64 `json:"timeout_ms"`
	// Rise and Fall are the good and failed probes in a row that change a
	// node's state.
	Rise int `json:"rise"`
	Fall int `json:"fall"`
}

// NodeView is the JSON shape of one node.
type NodeView struct {
	// Upstream is the dial address traffic goes to.
	Upstream string `json:"upstream"`
	// Probe is the probed address (host:port).
	Probe string `json:"probe"`
	// State is ready, not_ready, ejected (passive) or unknown.
	State string `json:"state"`
	// Routable is true when traffic may go to the node (ready or unknown).
	Routable bool `json:"routable"`
	// Since is when State was entered.
	Since time.Time `json:"since,omitzero"`
	// Reason explains State (last status, header or error).
	Reason string `json:"reason,omitempty"`
	// ProbeState is the active probes' own verdict (ignores ejection).
	ProbeState string `json:"probe_state"`
	// ConsecutivePasses and ConsecutiveFails count the latest run of probes.
	ConsecutivePasses int `json:"consecutive_passes"`
	ConsecutiveFails  int `json:"consecutive_fails"`
	// LastStatus is the last probe's HTTP status (0: no answer).
	LastStatus int `json:"last_status,omitempty"`
	// LastServerStatus is the last X-Minio-Server-Status header.
	LastServerStatus string `json:"last_server_status,omitempty"`
	// LastError is the last probe's transport error.
	LastError string `json:"last_error,omitempty"`
	// LastLatencyMS is the last probe's duration in milliseconds.
	LastLatencyMS float64 `json:"last_latency_ms"`
	// LastProbe is when the last probe started.
	LastProbe time.Time `json:"last_probe,omitzero"`
	// Probes counts finished probes of the target.
	Probes uint64 `json:"probes"`
	// OfflineAnswers counts probes answered with an X-Minio-Server-Status
	// header (a node that is starting or rejoining): each one kept traffic
	// away from a node whose status code alone said ready.
	OfflineAnswers uint64 `json:"offline_answers"`
	// InFlight is the number of requests in flight to the upstream, as
	// Caddy counts them (all sites proxying to this dial address).
	InFlight int `json:"in_flight"`
	// CaddyFails is Caddy's own passive fail count for the address
	// (counted only when reverse_proxy sets fail_duration).
	CaddyFails int `json:"caddy_fails"`
	// PassiveFailures counts failed attempts within passive_window.
	PassiveFailures int `json:"passive_failures"`
	// PassiveEjections counts ejections of this address (process lifetime).
	PassiveEjections uint64 `json:"passive_ejections"`
	// Traffic is the node's traffic over the last minute: requests/s,
	// error %, first-byte p50/p99, in flight, bytes/s.
	Traffic TrafficView `json:"traffic"`

	// state is State for the renderers; zero in a decoded document.
	state nodeState
}

// view builds the pool's status. hosts are Caddy's per-address counters
// (caddyHosts), read once per status page for all pools; nil leaves
// in_flight and caddy_fails at 0 (metrics and the readiness answer do not
// show them).
func (h *HealthReady) view(hosts map[string]caddyHostCounts) PoolView {
	now := time.Now()
	v := PoolView{
		Name:     h.Name,
		Total:    len(h.nodes),
		MinReady: h.minReady,
		Probe: ProbeConfigView{
			Scheme: h.Scheme, Method: h.Method, Path: h.Path,
			IntervalMS: float64(time.Duration(h.Interval)) / 1e6, TimeoutMS: float64(time.Duration(h.Timeout)) / 1e6,
			Rise: h.Rise, Fall: h.Fall,
		},
		Nodes: make([]NodeView, 0, len(h.nodes)),
	}
	v.Held, v.HoldsServed = h.holds.waiting.Load(), h.holds.served.Load()
	v.HoldsTimedOut, v.HoldsFull = h.holds.timedOut.Load(), h.holds.full.Load()
	h.evalMu.Lock()
	v.FailOpen, v.FailOpenSince = h.failOpen, h.failOpenSince
	for _, n := range h.nodes {
		ps := n.probe.snapshot()
		nv := NodeView{
			Upstream: n.dial, Probe: n.spec.Addr,
			State: n.state.String(), Routable: n.state.routable(), Since: n.since, Reason: n.reason,
			state:             n.state,
			ProbeState:        ps.State.String(),
			ConsecutivePasses: ps.Passes, ConsecutiveFails: ps.Fails,
			LastStatus: ps.Last.Status, LastServerStatus: ps.Last.ServerStatus, LastError: ps.Last.Err,
			LastLatencyMS:  float64(ps.Last.Latency) / 1e6,
			LastProbe:      ps.Last.Start,
			Probes:         ps.Probes,
			OfflineAnswers: ps.Offline,
		}
		c := hosts[n.dial]
		nv.InFlight, nv.CaddyFails = c.InFlight, c.Fails
		nv.PassiveFailures = n.passive.recentFailures(now, time.Duration(h.PassiveWindow))
		nv.PassiveEjections = n.passive.ejectionCount()
		if nv.Routable {
			v.Routable++
		}
		v.Nodes = append(v.Nodes, nv)
	}
	h.evalMu.Unlock()
	if h.gate != nil {
		cv := h.gate.view()
		v.Cluster = &cv
	}
	v.Ready = !v.FailOpen && v.Routable >= max(h.minReady, 1) && (v.Cluster == nil || v.Cluster.Quorum != quorumLost)
	return v
}
