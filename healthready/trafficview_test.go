package healthready

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// TestStatusTraffic: the status page shows what the transport recorded in
// internal/traffic for the pool's nodes, next to their health: JSON
// fields per node and per pool, the text page's brackets, the HTML
// page's columns. A node without traffic shows zeros.
func TestStatusTraffic(t *testing.T) {
	busy, quiet := newFakeNode(t, "busy"), newFakeNode(t, "quiet")
	// A node of an earlier config of the same name, which the pool's
	// totals must leave out.
	pool := "status-traffic"
	gone := traffic.For(pool, "127.0.0.1:1")
	gone.Begin()
	gone.End(s3op.GetObject, 200, time.Millisecond, traffic.OK, 0, 0)
	h := provision(t, fastPool(pool, busy.addr(), quiet.addr()))
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both probed ready")
	n := traffic.For(pool, busy.addr())
	for range 95 {
		n.Begin()
		n.End(s3op.GetObject, 200, 4*time.Millisecond, traffic.OK, 0, 10_000)
	}
	for range 3 {
		n.Begin()
		n.End(s3op.GetObject, 503, time.Millisecond, traffic.Retried, 0, 0)
	}
	n.Begin()
	n.End(s3op.PutObject, 0, 0, traffic.Failed, 5_000, 0)
	n.Begin()
	n.End(s3op.HeadObject, 404, 300*time.Millisecond, traffic.OK, 0, 0)
	n.Begin() // in flight
	defer n.End(s3op.GetObject, 200, time.Millisecond, traffic.OK, 0, 0)
	traffic.Pool(pool).HoldBegin()
	defer traffic.Pool(pool).Hold(time.Millisecond, traffic.HoldServed)

	s := StatusHandler{Pool: pool}
	w := serveStatus(t, s, "/upstream/health/?format=json", "")
	require.Equal(t, 200, w.Code, w.Body.String())
	var doc struct {
		Pools []struct {
			Traffic map[string]float64 `json:"traffic"`
			Nodes   []struct {
				Upstream string             `json:"upstream"`
				Traffic  map[string]float64 `json:"traffic"`
			} `json:"nodes"`
		} `json:"pools"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
	require.Len(t, doc.Pools, 1)
	p := doc.Pools[0]
	require.Len(t, p.Nodes, 2)
	b, q := p.Nodes[0].Traffic, p.Nodes[1].Traffic
	fields := []string{"window_s", "requests", "errors", "retried", "req_per_s", "error_pct", "p50_ms", "p99_ms",
		"in_flight", "bytes_in_per_s", "bytes_out_per_s"}
	for _, f := range fields {
		assert.Contains(t, b, f)
		assert.Contains(t, q, f)
		assert.Contains(t, p.Traffic, f)
		assert.Zero(t, q[f], "the quiet node has no traffic: %s", f)
	}
	assert.Contains(t, p.Traffic, "holding")
	assert.NotContains(t, b, "holding", "holding is the pool's")
	assert.Equal(t, 100.0, b["requests"])
	assert.Equal(t, 4.0, b["errors"], "three 503s and one without an answer; the 404 is an answer")
	assert.Equal(t, 3.0, b["retried"])
	assert.InDelta(t, 4.0, b["error_pct"], 1e-9)
	assert.InEpsilon(t, 4.0, b["p50_ms"], 0.34)
	assert.InEpsilon(t, 300.0, b["p99_ms"], 0.34)
	assert.Equal(t, 1.0, b["in_flight"])
	assert.Positive(t, b["req_per_s"])
	assert.Positive(t, b["bytes_in_per_s"])
	assert.Positive(t, b["bytes_out_per_s"])
	assert.Equal(t, b["requests"], p.Traffic["requests"])
	assert.Equal(t, b["in_flight"], p.Traffic["in_flight"])
	assert.Equal(t, 1.0, p.Traffic["holding"])

	text := serveStatus(t, s, "/upstream/health/?format=text", "").Body.String()
	assert.Regexp(t, `Upstream `+pool+` \(ready 2/2, min_ready 1, [0-9.]+ req/s, 4\.0% errors, p50 [0-9.]+ms, p99 [0-9.]+ms, 3 retried, 1 in flight, 1 HOLDING\)`, text)
	assert.Regexp(t, busy.addr()+` UP \([0-9.]+ms\) \[[0-9.]+ req/s, 4\.0% err, p50 [0-9.]+ms, p99 [0-9.]+ms, 3 retried, 1 in flight, in [0-9.]+ [kM]?B/s, out [0-9.]+ [kM]?B/s\]`, text)
	assert.Regexp(t, quiet.addr()+` UP \([0-9.]+ms\)\n`, text, "no brackets without traffic")

	html := serveStatus(t, s, "/upstream/health/?format=html", "").Body.String()
	for _, want := range []string{"traffic, last minute", "<th class=\"n g\">req/s</th>", "<th class=\"n\">p99</th>",
		"caddy fails / in flight", "3 retried", `class="n ewarn">4.0%`, "1 HOLDING", "req/s · "} {
		assert.Contains(t, html, want)
	}
}

func TestTrafficText(t *testing.T) {
	tests := []struct {
		name  string
		view  TrafficView
		bytes bool
		want  string
	}{
		{"idle", TrafficView{}, true, "0.0 req/s, 0.0% err"},
		{"all", TrafficView{ReqPerSec: 31.25, ErrorPct: 0.5, P50MS: 2.71, P99MS: 120.4, Retried: 2, InFlight: 3,
			BytesInPerSec: 1500, BytesOutPerSec: 9_800_000}, true,
			"31.2 req/s, 0.5% err, p50 2.71ms, p99 120ms, 2 retried, 3 in flight, in 1.5 kB/s, out 9.8 MB/s"},
		{"no bytes on a pool line", TrafficView{ReqPerSec: 1, BytesInPerSec: 10}, false, "1.0 req/s, 0.0% err"},
		{"small rates", TrafficView{BytesOutPerSec: 999, P50MS: 11.04, P99MS: 12}, true,
			"0.0 req/s, 0.0% err, p50 11.0ms, p99 12.0ms, out 999 B/s"},
		{"gigabytes", TrafficView{BytesOutPerSec: 2.5e9}, true, "0.0 req/s, 0.0% err, out 2.5 GB/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := trafficText(tt.view, "err", tt.bytes)
			assert.Equal(t, tt.want, fmt.Sprint(joinComma(got)))
		})
	}
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

func TestErrClass(t *testing.T) {
	for pct, want := range map[float64]string{0: "", 1: "", 1.01: "ewarn", 5: "ewarn", 5.5: "ebad", 100: "ebad"} {
		assert.Equal(t, want, errClass(pct), "%v%%", pct)
	}
}

// TestHoldsRecordedInTraffic: the hold records every way a hold ends in
// the pool's traffic stats, which /metrics exports: expired (deadline),
// cancelled (client gone), rejected (hold_max waiting already) and served
// (a node became routable).
func TestHoldsRecordedInTraffic(t *testing.T) {
	node := newFakeNode(t, "n")
	node.mode.Store(mode503)
	pool := "holds"
	cfg := fastPool(pool, node.addr())
	hold := caddy.Duration(150 * time.Millisecond)
	cfg.Hold, cfg.HoldMax = &hold, 1
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeNotReady }, "no routable node")

	get := func(ctx context.Context) {
		r := httptest.NewRequest(http.MethodGet, "/b/o", nil).WithContext(ctx)
		_, err := h.GetUpstreams(r)
		assert.NoError(t, err)
	}
	get(context.Background()) // expires after 150ms
	// The access log's placeholder says how long the request was held.
	repl := caddy.NewReplacer()
	r := httptest.NewRequest(http.MethodGet, "/b/o", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	_, err := h.GetUpstreams(r)
	require.NoError(t, err)
	held, ok := repl.Get(traffic.PlaceholderHoldMS)
	require.True(t, ok, "hold_ms set")
	assert.GreaterOrEqual(t, held.(float64), 150.0)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	get(gone) // the client is gone

	// One request holds (a long deadline, as a retry of a request held
	// before carries in its replacer); a second finds hold_max full.
	done := make(chan struct{})
	go func() {
		defer close(done)
		repl := caddy.NewReplacer()
		repl.Set(holdUntilKey, time.Now().Add(time.Minute))
		get(context.WithValue(context.Background(), caddy.ReplacerCtxKey, repl))
	}()
	stats := traffic.LookupPool(pool)
	eventually(t, wait, func() bool { return stats.Holding() == 1 }, "one request holding")
	get(context.Background())
	node.mode.Store(modeOK) // a good probe readmits: the held request is served
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("the held request was not served when the node became routable")
	}
	assert.Zero(t, stats.Holding())

	reg := prometheus.NewRegistry()
	require.NoError(t, traffic.Register(reg))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["pool"] != pool {
				continue
			}
			switch mf.GetName() {
			case "caddy_minio_lb_holds_total":
				got[labels["result"]] = m.GetCounter().GetValue()
			case "caddy_minio_lb_hold_wait_seconds":
				got["waits"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	assert.Equal(t, map[string]float64{"served": 1, "expired": 2, "cancelled": 1, "rejected": 1, "waits": 4}, got)
}
