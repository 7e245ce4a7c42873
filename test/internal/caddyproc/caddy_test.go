package caddyproc_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

func s3client(t *testing.T, c *miniocluster.Cluster, addr string) *minio.Client {
	t.Helper()
	user, pass := c.Credentials()
	mc, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1", MaxRetries: 1})
	require.NoError(t, err)
	return mc
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A stock-directive Caddyfile in front of a real cluster: S3 through the
// proxy, the JSON access log, a reload onto another port, Stop.
func TestStockProxyReloadAndAccessLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := miniocluster.StartT(t, miniocluster.Options{})
	ports := freeport.PortList(t, 2)
	cf := `{
	servers {
		timeouts {
			read_body 0
		}
	}
}
http://127.0.0.1:{$SITE_PORT} {
	log {
		output stdout
		format json
	}
	reverse_proxy {$UPSTREAMS} {
		lb_policy round_robin
		flush_interval -1
	}
}
`
	p := caddyproc.StartT(t, caddyproc.Options{
		Caddyfile: cf,
		Env:       []string{fmt.Sprintf("SITE_PORT=%d", ports[0]), "UPSTREAMS=" + strings.Join(cl.S3Addrs(), " ")},
	})
	assert.NotZero(t, p.Pid())
	addrs, err := p.ListenAddrs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}, addrs)

	site := fmt.Sprintf("127.0.0.1:%d", ports[0])
	mc := s3client(t, cl, site)
	// A cluster that just started can still answer a write 503
	// SlowDownWrite on a busy machine (seen with one core burned); stock
	// Caddy passes it on, and this test is about the harness, not about
	// retries: do what an SDK does.
	require.NoError(t, miniocluster.RetrySlowDown(ctx, func() error {
		return mc.MakeBucket(ctx, "proc", minio.MakeBucketOptions{})
	}))
	body := bytes.Repeat([]byte("caddyproc "), 100000)
	require.NoError(t, miniocluster.RetrySlowDown(ctx, func() error {
		_, err := mc.PutObject(ctx, "proc", "k", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		return err
	}))
	o, err := mc.GetObject(ctx, "proc", "k", minio.GetObjectOptions{})
	require.NoError(t, err)
	got, err := io.ReadAll(o)
	require.NoError(t, err)
	assert.Equal(t, body, got)

	e, err := p.WaitAccessLog(ctx, func(e caddyproc.AccessEntry) bool {
		return e.Request.Method == http.MethodPut && e.Request.URI == "/proc/k" && e.Status == http.StatusOK
	})
	require.NoError(t, err, "the access log has the PUT that succeeded")
	assert.Equal(t, site, e.Request.Host)
	assert.Equal(t, "handled request", e.Msg)

	// Reload onto another port (Caddyfile through POST /load).
	reloaded := strings.Replace(cf, "{$SITE_PORT}", fmt.Sprint(ports[1]), 1)
	reloaded = strings.Replace(reloaded, "{$UPSTREAMS}", strings.Join(cl.S3Addrs(), " "), 1)
	require.NoError(t, p.Reload(ctx, []byte(reloaded), "caddyfile"))
	code, _ := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/minio/health/ready", ports[1]))
	assert.Equal(t, http.StatusOK, code)
	// Caddy closes the dropped listener in the background after /load
	// answered: wait for it, bounded.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	assert.NoError(t, caddyproc.WaitClosed(wctx, site), "the old port closes after the reload")
	wcancel()

	// JSON reload through the same API.
	js := fmt.Sprintf(`{"apps":{"http":{"servers":{"x":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[{"handler":"static_response","body":"json-config"}]}]}}}}}`, ports[0])
	require.NoError(t, p.Reload(ctx, []byte(js), "json"))
	_, text := httpGet(t, "http://"+site+"/")
	assert.Equal(t, "json-config", text)

	bad := p.Reload(ctx, []byte("http://127.0.0.1:1 {\n\tno_such_directive\n}\n"), "caddyfile")
	require.Error(t, bad)
	assert.Contains(t, bad.Error(), "no_such_directive")

	pid := p.Pid()
	require.NoError(t, p.Stop())
	assert.Error(t, syscall.Kill(pid, 0), "caddy pid %d alive after Stop", pid)
	_, err = os.Stat(p.Dir())
	assert.True(t, os.IsNotExist(err))
}

// examples/Caddyfile with ExampleEnv: the S3 site proxies, the status page
// answers, the console site serves the MinIO console.
func TestExampleCaddyfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := caddyproc.RepoRoot()
	require.NoError(t, err)
	cl := miniocluster.StartT(t, miniocluster.Options{})
	ports := freeport.PortList(t, 2)
	p := caddyproc.StartT(t, caddyproc.Options{
		ConfigPath: filepath.Join(root, "examples", "Caddyfile"),
		Env:        caddyproc.ExampleEnv(cl, caddyproc.Sites{S3Port: ports[0], ConsolePort: ports[1]}),
	})
	s3 := fmt.Sprintf("127.0.0.1:%d", ports[0])

	mc := s3client(t, cl, s3)
	var lastErr error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) { // healthready needs `rise` probes before a node is in
		if lastErr = mc.MakeBucket(ctx, "example", minio.MakeBucketOptions{}); lastErr == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(t, lastErr, "S3 through examples/Caddyfile")
	_, err = mc.PutObject(ctx, "example", "k", strings.NewReader("hello"), 5, minio.PutObjectOptions{})
	require.NoError(t, err)

	code, text := httpGet(t, "http://"+s3+"/upstream/health/")
	assert.Equal(t, http.StatusOK, code)
	for _, a := range cl.S3Addrs() {
		assert.Contains(t, text, a, "status page lists node %s", a)
	}
	code, _ = httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", ports[1]))
	assert.Equal(t, http.StatusOK, code, "console site")

	e, err := p.WaitAccessLog(ctx, func(e caddyproc.AccessEntry) bool { return e.Request.Method == http.MethodPut })
	require.NoError(t, err)
	assert.Contains(t, cl.S3Addrs(), e.String("upstream"), "access log names the node")
	metrics, err := p.Admin(ctx, http.MethodGet, "/metrics")
	require.NoError(t, err)
	assert.Contains(t, string(metrics), "caddy_http_requests_total")
}

func TestStartFailsLoudly(t *testing.T) {
	tests := []struct {
		name string
		env  string
		opt  caddyproc.Options
		want []string
	}{
		{"missing binary", "", caddyproc.Options{Caddyfile: ":1", Binary: "/nonexistent/caddy"}, []string{"/nonexistent/caddy", "./xcaddy.sh build"}},
		{"CADDY_BIN honoured", "/not/here/caddy", caddyproc.Options{Caddyfile: ":1"}, []string{"/not/here/caddy", "./xcaddy.sh build"}},
		{"no config", "", caddyproc.Options{}, []string{"exactly one of Caddyfile, Config and ConfigPath"}},
		{"two configs", "", caddyproc.Options{Caddyfile: "x", Config: []byte("{}")}, []string{"exactly one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("CADDY_BIN", tt.env)
			}
			_, err := caddyproc.Start(context.Background(), tt.opt)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestBadConfigFailsWithCaddysMessage(t *testing.T) {
	_, err := caddyproc.Start(context.Background(), caddyproc.Options{Caddyfile: "http://127.0.0.1:1 {\n\tbogus_directive_x\n}\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bogus_directive_x")
}

func TestParseAccessLog(t *testing.T) {
	in := strings.Join([]string{
		`{"level":"info","ts":1,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","method":"GET","host":"h","uri":"/b/k?x=1"},"status":200,"size":5,"upstream":"127.0.0.1:9101","affinity_source":"query"}`,
		`{"level":"info","ts":1,"logger":"http.handlers.reverse_proxy","msg":"not access"}`,
		`not json at all`,
		``,
		`{"level":"error","logger":"http.log.access","msg":"handled request","request":{"method":"PUT","uri":"/b"},"status":502}`,
		`{"level":"info","logger":"http.log.access","msg":"trunc`,
	}, "\n")
	es, err := caddyproc.ParseAccessLog(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, "GET", es[0].Request.Method)
	assert.Equal(t, "/b/k?x=1", es[0].Request.URI)
	assert.Equal(t, 200, es[0].Status)
	assert.Equal(t, "127.0.0.1:9101", es[0].String("upstream"))
	assert.Equal(t, "query", es[0].String("affinity_source"))
	assert.Equal(t, "", es[0].String("missing"))
	assert.Equal(t, 502, es[1].Status)
}
