package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
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

// startCaddy runs caddyfile (a path, used where it is) in front of the
// cluster, with free ports, loopback only, and a fixed salt. extraEnv is
// added last and wins (e.g. a MINIO_S3 that names a fault proxy instead of
// a node).
func startCaddy(tb testing.TB, caddyfile string, c *miniocluster.Cluster, extraEnv ...string) *caddyProc {
	tb.Helper()
	ports := freeport.PortList(tb, 2)
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
		Probe    struct {
			IntervalMS float64 `json:"interval_ms"`
			TimeoutMS  float64 `json:"timeout_ms"`
			Rise       int     `json:"rise"`
			Fall       int     `json:"fall"`
		} `json:"probe"`
		Nodes []struct {
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

// probeConfig is a pool's active probe settings as the running config has
// them (the status page's "probe" object): what a scenario's expected
// times derive from, so they follow examples/Caddyfile.
type probeConfig struct {
	Interval, Timeout time.Duration
	Rise, Fall        int
}

func (pc probeConfig) String() string {
	return fmt.Sprintf("interval %s timeout %s rise %d fall %d", pc.Interval, pc.Timeout, pc.Rise, pc.Fall)
}

// Detection bounds the time from a node's failure to its ejection by
// probes alone: the failure lands anywhere in a probe interval, then
// `fall` probes must fail, the last one by timing out; every interval is
// jittered by up to +10%.
func (pc probeConfig) Detection() time.Duration {
	return time.Duration(pc.Fall+1)*pc.Interval*11/10 + pc.Timeout
}

// Readmission bounds the time from a node answering ready again to its
// readmission: `rise` passing probes after the one in progress.
func (pc probeConfig) Readmission() time.Duration {
	return time.Duration(pc.Rise+1)*pc.Interval*11/10 + pc.Timeout
}

// probe returns pool's probe settings from the status page; it fails the
// test if the pool is missing.
func (s status) probe(tb testing.TB, pool string) probeConfig {
	tb.Helper()
	for _, p := range s.Pools {
		if p.Name == pool {
			ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
			return probeConfig{Interval: ms(p.Probe.IntervalMS), Timeout: ms(p.Probe.TimeoutMS), Rise: p.Probe.Rise, Fall: p.Probe.Fall}
		}
	}
	tb.Fatalf("status page has no pool %q (pools %s)", pool, poolNames(s))
	return probeConfig{}
}

// probeConfig reads pool's probe settings from the running Caddy.
func (p *caddyProc) probeConfig(tb testing.TB, pool string) probeConfig {
	tb.Helper()
	s, err := p.Status()
	if err != nil {
		tb.Fatalf("status page: %v", err)
	}
	return s.probe(tb, pool)
}

// stateChange is one "node state changed" line of Caddy's own log (stderr):
// healthready logs it when a node's state changes, before the pool's
// routing follows (in the same call, under the pool's lock).
type stateChange struct {
	At                   time.Time
	Pool, Node, From, To string
	Reason               string
}

// stateChanges reads healthready's state changes from Caddy's log.
func (p *caddyProc) stateChanges(tb testing.TB) []stateChange {
	tb.Helper()
	b, err := os.ReadFile(p.StderrPath())
	if err != nil {
		tb.Fatalf("caddy log: %v", err)
	}
	var out []stateChange
	for _, line := range bytes.Split(b, []byte("\n")) {
		var l struct {
			TS                   float64 `json:"ts"`
			Msg                  string  `json:"msg"`
			Pool, Node, From, To string
			Reason               string
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "node state changed" {
			continue
		}
		sec, frac := math.Modf(l.TS)
		out = append(out, stateChange{time.Unix(int64(sec), int64(frac*1e9)), l.Pool, l.Node, l.From, l.To, l.Reason})
	}
	return out
}

// leftReady is when Caddy took node addr of pool out of routing (its state
// left "ready") for the first time after t; zero if it did not.
func (p *caddyProc) leftReady(tb testing.TB, pool, addr string, after time.Time) time.Time {
	tb.Helper()
	for _, c := range p.stateChanges(tb) {
		if c.Pool == pool && c.Node == addr && c.From == "ready" && c.At.After(after) {
			return c.At
		}
	}
	return time.Time{}
}

// busyDuring reports whether node addr of pool was in state busy at any
// moment of [from, to], from Caddy's log of its state changes.
func (p *caddyProc) busyDuring(tb testing.TB, pool, addr string, from, to time.Time) bool {
	tb.Helper()
	busy := false // its state at from: the last change before it says
	for _, c := range p.stateChanges(tb) {
		if c.Pool != pool || c.Node != addr || c.At.After(to) {
			continue
		}
		if c.At.Before(from) {
			busy = c.To == "busy"
		} else if c.To == "busy" {
			return true
		}
	}
	return busy
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
