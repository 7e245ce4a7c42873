//go:build bench

// The peers' own config checks (nginx -t, haproxy -c) need nginx and
// HAProxy, which only `./xcaddy.sh bench` installs; it runs these tests
// with -tags bench before the load harness. `./xcaddy.sh test` does not
// install the peers and does not build this file.

package loadbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		// The load harness needs these peers; `./xcaddy.sh bench` installs them.
		t.Fatalf("%s is missing (run ./xcaddy.sh bench): %v", path, err)
	}
}

func TestNginxConfPassesNginxT(t *testing.T) {
	requireTool(t, NginxBin)
	dir := t.TempDir()
	conf := NginxConf(dir, testSites())
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	out, err := exec.Command(NginxBin, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	require.NoError(t, err, "nginx -t:\n%s\n%s", out, conf)
	assert.Contains(t, string(out), "test is successful")
	for _, want := range []string{
		"hash $arg_sessionid consistent;",
		"keepalive 32;",
		"proxy_next_upstream error timeout http_500 http_502 http_503 http_504;",
		"proxy_buffering off;", "proxy_request_buffering off;", "client_max_body_size 0;",
		"proxy_http_version 1.1;", "server 127.0.0.1:19202;", "listen 127.0.0.1:18081;",
	} {
		assert.Contains(t, conf, want)
	}
}

func TestNginxConfRejectedWhenBroken(t *testing.T) {
	// The check above must be able to fail: a config with a bad directive
	// is refused by the same command.
	requireTool(t, NginxBin)
	dir := t.TempDir()
	conf := strings.Replace(NginxConf(dir, testSites()), "keepalive 32;", "keepalive thirty-two;", 1)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	_, err := exec.Command(NginxBin, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	assert.Error(t, err)
}

func TestHAProxyConfPassesHAProxyC(t *testing.T) {
	requireTool(t, HAProxyBin)
	dir := t.TempDir()
	conf := HAProxyConf(testSites())
	path := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	out, err := exec.Command(HAProxyBin, "-c", "-f", path).CombinedOutput()
	require.NoError(t, err, "haproxy -c:\n%s\n%s", out, conf)
	assert.NotContains(t, strings.ToLower(string(out)), "warning", "haproxy warns about the config:\n%s", out)
	for _, want := range []string{
		"balance url_param sessionid", "hash-type consistent",
		"option httpchk GET /minio/health/ready", "http-check expect status 200",
		"option redispatch", "server n3 127.0.0.1:19103", "bind 127.0.0.1:18081",
	} {
		assert.Contains(t, conf, want)
	}

	bad := strings.Replace(conf, "hash-type consistent", "hash-type sometimes", 1)
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
	_, err = exec.Command(HAProxyBin, "-c", "-f", path).CombinedOutput()
	assert.Error(t, err, "haproxy -c must refuse a broken config")
}

func TestFaultConfsPassTheirChecks(t *testing.T) {
	requireTool(t, NginxBin)
	requireTool(t, HAProxyBin)
	dir := t.TempDir()
	conf := NginxFaultConf(dir, testSites(), 5*time.Second)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	out, err := exec.Command(NginxBin, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	require.NoError(t, err, "nginx -t:\n%s\n%s", out, conf)

	conf = HAProxyFaultConf(testSites(), 5*time.Second)
	path = filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	out, err = exec.Command(HAProxyBin, "-c", "-f", path).CombinedOutput()
	require.NoError(t, err, "haproxy -c:\n%s\n%s", out, conf)
	assert.NotContains(t, strings.ToLower(string(out)), "warning", "haproxy warns about the config:\n%s", out)
}
