package miniocluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
)

// Cluster is a running set of minio server processes forming one erasure set.
type Cluster struct {
	opt       Options
	dir       string
	ownDir    bool // created by Start, removed by Stop
	log       *lockedWriter
	endpoints []string
	nodes     []*Node

	stopOnce sync.Once
	stopErr  error
}

// startAttempts bounds the retries when a free port was taken by someone
// else between picking it and MinIO binding it.
const startAttempts = 3

// Start starts the cluster and, unless opt.NoWait, waits until every node is
// ready and takes writes (WaitWritable). ctx bounds only the start and the
// wait; the processes run until Stop (or until this process dies). On error
// nothing is left running.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkBinary(opt.Binary); err != nil {
		return nil, err
	}
	fixed := len(opt.S3Ports) > 0 || len(opt.ConsolePorts) > 0
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		c, err := newCluster(opt)
		if err != nil {
			return nil, err
		}
		err = c.launchAll(ctx)
		if err == nil {
			return c, nil
		}
		portRace := !fixed && c.portInUse()
		_ = c.Stop()
		lastErr = err
		if !portRace || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// StartT starts a cluster for a test: it fails the test (never skips) when
// the cluster cannot start, stops the cluster in t.Cleanup, and prints every
// node's log tail when the test failed.
func StartT(t testing.TB, opt Options) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("--- minio node %d (%s) log tail:\n%s", n.index+1, n.S3Addr(), n.LogTail(40))
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("miniocluster: stop: %v", err)
		}
	})
	return c
}

func newCluster(opt Options) (*Cluster, error) {
	c := &Cluster{opt: opt}
	if opt.Log != nil {
		c.log = &lockedWriter{w: opt.Log}
	}
	s3Ports, consolePorts := opt.S3Ports, opt.ConsolePorts
	if len(s3Ports) == 0 || len(consolePorts) == 0 {
		free, err := freeport.Ports(2 * opt.Nodes)
		if err != nil {
			return nil, err
		}
		if len(s3Ports) == 0 {
			s3Ports = free[:opt.Nodes]
		}
		if len(consolePorts) == 0 {
			consolePorts = free[opt.Nodes:]
		}
	} else if err := checkPortsFree(append(append([]int(nil), s3Ports...), consolePorts...)); err != nil {
		return nil, err
	}
	if opt.Dir == "" {
		d, err := os.MkdirTemp("", "miniocluster-")
		if err != nil {
			return nil, fmt.Errorf("miniocluster: temp dir: %w", err)
		}
		c.dir, c.ownDir = d, true
	} else {
		d, err := filepath.Abs(opt.Dir)
		if err != nil {
			return nil, fmt.Errorf("miniocluster: Dir %q: %w", opt.Dir, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("miniocluster: Dir %q: %w", opt.Dir, err)
		}
		c.dir = d
	}
	for i := 0; i < opt.Nodes; i++ {
		n := &Node{c: c, index: i, s3Port: s3Ports[i], consolePort: consolePorts[i]}
		c.nodes = append(c.nodes, n)
		if err := os.MkdirAll(n.DriveDir(), 0o755); err != nil {
			return nil, fmt.Errorf("miniocluster: drive dir: %w", err)
		}
		c.endpoints = append(c.endpoints, "http://"+n.S3Addr()+n.DriveDir())
	}
	if opt.Nodes == 1 {
		// A single endpoint URL is not a valid server argument; one node
		// serves its drive by path.
		c.endpoints = []string{c.nodes[0].DriveDir()}
	}
	return c, nil
}

func (c *Cluster) launchAll(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := n.Launch(); err != nil {
			return err
		}
	}
	if c.opt.NoWait {
		return nil
	}
	if err := c.WaitReady(ctx); err != nil {
		return err
	}
	return c.WaitWritable(ctx)
}

// portInUse reports whether a node failed because its port was taken.
func (c *Cluster) portInUse() bool {
	for _, n := range c.nodes {
		if strings.Contains(n.LogTail(50), "address already in use") {
			return true
		}
	}
	return false
}

// WaitReady waits until every running node is ready (see Node.Ready).
func (c *Cluster) WaitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.ReadyTimeout)
		defer cancel()
	}
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		if err := n.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Nodes returns the nodes in endpoint order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// S3Addrs returns every node's S3 address, "127.0.0.1:PORT", in node order.
func (c *Cluster) S3Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.S3Addr()
	}
	return out
}

// ConsoleAddrs returns every node's console address, in node order.
func (c *Cluster) ConsoleAddrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.ConsoleAddr()
	}
	return out
}

// Credentials returns the root user and password.
func (c *Cluster) Credentials() (user, pass string) { return c.opt.RootUser, c.opt.RootPassword }

// Dir is the directory holding the drives and the node logs.
func (c *Cluster) Dir() string { return c.dir }

// Endpoints is the endpoint list every server was given.
func (c *Cluster) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// Stop kills every process (SIGKILL reaches stopped processes too), waits
// for them, and removes the drives: the whole directory if Start created
// it, else only d1..dN and the certs dirs. Safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for _, n := range c.nodes {
			if err := n.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
		if !c.opt.KeepData {
			if c.ownDir {
				errs = append(errs, os.RemoveAll(c.dir))
			} else {
				for _, n := range c.nodes {
					errs = append(errs, os.RemoveAll(n.DriveDir()), os.RemoveAll(n.certsDir()))
				}
			}
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
