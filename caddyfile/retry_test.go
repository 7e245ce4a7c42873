package caddyfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/require"
)

// fakeNode stands in for a MinIO node: ready, and either serving or
// answering 503 SlowDownWrite (busy, as MinIO does while it cannot reach
// write quorum) to every S3 request after reading its body.
type fakeNode struct {
	busy bool
	mu   sync.Mutex
	seen []string // "METHOD bodylen"
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/minio/health/") {
		return
	}
	body, _ := io.ReadAll(r.Body)
	n.mu.Lock()
	n.seen = append(n.seen, fmt.Sprintf("%s %d", r.Method, len(body)))
	n.mu.Unlock()
	if n.busy {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDownWrite</Code><Message>Resource requested is unwritable, please reduce your request rate</Message></Error>`)
	}
}

func (n *fakeNode) requests(method string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, s := range n.seen {
		if strings.HasPrefix(s, method+" ") {
			out = append(out, s)
		}
	}
	return out
}

// runExample loads examples/Caddyfile in process with the S3 site in front
// of the given nodes and returns the S3 site's base URL.
func runExample(t *testing.T, nodes ...*httptest.Server) string {
	t.Helper()
	setDemoEnv(t)
	t.Setenv("AFFINITY_SALT", "retry-test")
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Listener.Addr().String())
	}
	s3 := freeport.Addr(t)
	_, port, _ := strings.Cut(s3, ":")
	t.Setenv("S3_PORT", port)
	_, cport, _ := strings.Cut(freeport.Addr(t), ":")
	t.Setenv("CONSOLE_PORT", cport)
	t.Setenv("MINIO_S3", strings.Join(addrs, " "))
	t.Setenv("MINIO_CONSOLE", freeport.Addr(t)+" "+freeport.Addr(t))
	t.Setenv("CADDY_ADMIN", freeport.Addr(t))
	cfg := quiet(t, adapt(t, readFile(t, filepath.Join(repoRoot(t), "examples", "Caddyfile")), "Caddyfile"))
	require.NoError(t, caddy.Load(cfg, true))
	t.Cleanup(func() { _ = caddy.Stop() })

	// Wait (bounded) until the s3 pool has probed every node ready. A
	// fresh connection per poll, and the last answer in the failure.
	base := "http://" + s3
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/upstream/health/?format=json")
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		var doc struct {
			Pools []struct {
				Name  string `json:"name"`
				Nodes []struct {
					State string `json:"state"`
				} `json:"nodes"`
			} `json:"pools"`
		}
		if json.Unmarshal(body, &doc) != nil {
			return false
		}
		for _, p := range doc.Pools {
			if p.Name != "s3" || len(p.Nodes) != len(nodes) {
				continue
			}
			for _, n := range p.Nodes {
				if n.State != "ready" {
					return false
				}
			}
			return true
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the s3 pool never had every node ready (nodes %v); last status: %s", addrs, last)
	return base
}

// TestExampleRetriesGETOn503: a GET that a busy node answers 503 goes to
// the next node (lb_retry_match with {rp.status_code}); the client sees 200.
func TestExampleRetriesGETOn503(t *testing.T) {
	busy, good := &fakeNode{busy: true}, &fakeNode{}
	busySrv, goodSrv := httptest.NewServer(busy), httptest.NewServer(good)
	defer busySrv.Close()
	defer goodSrv.Close()
	base := runExample(t, busySrv, goodSrv)

	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 16; i++ {
		resp, err := client.Get(fmt.Sprintf("%s/bucket/object?sessionid=s%d", base, i))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "session s%d: %s", i, body)
	}
	require.NotEmpty(t, busy.requests("GET"), "no session hashed to the busy node first; the retry was not exercised")
	require.Len(t, good.requests("GET"), 16)
}

// TestExamplePUTBodyReplay: a PUT whose body a node read and then refused
// (503 SlowDownWrite) goes to the next node with its whole body when the
// body is at most replay_body (256 KiB by default): the minio transport
// read it in full first. A larger body streams: the PUT is not resent
// (the client gets the 503 and retries itself). Either way no node ever
// receives a PUT with a short body.
func TestExamplePUTBodyReplay(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		resends bool
	}{
		{"64 KiB body: read in full, goes to the next node", 64 << 10, true},
		{"512 KiB body: streamed, not resent", 512 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, good := &fakeNode{busy: true}, &fakeNode{}
			busySrv, goodSrv := httptest.NewServer(busy), httptest.NewServer(good)
			defer busySrv.Close()
			defer goodSrv.Close()
			base := runExample(t, busySrv, goodSrv)

			payload := bytes.Repeat([]byte("x"), tt.size)
			client := &http.Client{Timeout: 10 * time.Second}
			var ok, unavailable int
			for i := 0; i < 16; i++ {
				req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/bucket/object?sessionid=p%d", base, i), bytes.NewReader(payload))
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok++
				case http.StatusServiceUnavailable:
					unavailable++
				default:
					t.Fatalf("PUT p%d: status %d", i, resp.StatusCode)
				}
			}
			refused := len(busy.requests("PUT"))
			require.Positive(t, refused, "no session hashed to the busy node first; the case was not exercised")
			if tt.resends {
				require.Zero(t, unavailable, "a refused PUT with a replayable body reached the client")
				require.Len(t, good.requests("PUT"), 16, "every PUT ends on the good node")
			} else {
				require.Equal(t, refused, unavailable, "each PUT the busy node refused reached the client")
				require.Len(t, good.requests("PUT"), ok, "a PUT answered 503 was resent to the good node")
			}
			for _, s := range append(good.requests("PUT"), busy.requests("PUT")...) {
				require.Equal(t, fmt.Sprintf("PUT %d", len(payload)), s)
			}
		})
	}
}
