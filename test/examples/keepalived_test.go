package examples

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/require"
)

// TestKeepalivedSyntax runs `keepalived -t` (config test) on both nodes'
// files, with the interface replaced by one of this machine (keepalived
// refuses unknown interfaces and loopback) and the check script by a copy
// keepalived may run.
func TestKeepalivedSyntax(t *testing.T) {
	bin := tool(t, "keepalived", "keepalived")
	ifaces, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)
	iface := ""
	for _, e := range ifaces {
		if e.Name() != "lo" {
			iface = e.Name()
			break
		}
	}
	require.NotEmpty(t, iface, "no network interface but lo: keepalived cannot test a VRRP config here")
	dir := t.TempDir()
	script := filepath.Join(dir, "check_caddy.sh")
	require.NoError(t, os.WriteFile(script, readFile(t, filepath.Join(keepalivedDir(t), "check_caddy.sh")), 0o755))
	for _, n := range []string{"a", "b"} {
		conf := string(readFile(t, filepath.Join(keepalivedDir(t), "keepalived-node-"+n+".conf")))
		conf = regexp.MustCompile(`\bem1\b`).ReplaceAllString(conf, iface)
		conf = strings.ReplaceAll(conf, "/etc/keepalived/check_caddy.sh", script)
		path := filepath.Join(dir, "node-"+n+".conf")
		require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
		out, err := exec.Command(bin, "-t", "-f", path).CombinedOutput()
		require.NoError(t, err, "keepalived -t node %s:\n%s", n, out)
		require.Empty(t, strings.TrimSpace(string(out)), "keepalived -t node %s warns", n)
	}
}

// TestCheckScript runs check_caddy.sh against a stand-in for the status
// page: ready (200) passes, not ready (503), nothing listening and a hung
// Caddy fail, the last within the script's timeout.
func TestCheckScript(t *testing.T) {
	tool(t, "curl", "curl")
	script := filepath.Join(keepalivedDir(t), "check_caddy.sh")
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ready/upstream/health/ready":
			_, _ = w.Write([]byte("ready\n"))
		case "/down/upstream/health/ready":
			http.Error(w, "not ready: pool s3: 0/4 nodes ready", http.StatusServiceUnavailable)
		case "/hang/upstream/health/ready":
			select {
			case <-hang:
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()
	defer close(hang)          // runs before srv.Close, which waits for handlers
	closed := freeport.Addr(t) // nothing listens there

	tests := []struct {
		name, url string
		ok        bool
	}{
		{"ready", srv.URL + "/ready/upstream/health/ready", true},
		{"not ready", srv.URL + "/down/upstream/health/ready", false},
		{"caddy down", "http://" + closed + "/upstream/health/ready", false},
		{"caddy hung", srv.URL + "/hang/upstream/health/ready", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", script)
			cmd.Env = append(os.Environ(), "READY_URL="+tc.url, "TIMEOUT=1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if tc.ok {
				require.NoError(t, err, "%s", out)
			} else {
				require.Error(t, err, "%s", out)
			}
			require.Less(t, time.Since(start), 3*time.Second, "the check must finish within keepalived's timeout")
		})
	}
}
