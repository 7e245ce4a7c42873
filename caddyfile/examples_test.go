package caddyfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/require"
)

// TestExampleJSONMatchesCaddyfile: examples/caddy.json is the same config
// as examples/Caddyfile adapted with the demo environment.
func TestExampleJSONMatchesCaddyfile(t *testing.T) {
	setDemoEnv(t)
	root := repoRoot(t)
	adapted := adapt(t, readFile(t, filepath.Join(root, "examples", "Caddyfile")), "Caddyfile")
	if *update {
		var buf bytes.Buffer
		require.NoError(t, json.Indent(&buf, adapted, "", "  "))
		buf.WriteByte('\n')
		require.NoError(t, os.WriteFile(filepath.Join(root, "examples", "caddy.json"), buf.Bytes(), 0o644))
	}
	want := normalize(t, readFile(t, filepath.Join(root, "examples", "caddy.json")))
	require.Equal(t, want, normalize(t, adapted),
		"examples/caddy.json differs from examples/Caddyfile adapted with the demo environment")
}

// TestExampleJSONLoadsThroughAdminAPI starts Caddy in process with only an
// admin endpoint, POSTs examples/caddy.json to /load (listeners and the
// admin address moved to free loopback ports) and reads it back from
// /config/.
func TestExampleJSONLoadsThroughAdminAPI(t *testing.T) {
	t.Setenv("AFFINITY_SALT", "admin-api-test")
	adminAddr := freeport.Addr(t)
	boot := fmt.Sprintf(`{"admin":{"listen":%q,"config":{"persist":false}}}`, adminAddr)
	require.NoError(t, caddy.Load([]byte(boot), true))
	t.Cleanup(func() { _ = caddy.Stop() })

	// The MinIO nodes too: probes of the demo addresses must not find a
	// cluster someone else runs on this machine.
	doc := string(readFile(t, filepath.Join(repoRoot(t), "examples", "caddy.json")))
	for _, port := range []string{"9101", "9102", "9103", "9104", "9201", "9202", "9203", "9204"} {
		old := `"127.0.0.1:` + port + `"`
		require.Contains(t, doc, old)
		doc = strings.ReplaceAll(doc, old, strconv.Quote(freeport.Addr(t)))
	}
	var cfg map[string]any
	require.NoError(t, json.Unmarshal([]byte(doc), &cfg))
	cfg["admin"].(map[string]any)["listen"] = adminAddr
	// Not the user's autosave.json, and logs out of the test output.
	cfg["admin"].(map[string]any)["config"] = map[string]any{"persist": false}
	discardLogs(cfg)
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	require.Len(t, servers, 2, "the S3 site and the console site")
	listens := map[string]string{}
	for name, srv := range servers {
		addr := freeport.Addr(t)
		srv.(map[string]any)["listen"] = []any{addr}
		listens[name] = addr
	}
	body, err := json.Marshal(cfg)
	require.NoError(t, err)

	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/load", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST /load: %s", msg)

	resp, err = client.Get("http://" + adminAddr + "/config/")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /config/: %s", got)
	require.Equal(t, normalize(t, body), normalize(t, got), "the running config is not the one POSTed")

	// Both sites listen; the status page answers loopback. Its pools turn
	// not ready once the first probes have failed (no MinIO behind the demo
	// addresses in this test); until a probe has finished a node counts as
	// routable, so this waits for the answer rather than asking once.
	s3 := listens["s3"]
	// Caddy's request counters live as long as the process (-count=N runs
	// this test again in it): the requests below are counted from here.
	const served = `caddy_http_requests_total{handler="subroute",host="_other",server="s3"}`
	before := metricValue(t, client, adminAddr, served)
	var ready []byte
	asked := 0 // requests the s3 site answered
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + s3 + "/upstream/health/ready")
		if err != nil {
			return false
		}
		asked++
		ready, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable &&
			strings.Contains(string(ready), "pool s3") && strings.Contains(string(ready), "pool console")
	}, 10*time.Second, 20*time.Millisecond, "/upstream/health/ready never said both pools are not ready; last answer: %s", ready)
	require.Contains(t, string(ready), "not ready")
	require.Contains(t, string(ready), "pool s3")
	require.Contains(t, string(ready), "pool console")

	// Caddy's /metrics on the admin endpoint: per-site request metrics
	// (the requests above) and the probe state of both pools.
	require.Equal(t, before+float64(asked), metricValue(t, client, adminAddr, served),
		"%s counts the %d status requests", served, asked)
	metrics := getMetrics(t, client, adminAddr)
	for _, m := range []string{
		`caddy_minio_lb_node_ready{`,
		`pool="console"`,
		`pool="s3"`,
	} {
		require.True(t, strings.Contains(metrics, m), "/metrics lacks %s", m)
	}
}

// getMetrics reads the admin endpoint's /metrics.
func getMetrics(t *testing.T, client *http.Client, adminAddr string) string {
	t.Helper()
	resp, err := client.Get("http://" + adminAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}

// metricValue is the value of one series (name and labels exactly as
// /metrics prints them) on the admin endpoint; 0 while it does not exist.
func metricValue(t *testing.T, client *http.Client, adminAddr, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(getMetrics(t, client, adminAddr), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, "%s", line)
			return f
		}
	}
	return 0
}

// discardLogs points every log of a config at the discard writer.
func discardLogs(cfg map[string]any) {
	logging, _ := cfg["logging"].(map[string]any)
	if logging == nil {
		logging = map[string]any{}
		cfg["logging"] = logging
	}
	logs, _ := logging["logs"].(map[string]any)
	if logs == nil {
		logs = map[string]any{}
		logging["logs"] = logs
	}
	if logs["default"] == nil {
		logs["default"] = map[string]any{}
	}
	for _, l := range logs {
		l.(map[string]any)["writer"] = map[string]any{"output": "discard"}
	}
}

// quiet returns doc with persist off (no autosave.json of the user's
// Caddy touched) and every log discarded.
func quiet(t *testing.T, doc []byte) []byte {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(doc, &cfg))
	admin, _ := cfg["admin"].(map[string]any)
	if admin == nil {
		admin = map[string]any{}
		cfg["admin"] = admin
	}
	admin["config"] = map[string]any{"persist": false}
	discardLogs(cfg)
	out, err := json.Marshal(cfg)
	require.NoError(t, err)
	return out
}
