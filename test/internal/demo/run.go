package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// Run starts the cluster and Caddy, prints the endpoints to out, and then
// runs the check (cfg.Check) or waits for ctx (a signal) or cfg.ExitAfter.
// Everything it started is stopped before it returns.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	var logw io.Writer
	if cfg.Verbose {
		logw = os.Stderr
	}
	caddyfile := cfg.Caddyfile
	if caddyfile == "" {
		root, err := caddyproc.RepoRoot()
		if err != nil {
			return err
		}
		caddyfile = filepath.Join(root, "examples", "Caddyfile")
	}
	s3Port, consolePort, admin := cfg.S3Port, cfg.ConsolePort, cfg.AdminAddr
	free, err := freeport.Ports(3)
	if err != nil {
		return err
	}
	if s3Port == 0 {
		s3Port = free[0]
	}
	if consolePort == 0 {
		consolePort = free[1]
	}
	if admin == "" {
		admin = "127.0.0.1:" + strconv.Itoa(free[2])
	}
	if err := checkFree(cfg.ListenHost, s3Port, "DEMO_S3_PORT"); err != nil {
		return err
	}
	if err := checkFree(cfg.ListenHost, consolePort, "DEMO_CONSOLE_PORT"); err != nil {
		return err
	}

	fmt.Fprintf(out, "==> starting %d MinIO nodes\n", max(len(cfg.S3Ports), 4))
	start := time.Now()
	cluster, err := miniocluster.Start(ctx, miniocluster.Options{
		Nodes:        len(cfg.S3Ports),
		S3Ports:      cfg.S3Ports,
		ConsolePorts: cfg.ConsolePorts,
		RootUser:     cfg.RootUser,
		RootPassword: cfg.RootPassword,
		Dir:          cfg.Dir,
		KeepData:     cfg.KeepData,
		Log:          logw,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "==> stopping MinIO")
		err = errors.Join(err, cluster.Stop())
	}()
	fmt.Fprintf(out, "==> MinIO ready in %s; starting Caddy with %s\n", time.Since(start).Round(100*time.Millisecond), caddyfile)

	proc, err := caddyproc.Start(ctx, caddyproc.Options{
		ConfigPath: caddyfile,
		AdminAddr:  admin,
		Dir:        filepath.Join(cluster.Dir(), "caddy"),
		Env: caddyproc.ExampleEnv(cluster, caddyproc.Sites{
			S3Port: s3Port, ConsolePort: consolePort, ListenHost: cfg.ListenHost, Salt: cfg.Salt,
		}),
		Log: logw,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "==> stopping Caddy")
		err = errors.Join(err, proc.Stop())
	}()

	host := cfg.ListenHost
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	s3 := net.JoinHostPort(host, strconv.Itoa(s3Port))
	console := net.JoinHostPort(host, strconv.Itoa(consolePort))
	if err := waitProxy(ctx, cluster, s3, console); err != nil {
		return err
	}
	printEndpoints(out, cfg, cluster, proc, s3, console, admin)

	if cfg.Check {
		if err := check(ctx, cluster, s3, console, admin); err != nil {
			return fmt.Errorf("demo check failed: %w", err)
		}
		fmt.Fprintln(out, "==> check passed: S3 put/get through Caddy, status page, console and metrics answer")
		return nil
	}
	if cfg.ExitAfter > 0 {
		fmt.Fprintf(out, "Stopping by itself after %s (DEMO_EXIT_AFTER); Ctrl-C stops it earlier.\n", cfg.ExitAfter)
		select {
		case <-ctx.Done():
		case <-time.After(cfg.ExitAfter):
		}
	} else {
		fmt.Fprintln(out, "Press Ctrl-C to stop (every process is killed, the data removed unless DEMO_KEEP_DATA=1).")
		<-ctx.Done()
	}
	return nil
}

func checkFree(host string, port int, name string) error {
	if host == "" {
		host = "0.0.0.0"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("demo: port %d (%s) is in use: stop what listens there or set %s=<port|auto>: %w", port, name, name, err)
	}
	return l.Close()
}

func s3Client(c *miniocluster.Cluster, addr string) (*minio.Client, error) {
	user, pass := c.Credentials()
	return minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1", MaxRetries: 1})
}

// waitProxy waits until an S3 call through Caddy succeeds (healthready takes
// a node in after `rise` good probes) and the console site answers.
func waitProxy(ctx context.Context, c *miniocluster.Cluster, s3, console string) error {
	mc, err := s3Client(c, s3)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = mc.ListBuckets(rctx)
		if last == nil {
			last = httpOK(rctx, "http://"+console+"/", nil)
		}
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: Caddy does not serve S3 at %s and the console at %s: %v: %w", s3, console, last, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpOK GETs url and wants 200; body receives the body if not nil.
func httpOK(ctx context.Context, url string, body *string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if body != nil {
		*body = string(b)
	}
	return nil
}

// check puts and gets an object through Caddy, reads the status page (it
// must list every node), the console and the metrics.
func check(ctx context.Context, c *miniocluster.Cluster, s3, console, admin string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	mc, err := s3Client(c, s3)
	if err != nil {
		return err
	}
	bucket := fmt.Sprintf("demo-check-%d", time.Now().UnixNano())
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("make bucket %s: %w", bucket, err)
	}
	data := bytes.Repeat([]byte("caddy-minio-lb demo\n"), 50000) // 1 MB
	// A cluster that has just started can refuse writes for a moment.
	if err := miniocluster.RetrySlowDown(ctx, func() error {
		_, err := mc.PutObject(ctx, bucket, "check.txt", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	o, err := mc.GetObject(ctx, bucket, "check.txt", minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("get returned %d bytes, not the %d put", len(got), len(data))
	}
	_ = mc.RemoveObject(ctx, bucket, "check.txt", minio.RemoveObjectOptions{})
	_ = mc.RemoveBucket(ctx, bucket)

	var status string
	if err := httpOK(ctx, "http://"+s3+"/upstream/health/", &status); err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	for _, a := range c.S3Addrs() {
		if !strings.Contains(status, a) {
			return fmt.Errorf("status page does not list node %s:\n%s", a, status)
		}
	}
	if err := httpOK(ctx, "http://"+console+"/", nil); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	var metrics string
	if err := httpOK(ctx, "http://"+admin+"/metrics", &metrics); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if !strings.Contains(metrics, "caddy_http_requests_total") {
		return fmt.Errorf("metrics at %s has no caddy_http_requests_total", admin)
	}
	return nil
}

func printEndpoints(out io.Writer, cfg Config, c *miniocluster.Cluster, p *caddyproc.Caddy, s3, console, admin string) {
	user, pass := c.Credentials()
	var pids []string
	for _, n := range c.Nodes() {
		pids = append(pids, strconv.Itoa(n.Pid()))
	}
	keep := "removed on exit (DEMO_KEEP_DATA=1 keeps it)"
	if cfg.KeepData {
		keep = "kept on exit (DEMO_KEEP_DATA=1)"
	}
	fmt.Fprintf(out, `
caddy-minio-lb demo: %d MinIO nodes behind Caddy

  S3 endpoint   http://%[2]s
  Console       http://%[3]s   (login %[4]s / %[5]s)
  Status page   http://%[2]s/upstream/health/   (?format=json, ?format=html)
  Metrics       http://%[6]s/metrics
  Credentials   access key %[4]s, secret key %[5]s
  MinIO nodes   S3 %[7]s; consoles %[8]s
  Processes     caddy pid %[9]d; minio pids %[10]s
  Data, logs    %[11]s, %[12]s

Try it (awscli):
  export AWS_ACCESS_KEY_ID=%[4]s AWS_SECRET_ACCESS_KEY=%[5]s AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url http://%[2]s s3 mb s3://demo
  echo hello | aws --endpoint-url http://%[2]s s3 cp - s3://demo/hello.txt
  aws --endpoint-url http://%[2]s s3 ls s3://demo

or MinIO's mc:
  mc alias set demo http://%[2]s %[4]s %[5]s
  mc ls demo/demo

`, len(c.Nodes()), s3, console, user, pass, admin,
		strings.Join(c.S3Addrs(), " "), strings.Join(c.ConsoleAddrs(), " "),
		p.Pid(), strings.Join(pids, " "), c.Dir(), keep)
}
