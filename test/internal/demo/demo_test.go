package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/demo"
)

// autoEnv runs the demo on free ports so it never collides with a demo
// (or another test) on the fixed ones.
var autoEnv = map[string]string{
	"DEMO_S3_PORTS": "auto", "DEMO_CONSOLE_PORTS": "auto",
	"DEMO_S3_PORT": "auto", "DEMO_CONSOLE_PORT": "auto", "DEMO_ADMIN": "auto",
}

// getenv is m over the process environment (so DEMO_CADDYFILE, CADDY_BIN
// and friends given to `go test` apply here too).
func getenv(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// TestDemoCheck is `./xcaddy.sh demo --check`: the real cluster, the real
// caddy (CADDY_BIN, default bin/caddy) with examples/Caddyfile, one S3
// put/get through Caddy, the status page, the console, the metrics.
func TestDemoCheck(t *testing.T) {
	cfg, err := demo.FromEnv(getenv(autoEnv))
	require.NoError(t, err)
	cfg.Check = true
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = demo.Run(ctx, cfg, &out)
	t.Log(out.String())
	require.NoError(t, err)
	for _, want := range []string{"S3 endpoint   http://127.0.0.1:", "/upstream/health/", "/metrics", "aws --endpoint-url http://127.0.0.1:", "mc alias set demo", "check passed"} {
		assert.Contains(t, out.String(), want)
	}
}

var (
	pidsRe = regexp.MustCompile(`caddy pid (\d+); minio pids ([\d ]+)`)
	dirRe  = regexp.MustCompile(`Data, logs    (\S+),`)
)

// TestDemoStopsCleanlyOnSIGTERM runs the demo binary as a user would, sends
// SIGTERM once it is up, and checks that it exits 0, that no process it
// started is left, and that its data directory is gone.
func TestDemoStopsCleanlyOnSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "demo")
			build := exec.Command("go", "build", "-o", bin, "./cmd/demo")
			build.Stderr = os.Stderr
			require.NoError(t, build.Run())

			cmd := exec.Command(bin)
			cmd.Env = os.Environ()
			for k, v := range autoEnv {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			defer cmd.Process.Kill()

			// The reader goroutine owns pids, dir and lines until ready or
			// eof is closed; the demo exiting early (eof) fails at once.
			var pids []int
			var dir string
			var lines []string
			ready, eof := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(eof)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					l := sc.Text()
					lines = append(lines, l)
					if m := pidsRe.FindStringSubmatch(l); m != nil {
						for _, f := range append([]string{m[1]}, strings.Fields(m[2])...) {
							p, _ := strconv.Atoi(f)
							pids = append(pids, p)
						}
					}
					if m := dirRe.FindStringSubmatch(l); m != nil {
						dir = m[1]
					}
					if strings.HasPrefix(l, "Press Ctrl-C") {
						close(ready)
						_, _ = io.Copy(io.Discard, stdout)
						return
					}
				}
			}()
			select {
			case <-ready:
			case <-eof:
				t.Fatalf("demo exited before it was up; output:\n%s", strings.Join(lines, "\n"))
			case <-time.After(2 * time.Minute):
				t.Fatalf("demo not up after 2 minutes")
			}
			require.Len(t, pids, 5, "caddy + 4 minio pids printed")
			for _, p := range pids {
				require.NoError(t, syscall.Kill(p, 0), "pid %d alive while the demo runs", p)
			}
			require.NoError(t, cmd.Process.Signal(sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				require.NoError(t, err, "demo exit status after %v", sig)
			case <-time.After(60 * time.Second):
				t.Fatalf("demo still running 60s after %v", sig)
			}
			for _, p := range pids {
				assert.Error(t, syscall.Kill(p, 0), "pid %d still alive after the demo stopped", p)
			}
			_, err = os.Stat(dir)
			assert.True(t, os.IsNotExist(err), "data dir %q still there: %v", dir, err)
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c demo.Config)
		wantErr string
	}{
		{"defaults", map[string]string{"DEMO_S3_PORTS": "", "DEMO_CONSOLE_PORTS": "", "DEMO_S3_PORT": "", "DEMO_CONSOLE_PORT": "", "DEMO_ADMIN": "", "DEMO_KEEP_DATA": "", "DEMO_SALT": ""}, func(t *testing.T, c demo.Config) {
			assert.Equal(t, []int{9101, 9102, 9103, 9104}, c.S3Ports)
			assert.Equal(t, []int{9201, 9202, 9203, 9204}, c.ConsolePorts)
			assert.Equal(t, 9000, c.S3Port)
			assert.Equal(t, 9001, c.ConsolePort)
			assert.Equal(t, "localhost:2019", c.AdminAddr)
			assert.Equal(t, "127.0.0.1", c.ListenHost)
			assert.Len(t, c.Salt, 32, "random salt")
			assert.False(t, c.KeepData)
		}, ""},
		{"auto", autoEnv, func(t *testing.T, c demo.Config) {
			assert.Nil(t, c.S3Ports)
			assert.Zero(t, c.S3Port)
			assert.Empty(t, c.AdminAddr)
		}, ""},
		{"ranges and lists", map[string]string{"DEMO_S3_PORTS": "9301-9306", "DEMO_CONSOLE_PORTS": "9401,9402 9403,9404,9405,9406", "DEMO_KEEP_DATA": "1", "DEMO_EXIT_AFTER": "30s", "DEMO_SALT": "s"}, func(t *testing.T, c demo.Config) {
			assert.Equal(t, []int{9301, 9302, 9303, 9304, 9305, 9306}, c.S3Ports)
			assert.Equal(t, []int{9401, 9402, 9403, 9404, 9405, 9406}, c.ConsolePorts)
			assert.True(t, c.KeepData)
			assert.Equal(t, 30*time.Second, c.ExitAfter)
			assert.Equal(t, "s", c.Salt)
		}, ""},
		{"bad port", map[string]string{"DEMO_S3_PORTS": "9101 x"}, nil, `DEMO_S3_PORTS="9101 x"`},
		{"bad range", map[string]string{"DEMO_CONSOLE_PORTS": "9204-9201"}, nil, "DEMO_CONSOLE_PORTS"},
		{"count mismatch", map[string]string{"DEMO_S3_PORTS": "9101-9103"}, nil, "3 ports but DEMO_CONSOLE_PORTS has 4"},
		{"bad site port", map[string]string{"DEMO_S3_PORT": "70000"}, nil, "DEMO_S3_PORT"},
		{"bad duration", map[string]string{"DEMO_EXIT_AFTER": "soon"}, nil, "DEMO_EXIT_AFTER"},
		{"bad keep", map[string]string{"DEMO_KEEP_DATA": "yes"}, nil, "DEMO_KEEP_DATA"},
		{"short password", map[string]string{"DEMO_ROOT_PASSWORD": "short"}, nil, "DEMO_ROOT_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := demo.FromEnv(getenv(tt.env))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}
