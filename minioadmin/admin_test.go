package minioadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/minio-lb/caddy-minio-lb/healthready"
)

// fakeMinIO answers readiness, the maintenance check (200, or 412 with
// MinIO's headers when lose is set) and counts other requests.
type fakeMinIO struct {
	*httptest.Server
	lose atomic.Bool
	reqs atomic.Int64
}

func newFakeMinIO(t *testing.T) *fakeMinIO {
	f := &fakeMinIO{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/minio/health/ready":
		case "/minio/health/cluster":
			w.Header().Set("X-Minio-Write-Quorum", "3")
			if r.URL.Query().Get("maintenance") == "true" && f.lose.Load() {
				w.WriteHeader(http.StatusPreconditionFailed)
			}
		default:
			f.reqs.Add(1)
			_, _ = io.WriteString(w, "node "+f.addr())
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMinIO) addr() string { return f.Listener.Addr().String() }

// load runs (or reloads) an in-process Caddy with one S3 site proxying to
// nodes through a healthready pool "s3", the status page, and the admin API.
func load(t *testing.T, admin, port int, nodes ...string) {
	t.Helper()
	cfg := map[string]any{
		"admin":   map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", admin), "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s3": map[string]any{
			"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{
				map[string]any{
					"match":  []any{map[string]any{"path": []string{"/upstream/health/*"}}},
					"handle": []any{map[string]any{"handler": "healthready_status"}},
				},
				map[string]any{"handle": []any{map[string]any{
					"handler": "reverse_proxy",
					"dynamic_upstreams": map[string]any{
						"source": "healthready", "name": "s3", "upstreams": nodes,
						"interval": int64(50 * time.Millisecond), "rise": 1, "fall": 1,
					},
					"load_balancing": map[string]any{"selection_policy": map[string]any{"policy": "first"}},
				}}},
			},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, caddy.Load(raw, true))
}

func adminCall(t *testing.T, method, url string, body any) (int, DrainAnswer, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	resp, err := freshClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans DrainAnswer
	_ = json.Unmarshal(raw, &ans)
	return resp.StatusCode, ans, string(raw)
}

// freshClient opens a new connection for every request: across a config
// reload the old server closes its idle keep-alive connections, and a
// request sent on one just then ends in EOF (seen in CI right after
// load), which is the reload's business, not the drain's.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func firstNodeServing(t *testing.T, base string) string {
	t.Helper()
	resp, err := freshClient.Get(base + "/bucket/key")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimPrefix(string(b), "node ")
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "not within 10s: %s", what)
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDrainThroughTheAdminAPI walks an operator's drain: refused while
// MinIO says quorum would be lost (and forced), drained (no new request,
// safe to stop), kept across a reload, undrained.
func TestDrainThroughTheAdminAPI(t *testing.T) {
	a, b := newFakeMinIO(t), newFakeMinIO(t)
	admin, port := freeport.Port(t), freeport.Port(t)
	load(t, admin, port, a.addr(), b.addr())
	t.Cleanup(func() { _ = caddy.Stop() })
	api := fmt.Sprintf("http://127.0.0.1:%d%s", admin, DrainPath)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, "node a serves", func() bool { return firstNodeServing(t, base) == a.addr() })

	// MinIO says no: 409 with its reason, nothing drained.
	a.lose.Store(true)
	code, ans, raw := adminCall(t, http.MethodPost, api, DrainRequest{Node: a.addr(), By: "test"})
	assert.Equal(t, http.StatusConflict, code, raw)
	assert.Contains(t, ans.Error, "taking this node down would lose quorum (write quorum 3)")
	require.Len(t, ans.Maintenance, 1)
	assert.Equal(t, http.StatusPreconditionFailed, ans.Maintenance[0].Status)
	assert.Equal(t, a.addr(), firstNodeServing(t, base), "a refused drain changes nothing")

	// The node itself may go, but a peer cannot lose one more node in its
	// own view (it has not reconnected to a restarted node yet): refused,
	// with the peer's answer.
	a.lose.Store(false)
	b.lose.Store(true)
	code, ans, raw = adminCall(t, http.MethodPost, api, DrainRequest{Node: a.addr(), By: "test"})
	assert.Equal(t, http.StatusConflict, code, raw)
	assert.Contains(t, ans.Error, "MinIO on "+b.addr()+": in this node's own view the cluster cannot lose one more node")
	require.Len(t, ans.Maintenance, 2)
	assert.True(t, ans.Maintenance[0].OK)
	assert.True(t, ans.Maintenance[1].Peer)
	assert.Equal(t, b.addr(), ans.Maintenance[1].Node)
	assert.Equal(t, a.addr(), firstNodeServing(t, base), "a refused drain changes nothing")
	b.lose.Store(false)

	// Quorum holds: drained; new requests go to b; safe to stop at once.
	code, ans, raw = adminCall(t, http.MethodPost, api, DrainRequest{Node: a.addr(), By: "test"})
	require.Equal(t, http.StatusOK, code, raw)
	require.Len(t, ans.Nodes, 1)
	assert.True(t, ans.Nodes[0].Drained)
	assert.Equal(t, "test", ans.Nodes[0].By)
	assert.True(t, ans.SafeToStop)
	asked := a.reqs.Load()
	for range 5 {
		assert.Equal(t, b.addr(), firstNodeServing(t, base))
	}
	assert.Equal(t, asked, a.reqs.Load(), "a drained node gets no new request")

	// A reload keeps the drain.
	load(t, admin, port, a.addr(), b.addr())
	code, ans, _ = adminCall(t, http.MethodGet, api+"?node="+a.addr(), nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, ans.Nodes, 1)
	assert.True(t, ans.Nodes[0].Drained, "drains survive caddy reload")
	assert.Equal(t, b.addr(), firstNodeServing(t, base))

	// Undrain: a serves again.
	code, ans, raw = adminCall(t, http.MethodDelete, api, DrainRequest{Node: a.addr()})
	require.Equal(t, http.StatusOK, code, raw)
	assert.False(t, ans.Nodes[0].Drained)
	eventually(t, "a serves again", func() bool { return firstNodeServing(t, base) == a.addr() })

	// Forced past MinIO's refusal.
	a.lose.Store(true)
	code, ans, raw = adminCall(t, http.MethodPost, api, DrainRequest{Node: a.addr(), Force: true})
	require.Equal(t, http.StatusOK, code, raw)
	assert.True(t, ans.Nodes[0].Drained)
	assert.Contains(t, ans.Nodes[0].By, "admin API client 127.0.0.1:", "who asked, by default")
	code, _, _ = adminCall(t, http.MethodDelete, api+"?node="+a.addr(), nil)
	assert.Equal(t, http.StatusOK, code)
}

// TestDrainBadRequests: clear errors that name the field and the value.
func TestDrainBadRequests(t *testing.T) {
	a := newFakeMinIO(t)
	admin, port := freeport.Port(t), freeport.Port(t)
	load(t, admin, port, a.addr())
	t.Cleanup(func() { _ = caddy.Stop() })
	api := fmt.Sprintf("http://127.0.0.1:%d%s", admin, DrainPath)
	for _, tc := range []struct {
		name, method string
		body         any
		status       int
		want         string
	}{
		{"unknown node", http.MethodPost, DrainRequest{Node: "10.9.9.9:9000"}, http.StatusNotFound, `no such node: "10.9.9.9:9000" is not an upstream`},
		{"no node", http.MethodPost, DrainRequest{}, http.StatusBadRequest, "node: required"},
		{"unknown field", http.MethodPost, map[string]any{"node": a.addr(), "nodes": 1}, http.StatusBadRequest, `unknown field "nodes"`},
		{"unknown pool", http.MethodDelete, DrainRequest{Node: a.addr(), Pool: "nope"}, http.StatusNotFound, `pool "nope"`},
		{"method", http.MethodPut, nil, http.StatusMethodNotAllowed, "method PUT: use GET, POST or DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := adminCall(t, tc.method, api, tc.body)
			assert.Equal(t, tc.status, code, raw)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(raw), &e), raw)
			assert.Contains(t, e.Error, tc.want)
		})
	}
}

// TestCommandOnSeveralProxies: `caddy minio-lb` calls every admin address,
// prints each answer, and fails when one proxy cannot be reached; with
// --wait it reports safe to stop.
func TestCommandOnSeveralProxies(t *testing.T) {
	a, b := newFakeMinIO(t), newFakeMinIO(t)
	admin, port := freeport.Port(t), freeport.Port(t)
	load(t, admin, port, a.addr(), b.addr())
	t.Cleanup(func() { _ = caddy.Stop() })
	adminAddr := fmt.Sprintf("127.0.0.1:%d", admin)
	deadAddr := fmt.Sprintf("127.0.0.1:%d", freeport.Port(t))
	opts := options{addresses: []string{adminAddr}, timeout: 5 * time.Second, by: "cmd-test", wait: 5 * time.Second}

	var out bytes.Buffer
	ok, err := run(context.Background(), &out, "drain", a.addr(), opts)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
	assert.Contains(t, out.String(), "safe to stop on every proxy: yes")
	assert.Contains(t, out.String(), "by cmd-test")

	// With --wait a drain MinIO refuses for now is asked again until it
	// is accepted (a peer reconnecting after a restart).
	out.Reset()
	_, err = run(context.Background(), &out, "undrain", a.addr(), opts)
	require.NoError(t, err)
	out.Reset()
	b.lose.Store(true)
	accept := time.AfterFunc(500*time.Millisecond, func() { b.lose.Store(false) })
	defer accept.Stop()
	ok, err = run(context.Background(), &out, "drain", a.addr(), opts)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
	assert.Contains(t, out.String(), "MinIO refuses the drain for now")
	assert.Contains(t, out.String(), "safe to stop on every proxy: yes")
	out.Reset()
	b.lose.Store(true)
	opts.wait = 300 * time.Millisecond
	ok, err = run(context.Background(), &out, "drain", b.addr(), opts)
	require.NoError(t, err)
	assert.False(t, ok, "still refused when the wait ran out:\n%s", out.String())
	b.lose.Store(false)
	opts.wait = 5 * time.Second

	out.Reset()
	opts.addresses = []string{adminAddr, deadAddr}
	opts.wait = 0
	ok, err = run(context.Background(), &out, "status", a.addr(), opts)
	require.NoError(t, err)
	assert.False(t, ok, "one proxy could not be asked")
	assert.Contains(t, out.String(), deadAddr)
	assert.Contains(t, out.String(), "status failed")
	assert.Contains(t, out.String(), "safe to stop on every proxy: no")

	out.Reset()
	opts.addresses = []string{adminAddr}
	ok, err = run(context.Background(), &out, "undrain", a.addr(), opts)
	require.NoError(t, err)
	assert.True(t, ok, out.String())
}
