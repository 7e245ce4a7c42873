package healthready

import (
	"errors"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// Metric descriptions. Probe state outlives a config's metrics registry,
// so a collector reads the live state at scrape time instead of keeping
// metric objects of its own.
var (
	descNodeReady = prometheus.NewDesc("caddy_minio_lb_node_ready",
		"1 when the node is routable (ready, or unknown before its first probe), else 0.",
		[]string{"pool", "node"}, nil)
	descNodeState = prometheus.NewDesc("caddy_minio_lb_node_state",
		"1 for the node's current state ("+stateNames()+"), 0 for the others.",
		[]string{"pool", "node", "state"}, nil)
	descProbeDuration = prometheus.NewDesc("caddy_minio_lb_probe_duration_seconds",
		"Duration of readiness probes per probe target.",
		[]string{"node"}, nil)
	descTransitions = prometheus.NewDesc("caddy_minio_lb_state_transitions_total",
		"Node state transitions by target state (ready, not_ready, busy, ejected, drained).",
		[]string{"pool", "node", "to"}, nil)
	descEjections = prometheus.NewDesc("caddy_minio_lb_passive_ejections_total",
		"Nodes ejected on real traffic: transport failures, going-away answers, and nodes that did not answer within try_timeout and failed their probe.",
		[]string{"pool", "node"}, nil)
	descFailOpen = prometheus.NewDesc("caddy_minio_lb_fail_open",
		"1 while the pool has fewer than min_ready routable nodes and routes to all upstreams.",
		[]string{"pool"}, nil)
	descQuorum = prometheus.NewDesc("caddy_minio_lb_cluster_quorum",
		"Cluster quorum gate: 1 ok, 0 lost, -1 unknown (only pools with a cluster gate).",
		[]string{"pool"}, nil)
)

// stateNames lists the node states' names, for the node_state help.
func stateNames() string {
	names := make([]string, 0, numNodeStates)
	for st := nodeState(0); st < numNodeStates; st++ {
		names = append(names, st.String())
	}
	return strings.Join(names, ", ")
}

// collector exports every live pool.
type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeReady, descNodeState, descProbeDuration, descTransitions, descEjections, descFailOpen, descQuorum} {
		ch <- d
	}
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	pools := currentPools("")
	// One histogram per probe address, merged over probe specs that share
	// it (two paths on one node), so label sets stay unique.
	type hist struct {
		counts []uint64
		sum    float64
		n      uint64
	}
	hists := make(map[string]*hist)
	seenSpec := make(map[probeSpec]bool)
	for _, h := range pools {
		v := h.view(nil)
		fo := 0.0
		if v.FailOpen {
			fo = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailOpen, prometheus.GaugeValue, fo, h.Name)
		if v.Cluster != nil {
			q := -1.0
			switch v.Cluster.Quorum {
			case quorumOK:
				q = 1
			case quorumLost:
				q = 0
			}
			ch <- prometheus.MustNewConstMetric(descQuorum, prometheus.GaugeValue, q, h.Name)
		}
		for i, nv := range v.Nodes {
			r := 0.0
			if nv.Routable {
				r = 1
			}
			ch <- prometheus.MustNewConstMetric(descNodeReady, prometheus.GaugeValue, r, h.Name, nv.Upstream)
			// one series per state, 1 for the current one (a state set):
			// a dashboard or an alert can tell not_ready from ejected
			for st := nodeState(0); st < numNodeStates; st++ {
				on := 0.0
				if nv.state == st {
					on = 1
				}
				ch <- prometheus.MustNewConstMetric(descNodeState, prometheus.GaugeValue, on, h.Name, nv.Upstream, st.String())
			}
			// every state but unknown, the first state, which no transition enters
			for to := nodeUnknown + 1; to < numNodeStates; to++ {
				c := counter(counterKey{metric: "transitions", pool: h.Name, node: nv.Upstream, to: to}).Load()
				ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(c), h.Name, nv.Upstream, to.String())
			}
			e := counter(counterKey{metric: "ejections", pool: h.Name, node: nv.Upstream}).Load()
			ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(e), h.Name, nv.Upstream)

			n := h.nodes[i]
			if seenSpec[n.spec] {
				continue
			}
			seenSpec[n.spec] = true
			ps := n.probe.snapshot()
			hh := hists[n.spec.Addr]
			if hh == nil {
				hh = &hist{counts: make([]uint64, len(probeBuckets))}
				hists[n.spec.Addr] = hh
			}
			for j, c := range ps.histCounts {
				hh.counts[j] += c
			}
			hh.sum += ps.histSum
			hh.n += ps.histSamples
		}
	}
	for addr, hh := range hists {
		buckets := make(map[float64]uint64, len(probeBuckets))
		for j, ub := range probeBuckets {
			buckets[ub] = hh.counts[j]
		}
		ch <- prometheus.MustNewConstHistogram(descProbeDuration, hh.n, hh.sum, buckets, addr)
	}
}

// registerMetrics adds the collector, and internal/traffic's (the per-node
// traffic the minio transport records, shown next to health on the status
// page), to this config's registry once; the other pools of the same
// config find them already there.
func registerMetrics(ctx caddy.Context, logger *zap.Logger) {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	if err := reg.Register(collector{}); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			logger.Warn("registering healthready metrics", zap.Error(err))
		}
	}
	if err := traffic.Register(reg); err != nil {
		logger.Warn("registering traffic metrics", zap.Error(err))
	}
}
