package loadbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
)

// Kind names a target of the comparison.
type Kind string

// The targets, in report order.
const (
	KindOurs    Kind = "ours"
	KindCaddy   Kind = "caddy-stock"
	KindNginx   Kind = "nginx"
	KindHAProxy Kind = "haproxy"
	KindDirect  Kind = "direct"
)

// Label is the row label of a target in the tables.
func (k Kind) Label() string {
	switch k {
	case KindOurs:
		return "(a) ours: healthready + session_affinity"
	case KindCaddy:
		return "(b) Caddy: query sessionid + health_uri"
	case KindNginx:
		return "(c) nginx: hash consistent + Lua key"
	case KindHAProxy:
		return "(d) HAProxy: url_param consistent"
	case KindDirect:
		return "(e) direct to one backend"
	}
	return string(k)
}

// Proxy is a running proxy process.
type Proxy struct {
	Kind  Kind
	Sites []Site
	Dir   string

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the first MiB: enough to see why it died
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Pid of the proxy's main process.
func (p *Proxy) Pid() int { return p.cmd.Process.Pid }

// Output is what the process printed so far (first MiB).
func (p *Proxy) Output() string { return p.out.String() }

// FreeAddr returns a loopback address with a port that was free a moment
// ago, outside the ephemeral range (internal/freeport), so the load's
// own outgoing connections cannot take it before the proxy binds it.
func FreeAddr() (string, error) {
	p, err := freeport.Ports(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p[0])), nil
}

// StartProxy writes the config of kind for sites into a fresh directory
// under parent, starts the process in the foreground and waits until every
// site accepts connections.
func StartProxy(ctx context.Context, kind Kind, caddyBin, parent string, sites []Site) (*Proxy, error) {
	return startProxyWith(ctx, kind, caddyBin, parent, sites, func(dir string) (string, error) {
		switch kind {
		case KindOurs:
			return OursCaddyfile(sites), nil
		case KindCaddy:
			return StockCaddyfile(sites), nil
		case KindNginx:
			return NginxConf(dir, sites), nil
		case KindHAProxy:
			return HAProxyConf(sites), nil
		}
		return "", fmt.Errorf("no process for target %q", kind)
	})
}

// startProxyWith starts the process of kind with the config conf writes
// for its directory (a Caddyfile, nginx.conf or haproxy.cfg by the kind's
// program).
func startProxyWith(ctx context.Context, kind Kind, caddyBin, parent string, sites []Site, conf func(dir string) (string, error)) (*Proxy, error) {
	dir, err := os.MkdirTemp(parent, string(kind)+"-")
	if err != nil {
		return nil, err
	}
	text, err := conf(dir)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch program(kind) {
	case KindOurs, KindCaddy:
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
		// Caddy's data/config dirs (autosave, certificates) stay in dir.
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	case KindNginx:
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cmd = exec.Command(NginxBin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	case KindHAProxy:
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cmd = exec.Command(HAProxyBin, "-db", "-f", path)
	default:
		return nil, fmt.Errorf("no process for target %q", kind)
	}
	p := &Proxy{Kind: kind, Sites: sites, Dir: dir, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Own process group, so Stop reaches nginx's workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range sites {
		for {
			c, err := net.DialTimeout("tcp", s.Listen, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				return nil, fmt.Errorf("%s exited while starting (%v):\n%s", kind, p.err, tail(p.Output(), 2000))
			case <-ctx.Done():
				p.Stop()
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				p.Stop()
				return nil, fmt.Errorf("%s did not listen on %s within 15s:\n%s", kind, s.Listen, tail(p.Output(), 2000))
			}
		}
	}
	return p, nil
}

// WaitServing waits until GET url answers 2xx, bounded by timeout.
func WaitServing(ctx context.Context, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("GET %s did not answer 2xx within %s (last: %s)", url, timeout, last)
}

// Stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (p *Proxy) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Alive reports whether the process still runs.
func (p *Proxy) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// CaddyHasOurModules reports whether the Caddy binary lists our two modules;
// the error says what is missing.
func CaddyHasOurModules(caddyBin string) error {
	if caddyBin == "" {
		return errors.New("CADDY_BIN is not set (run ./xcaddy.sh build)")
	}
	out, err := exec.Command(caddyBin, "list-modules").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s list-modules: %v: %s", caddyBin, err, tail(string(out), 500))
	}
	for _, m := range []string{"http.reverse_proxy.selection_policies.session_affinity", "http.reverse_proxy.upstreams.healthready"} {
		if !strings.Contains(string(out), m) {
			return fmt.Errorf("%s lacks module %s (rebuild with ./xcaddy.sh build)", caddyBin, m)
		}
	}
	return nil
}
