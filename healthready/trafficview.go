package healthready

import (
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// TrafficView is a node's (or a pool's) traffic over the last minute, as
// the minio transport recorded it (internal/traffic): the status page's
// HAProxy-like columns next to the health ones. Every value is 0 when no
// transport records traffic. Field names are stable; see
// docs/observability.md, Status page traffic fields.
type TrafficView struct {
	// WindowS is the window's length in seconds: 60 to 65, less for a
	// node younger than that.
	WindowS float64 `json:"window_s"`
	// Requests counts the attempts that ended in the window, Errors those
	// that were errors of the node (no response or 5xx, not cancelled),
	// Retried those that failed and went on to another node.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	Retried  uint64 `json:"retried"`
	// ReqPerSec is attempts per second; ErrorPct 100 × Errors / Requests.
	ReqPerSec float64 `json:"req_per_s"`
	ErrorPct  float64 `json:"error_pct"`
	// P50MS and P99MS are first-byte latency percentiles in milliseconds
	// (attempts with a response; 0 without any).
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	// InFlight is the number of attempts in flight now.
	InFlight int64 `json:"in_flight"`
	// BytesInPerSec and BytesOutPerSec are request bytes sent to, and
	// response bytes read from, the node(s) per second.
	BytesInPerSec  float64 `json:"bytes_in_per_s"`
	BytesOutPerSec float64 `json:"bytes_out_per_s"`
}

// PoolTrafficView is a pool's traffic: its nodes' totals, and the
// requests waiting for a routable node.
type PoolTrafficView struct {
	TrafficView
	// Holding is the number of requests waiting now for a routable node.
	Holding int64 `json:"holding"`
}

func trafficView(w traffic.Window) TrafficView {
	return TrafficView{
		WindowS:  w.Span.Seconds(),
		Requests: w.Requests, Errors: w.Errors, Retried: w.Retried,
		ReqPerSec: w.ReqPerSec, ErrorPct: w.ErrorPct,
		P50MS: float64(w.P50) / 1e6, P99MS: float64(w.P99) / 1e6,
		InFlight:      w.InFlight,
		BytesInPerSec: w.BytesInPerSec, BytesOutPerSec: w.BytesOutPerSec,
	}
}

// addTraffic fills in the traffic of a pool's view and of its nodes. The
// status page calls it; the metrics collector and the readiness answer,
// which build views too, do not need it.
//
// The pool's totals are those of its configured nodes: the traffic
// registry keeps every node a pool name ever had (counters outlive
// reloads), and a node removed by a reload is not part of the pool now.
func addTraffic(v *PoolView, now time.Time) {
	nodes := make([]*traffic.Node, len(v.Nodes))
	for i := range v.Nodes {
		nodes[i] = traffic.Lookup(v.Name, v.Nodes[i].Upstream)
		v.Nodes[i].Traffic = trafficView(nodes[i].Window(now))
	}
	v.Traffic = PoolTrafficView{
		TrafficView: trafficView(traffic.Sum(nodes, now)),
		Holding:     traffic.LookupPool(v.Name).Holding(),
	}
}

// active reports whether the view has anything to show: attempts in the
// window or in flight.
func (t TrafficView) active() bool { return t.Requests > 0 || t.InFlight > 0 }
