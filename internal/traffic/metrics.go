package traffic

import (
	"errors"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name of caddy-minio-lb.
const Namespace = "caddy_minio_lb_"

// metricNames collects the full names desc makes, in order.
var metricNames []string

func desc(name, help string, labels ...string) *prometheus.Desc {
	metricNames = append(metricNames, Namespace+name)
	return prometheus.NewDesc(Namespace+name, help, labels, nil)
}

// Metric descriptions. Like healthready's, the state outlives any config's
// registry, so the collector reads it at scrape time and keeps no metric
// objects of its own. docs/observability.md lists them with their labels.
var (
	descRequests = desc("requests_total",
		"Attempts (requests sent to a node) by S3 operation class, status class (1xx..5xx, none: no response) and outcome (ok, retried, failed, cancelled).",
		"pool", "node", "op", "status", "outcome")
	descFirstByte = desc("first_byte_seconds",
		"Time from sending an attempt to the first byte of the node's response head, by S3 operation class (attempts with a response only).",
		"pool", "node", "op")
	descBytesIn = desc("bytes_in_total",
		"Request bytes sent to the node (uploads).",
		"pool", "node")
	descBytesOut = desc("bytes_out_total",
		"Response bytes read from the node and sent on (downloads).",
		"pool", "node")
	descInFlight = desc("in_flight",
		"Attempts to the node in flight now.",
		"pool", "node")
	descRetries = desc("retries_total",
		"Requests retried on node `to` after their attempt on node `from` failed.",
		"pool", "from", "to")
	descHedges = desc("hedges_total",
		"Hedged reads sent to the node, by result (won: its answer was used; lost: the other attempt answered first).",
		"pool", "node", "result")
	descRefusals = desc("refusals_total",
		"Requests the node refused without serving them, by reason (busy: 429 or 503 SlowDown; shutdown: 503 while stopping).",
		"pool", "node", "reason")
	descHolding = desc("holding",
		"Requests waiting now for a routable node of the pool.",
		"pool")
	descHolds = desc("holds_total",
		"Holds by result (served: a node became routable in time; expired: the deadline passed, the client got an error; cancelled: the client went away; rejected: not held, too many holding).",
		"pool", "result")
	descHoldWait = desc("hold_wait_seconds",
		"Time requests were held waiting for a routable node.",
		"pool")

	allDescs = []*prometheus.Desc{descRequests, descFirstByte, descBytesIn, descBytesOut, descInFlight,
		descRetries, descHedges, descRefusals, descHolding, descHolds, descHoldWait}
)

// MetricNames lists the name of every metric the collector exports, for
// documentation and for tests that check dashboards against them.
func MetricNames() []string { return append([]string(nil), metricNames...) }

// collector exports a registry's pools and nodes.
type collector struct{ r *registry }

// Describe sends every metric description.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the current values. Per node, in_flight, the byte
// counters, hedges and refusals are always sent (small fixed label sets,
// so a zero is a zero rather than a missing series); requests_total
// only for label sets that counted something, first_byte_seconds only for
// operation classes with an observation, retries_total only for pairs
// with a retry: the bound stays the same, the scrape stays short.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.r.poolList() {
		nodes := p.Nodes()
		for _, n := range nodes {
			c.collectNode(ch, p, n, nodes)
		}
		ch <- prometheus.MustNewConstMetric(descHolding, prometheus.GaugeValue, float64(p.holding.Load()), p.name)
		for r := range p.holdEnded {
			ch <- prometheus.MustNewConstMetric(descHolds, prometheus.CounterValue, float64(p.holdEnded[r].Load()), p.name, holdResultNames[r])
		}
		ch <- prometheus.MustNewConstMetric(descHolds, prometheus.CounterValue, float64(p.holdRejected.Load()), p.name, "rejected")
		cnt, sum, buckets := p.holdWait.read()
		ch <- prometheus.MustNewConstHistogram(descHoldWait, cnt, sum, buckets, p.name)
	}
}

func (c collector) collectNode(ch chan<- prometheus.Metric, p *PoolStats, n *Node, nodes []*Node) {
	pool, node := p.name, n.name
	var ended uint64
	for op := range n.reqs {
		opName := s3op.Op(op).String()
		for sc := range n.reqs[op] {
			for o := range n.reqs[op][sc] {
				if v := n.reqs[op][sc][o].Load(); v > 0 {
					ended += v
					ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v),
						pool, node, opName, statusNames[sc], outcomeNames[o])
				}
			}
		}
		if cnt, sum, buckets := n.lat[op].read(); cnt > 0 {
			ch <- prometheus.MustNewConstHistogram(descFirstByte, cnt, sum, buckets, pool, node, opName)
		}
	}
	ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(n.bytesIn.Load()), pool, node)
	ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(n.bytesOut.Load()), pool, node)
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(inFlight(n.begins.Load(), ended)), pool, node)
	for i := range n.retryTo {
		v := n.retryTo[i].Load()
		if v == 0 {
			continue
		}
		to := OverflowName
		if i < len(nodes) && i < MaxPoolNodes {
			to = nodes[i].name
		}
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(v), pool, node, to)
	}
	ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(n.hedgeWon.Load()), pool, node, "won")
	ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(n.hedgeLst.Load()), pool, node, "lost")
	ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n.busy.Load()), pool, node, "busy")
	ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n.shutdown.Load()), pool, node, "shutdown")
}

// Register adds the collector of the process's traffic to reg (a config's
// metrics registry, ctx.GetMetricsRegistry()) once: every module of the
// same config may call it; a second call finds it there. A nil reg does
// nothing.
func Register(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(collector{r: std})
	var are prometheus.AlreadyRegisteredError
	if err != nil && errors.As(err, &are) {
		return nil
	}
	return err
}
