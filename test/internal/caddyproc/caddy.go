package caddyproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// Caddy is a running caddy process.
type Caddy struct {
	opt    Options
	dir    string
	ownDir bool
	admin  string
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error

	stopOnce sync.Once
	stopErr  error
}

var adminClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// Start runs caddy and waits until its admin API answers and its HTTP
// listeners accept connections. On error nothing is left running.
func Start(ctx context.Context, opt Options) (*Caddy, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkBinary(opt.Binary); err != nil {
		return nil, err
	}
	c := &Caddy{opt: opt, admin: opt.AdminAddr}
	if opt.Dir == "" {
		if c.dir, err = os.MkdirTemp("", "caddyproc-"); err != nil {
			return nil, fmt.Errorf("caddyproc: temp dir: %w", err)
		}
		c.ownDir = true
	} else {
		if c.dir, err = filepath.Abs(opt.Dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("caddyproc: Dir: %w", err)
		}
	}
	if c.admin == "" {
		p, err := freeport.Ports(1)
		if err != nil {
			c.cleanup()
			return nil, err
		}
		c.admin = fmt.Sprintf("127.0.0.1:%d", p[0])
	}
	if err := c.launch(); err != nil {
		c.cleanup()
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, opt.ReadyTimeout)
	defer cancel()
	if err := c.waitReady(wctx); err != nil {
		err = fmt.Errorf("%w\n--- caddy stderr (tail)\n%s", err, tail(c.StderrPath(), 30))
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// StartT starts caddy for a test: failure fails the test, Stop runs in
// t.Cleanup, and the log tails are printed when the test failed.
func StartT(t testing.TB, opt Options) *Caddy {
	t.Helper()
	c, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- caddy stderr tail:\n%s\n--- caddy stdout tail:\n%s", tail(c.StderrPath(), 40), tail(c.StdoutPath(), 20))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("caddyproc: stop: %v", err)
		}
	})
	return c
}

func (c *Caddy) launch() error {
	cfgPath := c.opt.ConfigPath
	switch {
	case c.opt.Caddyfile != "":
		cfgPath = filepath.Join(c.dir, "Caddyfile")
		if err := os.WriteFile(cfgPath, []byte(c.opt.Caddyfile), 0o644); err != nil {
			return err
		}
	case len(c.opt.Config) > 0:
		cfgPath = filepath.Join(c.dir, "caddy.json")
		if err := os.WriteFile(cfgPath, c.opt.Config, 0o644); err != nil {
			return err
		}
	}
	args := []string{"run", "--config", cfgPath}
	if c.opt.Adapter != "" && c.opt.Adapter != "json" {
		args = append(args, "--adapter", c.opt.Adapter)
	}
	stdout, err := os.OpenFile(c.StdoutPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	stderr, err := os.OpenFile(c.StderrPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		stdout.Close()
		return err
	}
	cmd := exec.Command(c.opt.Binary, args...)
	cmd.Dir = c.dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if c.opt.Log != nil {
		cmd.Stderr = io.MultiWriter(stderr, c.opt.Log)
	}
	cmd.Env = append(os.Environ(),
		"CADDY_ADMIN="+c.admin,
		// Caddy autosaves the running config under XDG_CONFIG_HOME and
		// keeps certificates/locks under XDG_DATA_HOME: keep both here.
		"XDG_CONFIG_HOME="+filepath.Join(c.dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(c.dir, "data"),
	)
	cmd.Env = append(cmd.Env, c.opt.Env...)
	if err := miniocluster.StartWithDeathSignal(cmd); err != nil {
		stdout.Close()
		stderr.Close()
		return fmt.Errorf("caddyproc: start %s: %w", c.opt.Binary, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() {
		c.exit = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(c.done)
	}()
	return nil
}

// AdminAddr is the admin API address ("127.0.0.1:PORT").
func (c *Caddy) AdminAddr() string { return c.admin }

// Dir is the process directory.
func (c *Caddy) Dir() string { return c.dir }

// StdoutPath is the file with the process's stdout (JSON access logs with
// `output stdout`).
func (c *Caddy) StdoutPath() string { return filepath.Join(c.dir, "caddy.stdout.log") }

// StderrPath is the file with Caddy's own log.
func (c *Caddy) StderrPath() string { return filepath.Join(c.dir, "caddy.stderr.log") }

// Pid is the process id, 0 once it has exited.
func (c *Caddy) Pid() int {
	if c.exited() {
		return 0
	}
	return c.cmd.Process.Pid
}

func (c *Caddy) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitReady polls the admin API, then dials every listener of the running
// config.
func (c *Caddy) waitReady(ctx context.Context) error {
	var last error
	for {
		if c.exited() {
			return fmt.Errorf("caddyproc: caddy exited during start: %v", c.exit)
		}
		addrs, err := c.ListenAddrs(ctx)
		if err == nil {
			err = dialAll(ctx, addrs)
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("caddyproc: caddy (admin %s) not ready: %v: %w", c.admin, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ListenAddrs returns the dialable addresses of every HTTP server of the
// running config (":9000" and "tcp/:9000" become "127.0.0.1:9000").
func (c *Caddy) ListenAddrs(ctx context.Context) ([]string, error) {
	b, err := c.adminDo(ctx, http.MethodGet, "/config/apps/http/servers", "", nil)
	if err != nil {
		return nil, err
	}
	var servers map[string]struct {
		Listen []string `json:"listen"`
	}
	if len(bytes.TrimSpace(b)) > 0 && string(bytes.TrimSpace(b)) != "null" {
		if err := json.Unmarshal(b, &servers); err != nil {
			return nil, fmt.Errorf("caddyproc: servers config: %w", err)
		}
	}
	var out []string
	for _, s := range servers {
		for _, l := range s.Listen {
			out = append(out, dialable(l))
		}
	}
	return out, nil
}

func dialable(listen string) string {
	if i := strings.Index(listen, "/"); i >= 0 {
		listen = listen[i+1:]
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func dialAll(ctx context.Context, addrs []string) error {
	for _, a := range addrs {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return err
		}
		conn.Close()
	}
	return nil
}

// WaitClosed waits until nothing accepts TCP connections on addr any more.
// After a reload Caddy stops the old config's servers in goroutines of
// their own (caddyhttp.App.Stop): POST /load can answer before a listener
// the new config dropped is closed, and on a busy machine it stays open
// for a moment. It returns ctx's error if addr still accepts when ctx ends.
func WaitClosed(ctx context.Context, addr string) error {
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if err == nil {
			conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("caddyproc: %s still accepts connections: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// adminDo sends one request to the admin API and returns the body of a 2xx.
func (c *Caddy) adminDo(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.admin+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("caddyproc: admin %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// Admin sends a request to the admin API (e.g. GET /config/, GET /metrics).
func (c *Caddy) Admin(ctx context.Context, method, path string) ([]byte, error) {
	return c.adminDo(ctx, method, path, "", nil)
}

// Reload loads a new config through the admin API (POST /load) and waits
// until its listeners accept connections. adapter "caddyfile" sends
// text/caddyfile, "" or "json" application/json.
func (c *Caddy) Reload(ctx context.Context, config []byte, adapter string) error {
	ct := "application/json"
	if adapter != "" && adapter != "json" {
		ct = "text/" + adapter
	}
	if _, err := c.adminDo(ctx, http.MethodPost, "/load", ct, config); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.opt.ReadyTimeout)
	defer cancel()
	return c.waitReady(wctx)
}

// Stop sends SIGTERM, then SIGKILL after 10s, waits for the process and
// removes a temporary directory. Safe to call more than once.
func (c *Caddy) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		if !c.exited() {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				_ = c.cmd.Process.Signal(syscall.SIGKILL)
				select {
				case <-c.done:
				case <-time.After(10 * time.Second):
					errs = append(errs, fmt.Errorf("caddyproc: pid %d not reaped after SIGKILL", c.cmd.Process.Pid))
				}
			}
		}
		c.cleanup()
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

func (c *Caddy) cleanup() {
	if c.ownDir && !c.opt.KeepDir {
		_ = os.RemoveAll(c.dir)
	}
}
