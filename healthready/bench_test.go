package healthready

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
)

// BenchmarkGetUpstreams: the hot path of the source (a snapshot load).
func BenchmarkGetUpstreams(b *testing.B) {
	for _, n := range []int{4, 16} {
		b.Run("nodes="+strconv.Itoa(n), func(b *testing.B) {
			ups := make([]string, n)
			for i := range ups {
				ups[i] = newFakeNode(b, "n").addr()
			}
			cfg := fastPool("bench-get-"+strconv.Itoa(n), ups...)
			cfg.Interval = caddy.Duration(time.Hour)
			h := provision(b, cfg)
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if ups, _ := h.GetUpstreams(r); len(ups) != n {
					b.Fatalf("got %d upstreams", len(ups))
				}
			}
		})
	}
}

// BenchmarkProxyThroughput: requests/s through one in-process Caddy with
// two sites against the same fast backends: reverse_proxy + dynamic
// healthready + lb_policy random, and reverse_proxy with static upstreams
// + Caddy's built-in active health checks + random. The ratio shows what
// the dynamic source costs per request (mostly Caddy provisioning every
// returned upstream, under a global mutex, on every request).
func BenchmarkProxyThroughput(b *testing.B) {
	for _, n := range []int{4, 16} {
		b.Run("nodes="+strconv.Itoa(n), func(b *testing.B) {
			fast := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
			dials := make([]string, n)
			static := make([]any, n)
			for i := range dials {
				f := newFakeNode(b, "n")
				f.srv.Config.Handler = fast
				dials[i] = f.addr()
				static[i] = map[string]any{"dial": dials[i]}
			}
			hrPort, stPort := freeport.Port(b), freeport.Port(b)
			random := map[string]any{"selection_policy": map[string]any{"policy": "random"}}
			hr := map[string]any{
				"handler": "reverse_proxy",
				"dynamic_upstreams": map[string]any{
					"source": "healthready", "name": "bench-proxy-" + strconv.Itoa(n), "upstreams": dials,
				},
				"load_balancing": random,
			}
			st := map[string]any{
				"handler":        "reverse_proxy",
				"upstreams":      static,
				"load_balancing": random,
				"health_checks": map[string]any{"active": map[string]any{
					"uri": "/minio/health/ready", "interval": int64(3 * time.Second), "timeout": int64(time.Second),
				}},
			}
			startCaddy(b, map[string]any{
				"admin":   map[string]any{"disabled": true},
				"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
				"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
					"hr":     proxyServer(hrPort, hr),
					"static": proxyServer(stPort, st),
				}}},
			})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			hrURL := fmt.Sprintf("http://127.0.0.1:%d/obj", hrPort)
			stURL := fmt.Sprintf("http://127.0.0.1:%d/obj", stPort)
			// warm both paths (connections, first probes)
			run(b, client, hrURL, 200)
			run(b, client, stURL, 200)

			b.ResetTimer()
			// alternate halves so drift on a busy machine hits both
			var hrTime, stTime time.Duration
			half := max(b.N/2, 1)
			for range 2 {
				hrTime += run(b, client, hrURL, half)
				stTime += run(b, client, stURL, half)
			}
			b.StopTimer()
			hrRPS := float64(2*half) / hrTime.Seconds()
			stRPS := float64(2*half) / stTime.Seconds()
			b.ReportMetric(hrRPS, "healthready_req/s")
			b.ReportMetric(stRPS, "builtin_req/s")
			b.ReportMetric(hrRPS/stRPS, "ratio")
			b.ReportMetric(float64(hrTime-stTime)/float64(2*half), "extra_ns/req")
		})
	}
}

// run sends count GET requests with 4 workers and returns the wall time.
func run(b *testing.B, c *http.Client, url string, count int) time.Duration {
	var left atomic.Int64
	left.Store(int64(count))
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests to %s failed", f, count, url)
	}
	return d
}
