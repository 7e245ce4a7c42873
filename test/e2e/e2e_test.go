package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// env is what every scenario shares: one cluster, one Caddy running
// examples/Caddyfile, and the numbers to print at the end.
type env struct {
	c     *miniocluster.Cluster
	caddy *caddyProc
	user  string
	pass  string
	rep   *report
}

// s3Client is a minio-go client of the S3 site through Caddy; app names the
// client in its User-Agent (and so in its fingerprint).
func (e *env) s3Client(t *testing.T, app string) *minio.Client {
	t.Helper()
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := minio.New(e.caddy.S3Addr, &minio.Options{
		Creds:     credentials.NewStaticV4(e.user, e.pass, ""),
		Secure:    false,
		Region:    "us-east-1",
		Transport: sentRequests.Transport(tr),
	})
	if err != nil {
		t.Fatal(err)
	}
	if app != "" {
		cl.SetAppInfo(app, "1.0")
	}
	return cl
}

// nodeOf names a node by its S3 address, for messages.
func (e *env) nodeOf(addr string) string {
	for i, a := range e.c.S3Addrs() {
		if a == addr {
			return fmt.Sprintf("node%d(%s)", i+1, addr)
		}
	}
	for i, a := range e.c.ConsoleAddrs() {
		if a == addr {
			return fmt.Sprintf("console%d(%s)", i+1, addr)
		}
	}
	return addr
}

// waitAllReady waits until Caddy sees every node of both pools ready.
func (e *env) waitAllReady(t *testing.T, timeout time.Duration) time.Time {
	t.Helper()
	return e.caddy.waitStatus(t, "every node ready", timeout, func(s status) bool { return s.allReady() })
}

// TestE2E runs every scenario in order on one cluster and one Caddy: they
// share the expensive parts (a 4-node cluster, a Caddy process) and each
// leaves every node running and ready for the next. Scenarios restart
// nodes, never the cluster.
func TestE2E(t *testing.T) {
	began := time.Now()
	rep := &report{}
	defer func() { rep.print(t, time.Since(began)) }()

	c := miniocluster.StartT(t, miniocluster.Options{})
	user, pass := c.Credentials()
	caddyfile := filepath.Join(repoRoot(t), "examples", "Caddyfile")
	cp := startCaddy(t, caddyfile, c)
	e := &env{c: c, caddy: cp, user: user, pass: pass, rep: rep}
	rep.add("setup", "cluster + caddy up, every node ready", time.Since(began).Round(time.Millisecond).String())
	ready := e.waitAllReady(t, 45*time.Second)
	rep.add("setup", "caddy: all 8 pool nodes ready after start", ready.Sub(began).Round(time.Millisecond).String())
	rep.setProbes(cp.probeConfig(t, "s3"))

	scenarios := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"S3/minio-go", testS3MinioGo},
		{"S3/awscli", testAWSCLI},
		{"Console", testConsole},
		{"Failure/SIGKILL", testKill},
		{"Failure/SIGSTOP", testHang},
		{"Failure/StartingNode", testStartingNode},
		{"Reload", testReload},
	}
	for _, sc := range scenarios {
		ok := t.Run(sc.name, func(t *testing.T) {
			start := time.Now()
			sc.run(t, e)
			rep.add(sc.name, "scenario time", time.Since(start).Round(time.Millisecond).String())
		})
		if !ok {
			// A later scenario assumes every node runs and is ready;
			// bring them back so one failure does not hide the others.
			for _, n := range c.Nodes() {
				if n.Paused() {
					_ = n.Cont()
				}
				if !n.Running() {
					_ = n.Launch()
				}
			}
			_ = c.WaitReady(ctxT(t, time.Minute))
			if _, err := cp.Status(); err != nil || !cp.Alive() {
				t.Fatalf("caddy is gone after %s: %v", sc.name, err)
			}
		}
	}
}

// report collects the measured numbers, printed as one table at the end.
type report struct {
	mu     sync.Mutex
	rows   [][3]string
	probes string
}

// setProbes names the S3 pool's probe settings in the table's title.
func (r *report) setProbes(pc probeConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes = pc.String()
}

func (r *report) add(scenario, metric, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, [3]string{scenario, metric, value})
}

func (r *report) addf(scenario, metric, format string, a ...any) {
	r.add(scenario, metric, fmt.Sprintf(format, a...))
}

func (r *report) print(t *testing.T, total time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tMEASURE\tVALUE")
	for _, row := range r.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\n", row[0], row[1], row[2])
	}
	fmt.Fprintf(w, "total\tTestE2E wall time\t%s\n", total.Round(time.Millisecond))
	w.Flush()
	t.Logf("end-to-end numbers (examples/Caddyfile, 4-node MinIO, probes %s):\n%s", r.probes, b.String())
}
