package sessionaffinity

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backend is a loopback HTTP server that answers with its address, or
// resets every connection, or refuses connections (its listener closed).
type backend struct {
	ln    net.Listener
	addr  string
	reset atomic.Bool
	hits  atomic.Int32
	srv   *http.Server
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{ln: ln, addr: ln.Addr().String()}
	b.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if b.reset.Load() {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST instead of FIN
				}
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, b.addr)
	})}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// refuse closes the listener: connections to the address are refused.
func (b *backend) refuse() { _ = b.srv.Close() }

// caddyMu serialises the tests that run Caddy's global instance.
var caddyMu sync.Mutex

// runCaddy loads a config with one reverse_proxy over the backends, using
// session_affinity, and returns the proxy's base URL.
func runCaddy(t *testing.T, backends []*backend, passive bool) string {
	t.Helper()
	listen := freeport.Addr(t)

	var ups []map[string]string
	for _, b := range backends {
		ups = append(ups, map[string]string{"dial": b.addr})
	}
	handler := map[string]any{
		"handler":   "reverse_proxy",
		"upstreams": ups,
		"load_balancing": map[string]any{
			"selection_policy": map[string]any{
				"policy": "session_affinity", "salt": "integration",
				"sources": []Source{{Type: "query", Names: []string{"sessionid"}}},
			},
			"retries": 3,
		},
	}
	if passive {
		handler["health_checks"] = map[string]any{"passive": map[string]any{"fail_duration": "30s", "max_fails": 1}}
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s3": map[string]any{
			"listen":          []string{listen},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": []any{handler}}},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	caddyMu.Lock()
	require.NoError(t, caddy.Load(raw, true))
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})
	return "http://" + listen
}

// TestRetriesThroughRealReverseProxy runs Caddy's reverse_proxy with this
// policy against loopback backends whose first choices for the key fail,
// and checks the retry lands on the key's next node, each failed node being
// tried exactly once.
func TestRetriesThroughRealReverseProxy(t *testing.T) {
	tests := []struct {
		name    string
		failing int    // how many of the key's first nodes fail
		how     string // "refuse" or "reset"
		passive bool
	}{
		{"first node refuses connections", 1, "refuse", false},
		{"first node resets", 1, "reset", false},
		{"first two nodes reset", 2, "reset", false},
		{"first node resets, passive health on", 1, "reset", true},
		{"first two refuse, passive health on", 2, "refuse", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backends := []*backend{startBackend(t), startBackend(t), startBackend(t), startBackend(t)}
			byAddr := map[string]*backend{}
			var dials []string
			for _, b := range backends {
				byAddr[b.addr] = b
				dials = append(dials, b.addr)
			}
			// the key's rendezvous order, as the proxy will compute it
			p := provisioned(t, &SessionAffinitySelection{Salt: "integration", Sources: []Source{{Type: "query", Names: []string{"sessionid"}}}})
			const target = "/bucket/object.bin?sessionid=4f9c2a7e"
			order := rendezvousOrder(t, p, newPool(dials...), get(target))
			require.Len(t, order, 4)
			for _, a := range order[:tc.failing] {
				if tc.how == "refuse" {
					byAddr[a].refuse()
				} else {
					byAddr[a].reset.Store(true)
				}
			}

			base := runCaddy(t, backends, tc.passive)
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 2; i++ { // a second request of the session too
				resp, err := client.Get(base + target)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, body)
				assert.Equal(t, order[tc.failing], string(body), "request %d goes to the key's next node", i)
			}

			for rank, a := range order {
				hits := byAddr[a].hits.Load()
				switch {
				case rank < tc.failing && tc.how == "reset" && tc.passive:
					assert.EqualValues(t, 1, hits, "node %d (failed) tried once, then ejected", rank)
				case rank < tc.failing && tc.how == "reset":
					assert.EqualValues(t, 2, hits, "node %d (failed) tried once per request, never twice", rank)
				case rank == tc.failing:
					assert.EqualValues(t, 2, hits, "node %d served both requests", rank)
				default:
					assert.Zero(t, hits, fmt.Sprintf("node %d not tried", rank))
				}
			}
		})
	}
}
