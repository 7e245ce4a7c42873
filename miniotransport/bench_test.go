package miniotransport

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/require"
)

// BenchmarkProxyTransport is the cost of the minio transport per proxied
// request, next to Caddy's own http transport in the same in-process Caddy:
// reverse_proxy + healthready (4 nodes, all one fast local backend) +
// session_affinity, four fast local backends, a 1 KiB GET or a 64 KiB PUT
// over a keep-alive connection. ns/op and allocs/op are for the whole
// request (client, Caddy and backend in one process); the difference
// between the rows is the transport's. A PUT through the minio transport
// is read in full first (replay_body, default 256 KiB) unless the row
// turns it off.
//
//	go test -run '^$' -bench ProxyTransport -benchmem ./miniotransport/
func BenchmarkProxyTransport(b *testing.B) {
	var nodes []string
	for range 4 {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/minio/health/ready" {
				return
			}
			if r.Method == http.MethodPut {
				_, _ = io.Copy(io.Discard, r.Body)
				return
			}
			_, _ = io.WriteString(w, strings.Repeat("x", 1024))
		}))
		defer backend.Close()
		nodes = append(nodes, backend.Listener.Addr().String())
	}
	putBody := strings.Repeat("x", 64<<10)
	for _, tc := range []struct {
		name      string
		put       bool
		transport map[string]any
	}{
		{"GET/http", false, map[string]any{"protocol": "http"}},
		{"GET/minio", false, map[string]any{"protocol": "minio"}},
		{"GET/minio_try_timeout", false, map[string]any{"protocol": "minio", "try_timeout": int64(5 * time.Second)}},
		{"GET/minio_hedge_adaptive", false, map[string]any{"protocol": "minio", "try_timeout": int64(5 * time.Second), "hedge": "adaptive"}},
		{"PUT64KiB/http", true, map[string]any{"protocol": "http"}},
		{"PUT64KiB/minio", true, map[string]any{"protocol": "minio"}},
		{"PUT64KiB/minio_replay_body_off", true, map[string]any{"protocol": "minio", "replay_body": -1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			port := freeport.Port(b)
			proxy := map[string]any{
				"handler": "reverse_proxy",
				"dynamic_upstreams": map[string]any{
					"source": "healthready", "name": "bench-" + strings.ReplaceAll(tc.name, "/", "-"), "upstreams": nodes,
					"interval": int64(time.Hour),
				},
				"load_balancing": map[string]any{
					"selection_policy": map[string]any{"policy": "session_affinity"},
					"retries":          2,
				},
				"transport": tc.transport,
			}
			cfg := map[string]any{
				"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
				"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
				"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s3": map[string]any{
					"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
					"automatic_https": map[string]any{"disable": true},
					"routes":          []any{map[string]any{"handle": []any{proxy}}},
				}}}},
			}
			raw, err := json.Marshal(cfg)
			require.NoError(b, err)
			require.NoError(b, caddy.Load(raw, true))
			defer func() { _ = caddy.Stop() }()
			url := fmt.Sprintf("http://127.0.0.1:%d/bucket/object", port)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			get := func() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if tc.put {
					req, _ = http.NewRequest(http.MethodPut, url, strings.NewReader(putBody))
				}
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for range 200 { // warm up: probes done, connections pooled
				get()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}
