package miniocluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// client talks to one node directly, without retries, so a failure shows.
func client(t *testing.T, c *miniocluster.Cluster, addr string) *minio.Client {
	t.Helper()
	user, pass := c.Credentials()
	mc, err := minio.New(addr, &minio.Options{
		Creds:      credentials.NewStaticV4(user, pass, ""),
		Region:     "us-east-1",
		MaxRetries: 1,
		Transport:  &http.Transport{ResponseHeaderTimeout: 20 * time.Second},
	})
	require.NoError(t, err)
	return mc
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// put writes an object, retrying MinIO's SlowDown answers for at most
// 30 s (miniocluster.RetrySlowDown).
func put(t *testing.T, ctx context.Context, mc *minio.Client, bucket, key string, data []byte) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := miniocluster.RetrySlowDown(rctx, func() error {
		_, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		return err
	})
	require.NoError(t, err, "put %s/%s via %s", bucket, key, mc.EndpointURL().Host)
}

func get(ctx context.Context, mc *minio.Client, bucket, key string) ([]byte, error) {
	o, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

// alive reports whether a pid names a live (or zombie) process.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func TestClusterServesKillsAndRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	c := miniocluster.StartT(t, miniocluster.Options{})
	t.Logf("4-node cluster ready in %s", time.Since(start).Round(time.Millisecond))

	require.Len(t, c.Nodes(), 4)
	seen := map[string]bool{}
	for _, a := range append(c.S3Addrs(), c.ConsoleAddrs()...) {
		assert.False(t, seen[a], "address %s used twice", a)
		seen[a] = true
	}
	for _, n := range c.Nodes() {
		ok, why := n.Ready(ctx)
		assert.True(t, ok, "node %d not ready after Start: %s", n.Index()+1, why)
		assert.True(t, alive(n.Pid()), "node %d pid %d", n.Index()+1, n.Pid())
	}
	hc, err := c.Node(0).Probe(ctx, "/minio/health/cluster")
	require.NoError(t, err)
	assert.Equal(t, "3", hc.Header.Get("X-Minio-Write-Quorum"), "4 drives, EC:2: write quorum 3")

	// Start waited until the cluster takes writes (WaitWritable): the
	// first write through every node succeeds without a retry, and the
	// probe bucket is gone.
	mc1 := client(t, c, c.Node(0).S3Addr())
	require.NoError(t, mc1.MakeBucket(ctx, "harness", minio.MakeBucketOptions{}))
	for _, n := range c.Nodes() {
		key := fmt.Sprintf("first-write-node%d", n.Index()+1)
		_, err := client(t, c, n.S3Addr()).PutObject(ctx, "harness", key, bytes.NewReader([]byte(key)), int64(len(key)), minio.PutObjectOptions{})
		require.NoError(t, err, "first write through node %d right after Start", n.Index()+1)
	}
	buckets, err := mc1.ListBuckets(ctx)
	require.NoError(t, err)
	for _, b := range buckets {
		assert.Equal(t, "harness", b.Name, "only the test's own bucket")
	}

	// Written through node 1, the object is readable through every node.
	data := randomBytes(t, 3<<20)
	put(t, ctx, mc1, "harness", "obj", data)
	for _, n := range c.Nodes() {
		got, err := get(ctx, client(t, c, n.S3Addr()), "harness", "obj")
		require.NoError(t, err, "get via node %d", n.Index()+1)
		assert.True(t, bytes.Equal(data, got), "node %d returned different bytes", n.Index()+1)
	}

	// Crash node 3: its port closes, the others still read (read quorum 2
	// of 4) and write (write quorum 3 of 4).
	victim := c.Node(2)
	pid := victim.Pid()
	require.NoError(t, victim.Kill())
	assert.False(t, victim.Running())
	assert.Zero(t, victim.Pid())
	assert.False(t, alive(pid), "pid %d still exists after Kill", pid)
	_, err = victim.Probe(ctx, "/minio/health/live")
	assert.Error(t, err, "a killed node must not answer")
	got, err := get(ctx, mc1, "harness", "obj")
	require.NoError(t, err, "read with one node down")
	assert.True(t, bytes.Equal(data, got))
	data2 := randomBytes(t, 1<<20)
	put(t, ctx, client(t, c, c.Node(1).S3Addr()), "harness", "written-while-down", data2)

	// Restart: same ports and drive, ready again, serves what was written
	// while it was down (read through it).
	require.NoError(t, victim.Restart(ctx))
	assert.True(t, victim.Running())
	assert.NotEqual(t, pid, victim.Pid())
	ok, why := victim.Ready(ctx)
	assert.True(t, ok, why)
	mc3 := client(t, c, victim.S3Addr())

	// MinIO fact: a restarted node that reports ready may still answer 404
	// NoSuchKey for a while, until it has reconnected to its peers' drives:
	// for objects written while it was down (seen for up to ~11 s here)
	// and, less often, for objects older than its restart (seen once, on a
	// 2-core machine with one core burned). It must converge on both; how
	// long it took is logged.
	for _, o := range []struct {
		key  string
		data []byte
	}{{"obj", data}, {"written-while-down", data2}} {
		got, took, false404, err := readThroughRestarted(ctx, mc3, "harness", o.key, 45*time.Second)
		require.NoError(t, err, "%s is still not readable through the restarted node after %s", o.key, took)
		assert.True(t, bytes.Equal(o.data, got), "%s read through the restarted node", o.key)
		t.Logf("restarted node served %s after %s (%d reads answered 404 before)", o.key, took.Round(time.Millisecond), false404)
	}
}

// readThroughRestarted reads bucket/key through mc until the node stops
// answering NoSuchKey or limit has passed, and says how long that took
// and how many reads answered 404.
func readThroughRestarted(ctx context.Context, mc *minio.Client, bucket, key string, limit time.Duration) (data []byte, took time.Duration, false404 int, err error) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	false404, err = miniocluster.RetryNotYetVisible(ctx, func() error {
		var err error
		data, err = get(ctx, mc, bucket, key)
		return err
	})
	return data, time.Since(t0), false404, err
}

func TestNodeStopCont(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := miniocluster.StartT(t, miniocluster.Options{})
	n := c.Node(1)

	require.NoError(t, n.Stop())
	assert.True(t, n.Paused())
	assert.True(t, n.Running(), "a stopped process is alive")
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	_, err := n.Probe(pctx, "/minio/health/live")
	pcancel()
	require.Error(t, err, "a SIGSTOPped node must not answer")
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err), "a hang is a timeout, not a refusal: %v", err)

	// The other nodes still answer their local readiness at once. (Their
	// /minio/health/cluster* calls wait on the hung peer: logged, not
	// asserted, see docs/testing.md, Harness packages.)
	r, err := c.Node(0).Probe(ctx, "/minio/health/ready")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.Status)
	t0 := time.Now()
	cr, err := clusterProbe(ctx, c.Node(0).S3Addr(), "/minio/health/cluster/read", 30*time.Second)
	t.Logf("node 1 /minio/health/cluster/read with node 2 SIGSTOPped: %v %v after %s", cr, err, time.Since(t0).Round(time.Millisecond))

	require.NoError(t, n.Cont())
	assert.False(t, n.Paused())
	require.NoError(t, n.WaitReady(ctx))
}

func TestStopKillsEverythingAndRemovesData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := miniocluster.Start(ctx, miniocluster.Options{})
	require.NoError(t, err)
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, n.Pid())
	}
	require.NoError(t, c.Node(3).Stop(), "a stopped node must die too")
	require.NoError(t, c.Stop())
	for i, pid := range pids {
		assert.False(t, alive(pid), "node %d pid %d still alive after Stop", i+1, pid)
	}
	_, err = os.Stat(c.Dir())
	assert.True(t, os.IsNotExist(err), "data dir %s still there: %v", c.Dir(), err)
	assert.NoError(t, c.Stop(), "Stop twice")
}

func TestKeepDataAndOwnDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := miniocluster.Start(ctx, miniocluster.Options{Dir: dir, Nodes: 4})
	require.NoError(t, err)
	require.NoError(t, c.Stop())
	// A caller's Dir is kept with the logs; the drives are gone.
	_, err = os.Stat(c.Node(0).LogPath())
	assert.NoError(t, err, "node log kept in a caller's Dir")
	_, err = os.Stat(c.Node(0).DriveDir())
	assert.True(t, os.IsNotExist(err), "drive removed: %v", err)
	logText, err := os.ReadFile(c.Node(0).LogPath())
	require.NoError(t, err)
	assert.Contains(t, string(logText), "API: http://"+c.Node(0).S3Addr())
}

func TestStartFailsLoudly(t *testing.T) {
	held, err := freeport.Ports(8)
	require.NoError(t, err)
	ln, err := (&netListenConfig{}).listen(held[0])
	require.NoError(t, err)
	defer ln.Close()

	tests := []struct {
		name    string
		env     string // MINIO_BIN
		opt     miniocluster.Options
		wantErr []string
	}{
		{"missing binary", "", miniocluster.Options{Binary: "/nonexistent/minio"}, []string{"/nonexistent/minio", "./xcaddy.sh minio"}},
		{"MINIO_BIN honoured", "/also/not/there/minio", miniocluster.Options{}, []string{"/also/not/there/minio", "./xcaddy.sh minio"}},
		{"binary is a directory", "", miniocluster.Options{Binary: os.TempDir()}, []string{"not an executable"}},
		{"negative nodes", "", miniocluster.Options{Nodes: -1}, []string{"Nodes", "-1"}},
		{"ports mismatch", "", miniocluster.Options{Nodes: 4, S3Ports: []int{1, 2}}, []string{"S3Ports", "2 ports for 4 nodes"}},
		{"bad port", "", miniocluster.Options{S3Ports: []int{0, 1, 2, 3}, ConsolePorts: []int{4, 5, 6, 7}}, []string{"port 0"}},
		{"short password", "", miniocluster.Options{RootPassword: "short"}, []string{"RootPassword", "8 characters"}},
		{"fixed port in use", "", miniocluster.Options{S3Ports: held[:4], ConsolePorts: held[4:]}, []string{"in use", "127.0.0.1:" + itoa(held[0])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("MINIO_BIN", tt.env)
			}
			c, err := miniocluster.Start(context.Background(), tt.opt)
			if c != nil {
				c.Stop()
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
