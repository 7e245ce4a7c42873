package transparency

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
)

// Module IDs of caddy-minio-lb that the S3 site of examples/Caddyfile uses.
// The proxy under test uses each one its Caddy binary has; a missing one is
// replaced by the nearest stock setting and reported (see proxyFeatures).
const (
	modSessionAffinity = "http.reverse_proxy.selection_policies.session_affinity"
	modHealthReady     = "http.reverse_proxy.upstreams.healthready"
	modS3HeaderCase    = "http.handlers.s3_header_case"
)

// caddyBin is the custom Caddy of ./xcaddy.sh build ($CADDY_BIN, default
// bin/caddy).
func caddyBin(tb testing.TB) string { return caddyproc.BinaryT(tb) }

// proxyFeatures says which caddy-minio-lb modules the proxy config uses.
type proxyFeatures struct {
	SessionAffinity, HealthReady, S3HeaderCase bool
}

func (f proxyFeatures) String() string {
	var on, off []string
	for _, m := range []struct {
		name string
		ok   bool
	}{{"session_affinity", f.SessionAffinity}, {"healthready", f.HealthReady}, {"s3_header_case", f.S3HeaderCase}} {
		if m.ok {
			on = append(on, m.name)
		} else {
			off = append(off, m.name)
		}
	}
	return fmt.Sprintf("modules in use: %v; missing from this Caddy binary (stock stand-in used): %v", on, off)
}

// detectFeatures lists the modules of the Caddy binary.
func detectFeatures(tb testing.TB, bin string) proxyFeatures {
	tb.Helper()
	out, err := exec.Command(bin, "list-modules").Output()
	if err != nil {
		tb.Fatalf("%s list-modules: %v", bin, err)
	}
	has := func(id string) bool {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == id {
				return true
			}
		}
		return false
	}
	return proxyFeatures{
		SessionAffinity: has(modSessionAffinity),
		HealthReady:     has(modHealthReady),
		S3HeaderCase:    has(modS3HeaderCase),
	}
}

// oursTemplate is the S3 site of examples/Caddyfile with test ports and a
// 1 s probe interval (so the proxy is ready quickly). Keep it in step with
// examples/Caddyfile.
var oursTemplate = template.Must(template.New("ours").Parse(`{
	admin off
	default_bind 127.0.0.1
	metrics
	servers {
		timeouts {
			read_body 0
		}
	}
}

http://:{{.Port}} {
	handle {
{{- if .F.S3HeaderCase}}
		s3_header_case
{{- end}}
		reverse_proxy {
{{- if .F.HealthReady}}
			dynamic healthready {{.Upstreams}} {
				path /minio/health/ready
				interval 1s
				timeout 1s
				rise 1
				fall 3
				concurrency 10
				passive_fails 1
				passive_window 30s
			}
{{- else}}
			to {{.Upstreams}}
{{- end}}
{{- if .F.SessionAffinity}}
			lb_policy session_affinity {
				query sessionid
				query uploadid
				fingerprint
				salt transparency-test
			}
{{- else}}
			lb_policy client_ip_hash
{{- end}}
			lb_retries 2
			lb_try_duration 5s
			lb_retry_match {
				method GET HEAD OPTIONS
			}
			flush_interval -1
			request_buffers 0
			header_up X-Real-IP {remote_host}
			transport http {
				keepalive 60s
				keepalive_idle_conns_per_host 32
				expect_continue_timeout 1s
			}
		}
	}

	log {
		output file {{.Dir}}/access.log
		format json
	}
}
`))

// stockTemplate is what an operator writes with stock Caddy: reverse_proxy
// and the upstreams, nothing else. It is the negative control of the test.
var stockTemplate = template.Must(template.New("stock").Parse(`{
	admin off
	default_bind 127.0.0.1
}

http://:{{.Port}} {
	reverse_proxy {{.Upstreams}}
}
`))

// proxy is one running Caddy process.
type proxy struct {
	Name     string
	Addr     string // 127.0.0.1:PORT
	Pid      int
	Features proxyFeatures
	Config   string
}

// startProxy runs the Caddy binary with the template filled in for the given
// MinIO upstreams, and waits until MinIO's readiness answers through it.
func startProxy(tb testing.TB, name string, tmpl *template.Template, upstreams []string, f proxyFeatures) *proxy {
	tb.Helper()
	bin := caddyBin(tb)
	dir := tb.TempDir()
	port := freeport.Port(tb)
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]any{
		"Port": port, "Upstreams": strings.Join(upstreams, " "), "Dir": dir, "F": f,
	}); err != nil {
		tb.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start %s caddy: %v", name, err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
		if tb.Failed() {
			out, _ := os.ReadFile(logPath)
			tb.Logf("%s caddy log (tail):\n%s", name, tail(string(out), 3000))
		}
	})
	p := &proxy{Name: name, Addr: "127.0.0.1:" + strconv.Itoa(port), Pid: cmd.Process.Pid, Features: f, Config: cfg.String()}
	if err := waitReady("http://"+p.Addr+"/minio/health/ready", 30*time.Second); err != nil {
		out, _ := os.ReadFile(logPath)
		tb.Fatalf("%s caddy on %s: %v\nconfig:\n%s\nlog:\n%s", name, p.Addr, err, cfg.String(), tail(string(out), 3000))
	}
	return p
}

// peakRSS returns VmHWM (peak resident set size) of a process, in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
