package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// repoRoot is the repository root (examples/ lives there).
func repoRoot(tb testing.TB) string { return caddyproc.RepoRootT(tb) }

// caddyProc is the custom Caddy (internal/caddyproc: $CADDY_BIN, default
// bin/caddy from `./xcaddy.sh build`, no fallback build: the point is to
// run the binary users run) running a Caddyfile with the environment that
// examples/Caddyfile documents.
type caddyProc struct {
	*caddyproc.Caddy
	bin, dir   string
	env        []string // what `caddy reload` needs to adapt the same file
	S3Addr     string   // 127.0.0.1:PORT of the S3 site
	ConsoleURL string   // http://127.0.0.1:PORT of the console site
	AccessLog  string   // the sites' access logs (`output stdout` of the Caddyfile)
}

// freePorts picks n free loopback ports.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	p, err := miniocluster.FreePorts(n)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// startCaddy runs caddyfile (a path, used where it is) in front of the
// cluster, with free ports, loopback only, and a fixed salt. extraEnv is
// added last and wins (e.g. a MINIO_S3 that names a fault proxy instead of
// a node).
func startCaddy(tb testing.TB, caddyfile string, c *miniocluster.Cluster, extraEnv ...string) *caddyProc {
	tb.Helper()
	ports := freePorts(tb, 2)
	env := caddyproc.ExampleEnv(c, caddyproc.Sites{S3Port: ports[0], ConsolePort: ports[1], Salt: "e2e-salt"})
	env = append(env, extraEnv...)
	cp := caddyproc.StartT(tb, caddyproc.Options{ConfigPath: caddyfile, Env: env})
	p := &caddyProc{
		Caddy:      cp,
		bin:        caddyproc.DefaultBinary(),
		dir:        tb.TempDir(),
		S3Addr:     "127.0.0.1:" + strconv.Itoa(ports[0]),
		ConsoleURL: "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		AccessLog:  cp.StdoutPath(),
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(name, "XDG_") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env, env...)
	p.env = append(p.env, "CADDY_ADMIN="+cp.AdminAddr(),
		"XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"), "XDG_DATA_HOME="+filepath.Join(p.dir, "data"))
	tb.Cleanup(func() {
		if tb.Failed() {
			// Keep both logs for a post-mortem; the process dir goes away.
			for _, f := range []string{cp.StdoutPath(), cp.StderrPath()} {
				keep := filepath.Join(os.TempDir(), fmt.Sprintf("e2e-%d-%d-%s", os.Getpid(), ports[0], filepath.Base(f)))
				if b, err := os.ReadFile(f); err == nil && os.WriteFile(keep, b, 0o644) == nil {
					tb.Logf("kept %s", keep)
				}
			}
		}
	})
	return p
}

// Alive reports whether the Caddy process still runs.
func (p *caddyProc) Alive() bool { return p.Pid() != 0 }

// status is the JSON document of the healthready_status page.
type status struct {
	Ready bool `json:"ready"`
	Pools []struct {
		Name     string `json:"name"`
		Ready    bool   `json:"ready"`
		Routable int    `json:"routable"`
		Total    int    `json:"total"`
		FailOpen bool   `json:"fail_open"`
		Nodes    []struct {
			Upstream         string    `json:"upstream"`
			Probe            string    `json:"probe"`
			State            string    `json:"state"`
			Routable         bool      `json:"routable"`
			Since            time.Time `json:"since"`
			Reason           string    `json:"reason"`
			Probes           uint64    `json:"probes"`
			LastServerStatus string    `json:"last_server_status"`
			OfflineAnswers   uint64    `json:"offline_answers"`
			PassiveEjections uint64    `json:"passive_ejections"`
		} `json:"nodes"`
	} `json:"pools"`
}

// nodeState returns the state of upstream addr in pool name ("" if absent).
func (s status) nodeState(pool, addr string) string {
	for _, p := range s.Pools {
		if p.Name != pool {
			continue
		}
		for _, n := range p.Nodes {
			if n.Upstream == addr {
				return n.State
			}
		}
	}
	return ""
}

// allReady reports whether every node of every pool is in state ready.
func (s status) allReady() bool {
	if len(s.Pools) == 0 {
		return false
	}
	for _, p := range s.Pools {
		for _, n := range p.Nodes {
			if n.State != "ready" {
				return false
			}
		}
	}
	return true
}

var statusClient = &http.Client{Timeout: 3 * time.Second}

// Status reads the status page of the S3 site as JSON.
func (p *caddyProc) Status() (status, error) {
	var s status
	resp, err := statusClient.Get("http://" + p.S3Addr + "/upstream/health/?format=json")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status page: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("status page: %v: %s", err, b)
	}
	return s, nil
}

// waitStatus polls the status page every 50ms until cond holds or timeout;
// it returns the time cond first held.
func (p *caddyProc) waitStatus(tb testing.TB, what string, timeout time.Duration, cond func(status) bool) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last status
	var lastErr error
	for time.Now().Before(deadline) {
		s, err := p.Status()
		if err == nil && cond(s) {
			return time.Now()
		}
		last, lastErr = s, err
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	tb.Fatalf("caddy: %s: not reached within %s (last error %v), last status:\n%s", what, timeout, lastErr, b)
	return time.Time{}
}

// Reload runs `caddy reload` with another Caddyfile and the same
// environment, as an operator does.
func (p *caddyProc) Reload(tb testing.TB, caddyfile string) {
	tb.Helper()
	cmd := exec.Command(p.bin, "reload", "--config", caddyfile, "--adapter", "caddyfile", "--address", p.AdminAddr(), "--force")
	cmd.Env, cmd.Dir = p.env, p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("caddy reload: %v\n%s", err, out)
	}
}

// Metrics returns the admin endpoint's /metrics text.
func (p *caddyProc) Metrics(tb testing.TB) string {
	tb.Helper()
	resp, err := statusClient.Get("http://" + p.AdminAddr() + "/metrics")
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// LogSize is the current size of the access log: an offset to read from.
func (p *caddyProc) LogSize() int64 {
	st, err := os.Stat(p.AccessLog)
	if err != nil {
		return 0
	}
	return st.Size()
}

// dialOK reports whether addr accepts TCP connections.
func dialOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tailLines returns the last n lines of a file.
func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// ctxT is a context bounded by d and the test's deadline.
func ctxT(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// readText returns a file's contents.
func readText(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// readRawLog returns the access log lines from offset from.
func readRawLog(tb testing.TB, path string, from int64) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if from > int64(len(b)) {
		from = int64(len(b))
	}
	return strings.Split(string(b[from:]), "\n")
}
