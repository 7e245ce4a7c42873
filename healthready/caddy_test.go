package healthready

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
	_ "github.com/caddyserver/caddy/v2/modules/metrics"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startCaddy loads cfg in process and stops Caddy at the end of the test.
func startCaddy(t testing.TB, cfg map[string]any) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, caddy.Load(raw, true))
	t.Cleanup(func() { _ = caddy.Stop() })
}

// proxyServer is a Caddy server with the status page and a reverse_proxy.
func proxyServer(port int, proxy map[string]any) map[string]any {
	return map[string]any{
		"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
		"automatic_https": map[string]any{"disable": true},
		"routes": []any{
			map[string]any{
				"match":  []any{map[string]any{"path": []string{"/upstream/health/*"}}},
				"handle": []any{map[string]any{"handler": "healthready_status"}},
			},
			map[string]any{"handle": []any{proxy}},
		},
	}
}

// startProxy runs proxy behind the status page in an in-process Caddy on
// free ports; it returns the site's base URL and the admin port.
func startProxy(t testing.TB, proxy map[string]any) (base string, admin int) {
	t.Helper()
	port := freeport.Port(t)
	admin = freeport.Port(t)
	startCaddy(t, map[string]any{
		"admin": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", admin)},
		"apps": map[string]any{"http": map[string]any{
			"servers": map[string]any{"s3": proxyServer(port, proxy)},
		}},
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port), admin
}

// poolNode reads node i of the named pool from the status page's JSON.
func poolNode(t testing.TB, c *http.Client, base, pool string, i int) (NodeView, bool) {
	t.Helper()
	_, body := get(t, c, base+"/upstream/health/?format=json")
	var doc statusDoc
	require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
	for _, p := range doc.Pools {
		if p.Name == pool {
			return p.Nodes[i], true
		}
	}
	return NodeView{}, false
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestCaddyEndToEnd runs reverse_proxy + dynamic healthready + lb_retries
// in process against fake nodes: a node whose traffic fails is ejected
// after passive_fails and gets no more traffic, comes back after rise good
// probes, and the metrics show on the admin /metrics endpoint.
func TestCaddyEndToEnd(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	proxy := map[string]any{
		"handler": "reverse_proxy",
		"dynamic_upstreams": map[string]any{
			"source": "healthready", "name": "e2e",
			"upstreams": []string{a.addr(), b.addr()},
			"interval":  int64(40 * time.Millisecond), "timeout": int64(500 * time.Millisecond),
			// fall 1000: the probes alone never take a out during the
			// test, so each failed request meets a routable node and the
			// ejections are the passive health's, however late the
			// request comes after the failure.
			"rise": 2, "fall": 1000, "passive_fails": 1, "passive_window": int64(time.Minute),
		},
		"load_balancing": map[string]any{
			"selection_policy": map[string]any{"policy": "first"},
			"retries":          2,
			"retry_match": []any{
				map[string]any{"expression": "{http.reverse_proxy.status_code} in [502, 503, 504]"},
			},
		},
	}
	base, admin := startProxy(t, proxy)
	c := &http.Client{Timeout: 5 * time.Second}
	// state reads node i's state from the status page's JSON.
	state := func(i int) string {
		if n, ok := poolNode(t, c, base, "e2e", i); ok {
			return n.State
		}
		return "missing"
	}
	ready, ejected := nodeReady.String(), nodeEjected.String()
	eventually(t, wait, func() bool { return state(0) == ready && state(1) == ready }, "both ready")
	code, body := get(t, c, base+"/upstream/health/ready")
	assert.Equal(t, 200, code, body)

	code, body = get(t, c, base+"/obj")
	require.Equal(t, 200, code)
	assert.Equal(t, "node a", body, "policy first")

	// a answers 502 to real traffic (and its probes fail): the retry goes
	// to b, and a is ejected at once.
	a.bad.Store(true)
	a.mode.Store(mode503)
	code, body = get(t, c, base+"/obj")
	assert.Equal(t, 200, code)
	assert.Equal(t, "node b", body)
	assert.Equal(t, ejected, state(0))
	trafficA := a.traffic.Load()
	for range 10 {
		_, body = get(t, c, base+"/obj")
		assert.Equal(t, "node b", body)
	}
	assert.Equal(t, trafficA, a.traffic.Load(), "an ejected node gets no traffic")

	// fixed: back after rise good probes
	a.bad.Store(false)
	a.mode.Store(modeOK)
	eventually(t, wait, func() bool { return state(0) == ready }, "a readmitted")
	_, body = get(t, c, base+"/obj")
	assert.Equal(t, "node a", body)

	// connection refused on real traffic ejects too
	a.srv.Close()
	code, body = get(t, c, base+"/obj")
	assert.Equal(t, 200, code)
	assert.Equal(t, "node b", body)
	assert.Equal(t, ejected, state(0))

	// metrics on the admin endpoint
	_, metrics := get(t, c, fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	for _, want := range []string{
		fmt.Sprintf(`caddy_minio_lb_node_ready{node=%q,pool="e2e"} 0`, a.addr()),
		fmt.Sprintf(`caddy_minio_lb_node_ready{node=%q,pool="e2e"} 1`, b.addr()),
		fmt.Sprintf(`caddy_minio_lb_passive_ejections_total{node=%q,pool="e2e"} 2`, a.addr()),
		`caddy_minio_lb_fail_open{pool="e2e"} 0`,
		fmt.Sprintf(`caddy_minio_lb_probe_duration_seconds_count{node=%q}`, b.addr()),
		fmt.Sprintf(`caddy_minio_lb_state_transitions_total{node=%q,pool="e2e",to="ejected"} 2`, a.addr()),
	} {
		assert.Contains(t, metrics, want)
	}
	if t.Failed() {
		for _, l := range strings.Split(metrics, "\n") {
			if strings.Contains(l, "minio_lb") {
				t.Log(l)
			}
		}
	}
}

// TestConcurrentRequests sends requests from many goroutines at once
// through reverse_proxy + dynamic healthready (run with -race): Caddy
// provisions the returned upstreams on every request, so the upstream
// objects must not be shared between requests in flight.
func TestConcurrentRequests(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	proxy := map[string]any{
		"handler": "reverse_proxy",
		"dynamic_upstreams": map[string]any{
			"source": "healthready", "name": "concurrent",
			"upstreams": []string{a.addr(), b.addr()},
			"interval":  int64(40 * time.Millisecond),
		},
		"load_balancing": map[string]any{"selection_policy": map[string]any{"policy": "round_robin"}},
		"health_checks":  map[string]any{"passive": map[string]any{"fail_duration": int64(time.Second), "max_fails": 3}},
	}
	base, _ := startProxy(t, proxy)
	c := &http.Client{Timeout: 5 * time.Second}
	url := base + "/obj"
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if code, _ := get(t, c, url); code == 200 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(400), ok.Load())
	assert.Positive(t, a.traffic.Load())
	assert.Positive(t, b.traffic.Load())
}

// TestStatusShowsInFlight: a request held by a slow node shows as in
// flight on the status page, read from Caddy's own per-address counters,
// and is gone once it finished.
func TestStatusShowsInFlight(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/minio/health/") {
			return
		}
		<-release
		_, _ = io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(free) // runs before slow.Close, which waits for the held request
	addr := slow.Listener.Addr().String()
	proxy := map[string]any{
		"handler": "reverse_proxy",
		"dynamic_upstreams": map[string]any{
			"source": "healthready", "name": "inflight", "upstreams": []string{addr},
			"interval": int64(40 * time.Millisecond),
		},
	}
	base, _ := startProxy(t, proxy)
	c := &http.Client{Timeout: 5 * time.Second}
	inFlight := func() int {
		if n, ok := poolNode(t, c, base, "inflight", 0); ok {
			return n.InFlight
		}
		return -1
	}
	eventually(t, wait, func() bool { return inFlight() == 0 }, "pool listed, nothing in flight")

	done := make(chan string, 1)
	go func() {
		resp, err := c.Get(base + "/obj")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	eventually(t, wait, func() bool { return inFlight() == 1 }, "the held request in flight")
	_, text := get(t, c, base+"/upstream/health/")
	assert.Contains(t, text, "in flight 1")
	free()
	assert.Equal(t, "slow", <-done)
	eventually(t, wait, func() bool { return inFlight() == 0 }, "back to 0 after the response")
}

// TestRetryLeavesOutTheNodeItFailedOn: through Caddy's own transport, with
// lb_policy first (which picks the failed node again whenever it can), a
// retry after a refused connection goes to another routable node, as
// nginx's proxy_next_upstream does, whether or not passive ejection is on
// and before it ejects the node. With no other node, the retries stay on
// it. The refusing node reports ready: its probes go to a live node
// (probe_to), as a MinIO console that is not listening yet while the
// node's S3 API already answers ready.
func TestRetryLeavesOutTheNodeItFailedOn(t *testing.T) {
	tests := []struct {
		name         string
		passiveFails int
		withOther    bool
		wantStatus   int
	}{
		{"another node routable", 3, true, http.StatusOK},
		{"another node routable, passive ejection off", -1, true, http.StatusOK},
		{"no other node", 3, false, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe, b := newFakeNode(t, "probe"), newFakeNode(t, "b")
			refusing := freeport.Addr(t) // nothing listens there
			upstreams, probeTo := []string{refusing}, []string{probe.addr()}
			if tt.withOther {
				upstreams, probeTo = append(upstreams, b.addr()), append(probeTo, b.addr())
			}
			base, _ := startProxy(t, map[string]any{
				"handler": "reverse_proxy",
				"dynamic_upstreams": map[string]any{
					"source": "healthready", "name": "console",
					"upstreams": upstreams, "probe_to": probeTo,
					"interval": int64(40 * time.Millisecond), "timeout": int64(500 * time.Millisecond),
					"rise": 1, "fall": 1000, "passive_fails": tt.passiveFails, "passive_window": int64(time.Minute),
				},
				"load_balancing": map[string]any{
					"selection_policy": map[string]any{"policy": "first"},
					"retries":          2,
				},
			})
			c := &http.Client{Timeout: 5 * time.Second}
			eventually(t, wait, func() bool {
				for i := range upstreams {
					if n, ok := poolNode(t, c, base, "console", i); !ok || n.State != nodeReady.String() {
						return false
					}
				}
				return true
			}, "every node ready")

			code, body := get(t, c, base+"/obj")
			require.Equal(t, tt.wantStatus, code, body)
			if tt.wantStatus == http.StatusOK {
				assert.Equal(t, "node b", body, "the retry went to the node not failed on")
				n, _ := poolNode(t, c, base, "console", 0)
				assert.Equal(t, nodeReady.String(), n.State, "one failure of passive_fails 3 ejects nothing")
			}
		})
	}
}
