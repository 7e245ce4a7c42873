package healthready

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func serveStatus(t *testing.T, s StatusHandler, target string, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	err := s.ServeHTTP(w, r, nil)
	if err != nil {
		w.Code = -1
		w.Body.Reset()
		w.Body.WriteString(err.Error())
	}
	return w
}

func TestStatusHandler(t *testing.T) {
	up, down := newFakeNode(t, "up"), newFakeNode(t, "down")
	down.mode.Store(modeOffline)
	h := provision(t, fastPool("status-mixed", up.addr(), down.addr()))
	allDown := newFakeNode(t, "x")
	allDown.mode.Store(mode503)
	hd := provision(t, fastPool("status-down", allDown.addr()))
	eventually(t, wait, func() bool {
		return stateOf(h, 1) == nodeNotReady && stateOf(hd, 0) == nodeNotReady && stateOf(h, 0) == nodeReady
	}, "probed")

	mixed := StatusHandler{Pool: "status-mixed"}
	tests := []struct {
		name, target, accept string
		handler              StatusHandler
		wantCode             int
		wantType             string
		want                 []string
	}{
		{"text by default", "/upstream/health/", "", mixed, 200, "text/plain",
			[]string{"Upstream status-mixed (ready 1/2, min_ready 1)\n    Primary Peers\n        " + up.addr() + " UP",
				down.addr() + " DOWN (status 200, X-Minio-Server-Status: offline"}},
		{"json by Accept", "/upstream/health/", "application/json", mixed, 200, "application/json",
			[]string{`"name": "status-mixed"`, `"state": "not_ready"`, `"last_server_status": "offline"`}},
		{"html by Accept", "/upstream/health/", "text/html,application/xhtml+xml", mixed, 200, "text/html",
			[]string{`<meta http-equiv="refresh" content="3">`, "status-mixed", "offline"}},
		{"format overrides Accept", "/upstream/health/?format=text", "text/html", mixed, 200, "text/plain", []string{"Primary Peers"}},
		{"ready: one of two nodes is enough", "/upstream/health/ready", "", mixed, 200, "text/plain", []string{"ready\n"}},
		{"ready by format", "/upstream/health/?format=ready", "", mixed, 200, "text/plain", []string{"ready\n"}},
		{"not ready: pool all down (fails open)", "/upstream/health/ready", "", StatusHandler{Pool: "status-down"}, 503, "text/plain",
			[]string{"not ready: pool status-down: 0/1 nodes ready, below min_ready 1 (failing open)"}},
		{"unknown pool is not ready", "/upstream/health/ready", "", StatusHandler{Pool: "nope"}, 503, "text/plain", []string{"no healthready pool named nope"}},
		{"unfiltered: every pool, not ready when one is down", "/upstream/health/ready", "", StatusHandler{}, 503, "text/plain", []string{"status-down"}},
		{"bad format", "/upstream/health/?format=xml", "", mixed, -1, "", []string{`format "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serveStatus(t, tt.handler, tt.target, tt.accept)
			assert.Equal(t, tt.wantCode, w.Code, w.Body.String())
			if tt.wantType != "" {
				assert.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), tt.wantType), w.Header().Get("Content-Type"))
			}
			for _, s := range tt.want {
				assert.Contains(t, w.Body.String(), s)
			}
		})
	}

	// the JSON document decodes into the documented shape
	w := serveStatus(t, mixed, "/?format=json", "")
	var doc struct {
		Ready bool       `json:"ready"`
		Pools []PoolView `json:"pools"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
	require.Len(t, doc.Pools, 1)
	assert.True(t, doc.Ready)
	p := doc.Pools[0]
	assert.Equal(t, 1, p.Routable)
	assert.Equal(t, 2, p.Total)
	assert.Equal(t, up.addr(), p.Nodes[0].Upstream)
	assert.Equal(t, nodeReady.String(), p.Nodes[0].State)
	assert.Equal(t, 200, p.Nodes[1].LastStatus)
	assert.Equal(t, "offline", p.Nodes[1].LastServerStatus)
	assert.Positive(t, p.Nodes[0].Probes)
}

// TestMetricsCollector: the collector exports the live state and tolerates
// being registered by several pools of one config.
func TestMetricsCollector(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	b.mode.Store(mode503)
	// One probe per node: no later good probe readmits a after its
	// ejection while the test reads the metrics.
	cfg := fastPool("metrics", a.addr(), b.addr())
	cfg.Interval = caddy.Duration(time.Hour)
	cfg.Hold = durp(0) // no hold: with no routable node the pool fails open
	h := provision(t, cfg)
	eventually(t, wait, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeNotReady }, "a up, b down")
	// With no routable node the pool probes every 100ms and one good
	// probe readmits a node: a answers 503 from now on, so that no probe
	// readmits it after its ejection while the test reads the metrics.
	a.mode.Store(mode503)
	require.NoError(t, h.ResetCache(resetCacheReq(a.addr())))

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(collector{}))
	err := reg.Register(collector{})
	var are prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &are)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["pool"] != "metrics" && labels["node"] != a.addr() {
				continue
			}
			key := mf.GetName() + "{" + labels["node"] + "," + labels["to"] + labels["state"] + "}"
			switch {
			case m.Gauge != nil:
				got[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				got[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	assert.Equal(t, 0.0, got["caddy_minio_lb_node_ready{"+a.addr()+",}"], "a is ejected")
	assert.Equal(t, 0.0, got["caddy_minio_lb_node_ready{"+b.addr()+",}"])
	assert.Equal(t, 1.0, got["caddy_minio_lb_fail_open{,}"], "no routable node: fail-open")
	assert.Equal(t, 1.0, got["caddy_minio_lb_passive_ejections_total{"+a.addr()+",}"])
	assert.Equal(t, 1.0, got["caddy_minio_lb_state_transitions_total{"+a.addr()+",ejected}"])
	assert.Positive(t, got["caddy_minio_lb_probe_duration_seconds{"+a.addr()+",}"])
	assert.Equal(t, 1.0, got["caddy_minio_lb_node_state{"+a.addr()+",ejected}"])
	assert.Equal(t, 0.0, got["caddy_minio_lb_node_state{"+a.addr()+",ready}"])
	assert.Equal(t, 1.0, got["caddy_minio_lb_node_state{"+b.addr()+",not_ready}"])
	assert.Equal(t, 0.0, got["caddy_minio_lb_node_state{"+b.addr()+",unknown}"])
}
