package miniocluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Node is one minio server process of a Cluster.
type Node struct {
	c           *Cluster
	index       int // 0-based
	s3Port      int
	consolePort int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has been reaped
	exitErr error         // set before done is closed
	paused  bool          // SIGSTOPped and not yet continued
}

// Index is the node's position in the endpoint list, 0-based.
func (n *Node) Index() int { return n.index }

// S3Addr is the node's S3 API address, "127.0.0.1:PORT".
func (n *Node) S3Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.s3Port)) }

// ConsoleAddr is the node's console (web UI) address, "127.0.0.1:PORT".
func (n *Node) ConsoleAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.consolePort))
}

// S3Port and ConsolePort are the node's ports.
func (n *Node) S3Port() int      { return n.s3Port }
func (n *Node) ConsolePort() int { return n.consolePort }

// DriveDir is the node's drive directory.
func (n *Node) DriveDir() string { return filepath.Join(n.c.dir, fmt.Sprintf("d%d", n.index+1)) }

// LogPath is the file that receives the node's output across restarts.
func (n *Node) LogPath() string { return filepath.Join(n.c.dir, fmt.Sprintf("node%d.log", n.index+1)) }

// LogTail returns the last lines of the node's log.
func (n *Node) LogTail(lines int) string { return tailFile(n.LogPath(), lines) }

func (n *Node) certsDir() string { return filepath.Join(n.c.dir, fmt.Sprintf("certs%d", n.index+1)) }

// Pid is the process id of the running process, 0 when it is not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the node's process is alive (a SIGSTOPped process
// is alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Launch starts the node's process on its ports and drive and returns
// without waiting for readiness. It fails if the process is running.
func (n *Node) Launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("miniocluster: node %d is already running (pid %d)", n.index+1, n.cmd.Process.Pid)
	}
	f, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("miniocluster: node %d log: %w", n.index+1, err)
	}
	var out io.Writer = f
	if n.c.opt.Log != nil {
		out = io.MultiWriter(f, newPrefixWriter(n.c.log, fmt.Sprintf("minio%d: ", n.index+1)))
	}
	args := []string{"server",
		"--address", n.S3Addr(),
		"--console-address", n.ConsoleAddr(),
		"--certs-dir", n.certsDir(), // not ~/.minio/certs: tests must not touch $HOME
	}
	args = append(args, n.c.endpoints...)
	cmd := exec.Command(n.c.opt.Binary, args...)
	cmd.Env = n.env()
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Dir = n.c.dir
	fmt.Fprintf(f, "=== miniocluster %s: starting node %d: %s %v\n", time.Now().Format(time.RFC3339Nano), n.index+1, n.c.opt.Binary, args)
	if err := startWithDeathSignal(cmd); err != nil {
		f.Close()
		return fmt.Errorf("miniocluster: start node %d (%s): %w", n.index+1, n.c.opt.Binary, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.exitErr, n.paused = cmd, done, nil, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== miniocluster %s: node %d exited: %v\n", time.Now().Format(time.RFC3339Nano), n.index+1, err)
		f.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// env is the process environment: ours without any MINIO_* of the caller
// (a developer's MINIO_ROOT_USER must not leak into tests), then the
// harness's variables, then Options.Env (later entries win in os/exec).
func (n *Node) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if hasPrefix(kv, "MINIO_") || hasPrefix(kv, "_MINIO_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"MINIO_ROOT_USER="+n.c.opt.RootUser,
		"MINIO_ROOT_PASSWORD="+n.c.opt.RootPassword,
		// No root-drive / container checks: drives are plain temp dirs.
		"MINIO_CI_CD=1",
		// All endpoints are 127.0.0.1: tell each process which one it is.
		"_MINIO_SERVER_LOCAL="+n.S3Addr(),
	)
	return append(env, n.c.opt.Env...)
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// Kill sends SIGKILL (a crash) and waits until the process is reaped. Killing
// a node that is not running is not an error.
func (n *Node) Kill() error {
	n.mu.Lock()
	if !n.runningLocked() {
		n.mu.Unlock()
		return nil
	}
	cmd, done := n.cmd, n.done
	n.paused = false
	n.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("miniocluster: kill node %d: %w", n.index+1, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("miniocluster: node %d (pid %d) still not reaped 15s after SIGKILL", n.index+1, cmd.Process.Pid)
	}
}

// Terminate sends SIGTERM (MinIO shuts down gracefully: it answers requests
// on connections still open with 503 "http: Server closed" and finishes the
// ones it was serving, as during `mc admin service restart` or an upgrade)
// and waits until the process exited; after timeout it is killed.
// Terminating a node that is not running is not an error.
func (n *Node) Terminate(timeout time.Duration) error {
	n.mu.Lock()
	if !n.runningLocked() {
		n.mu.Unlock()
		return nil
	}
	cmd, done := n.cmd, n.done
	n.paused = false
	n.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("miniocluster: terminate node %d: %w", n.index+1, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return n.Kill()
	}
}

// Stop sends SIGSTOP: the process hangs with its sockets open (connections
// are accepted by the kernel and never answered), like a frozen VM.
func (n *Node) Stop() error { return n.signal(syscall.SIGSTOP, true) }

// Cont sends SIGCONT to a node stopped with Stop.
func (n *Node) Cont() error { return n.signal(syscall.SIGCONT, false) }

// Paused reports whether the node was stopped with Stop and not continued.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.runningLocked()
}

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return fmt.Errorf("miniocluster: node %d is not running (cannot send %v)", n.index+1, sig)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("miniocluster: %v node %d: %w", sig, n.index+1, err)
	}
	n.paused = paused
	if sig == syscall.SIGSTOP {
		// Signal delivery is asynchronous: return once every thread of
		// the process is stopped, so a caller's next request cannot be
		// served by a thread that had not stopped yet.
		return waitStopped(n.cmd.Process.Pid, 2*time.Second)
	}
	return nil
}

// waitStopped polls /proc until every thread of pid is in state T
// (stopped), bounded by timeout.
func waitStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("miniocluster: reading the threads of pid %d: %v", pid, err)
		}
		stopped := 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			// the state follows the command name in parentheses
			if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("miniocluster: pid %d: %d of %d threads stopped after %s", pid, stopped, len(tasks), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Restart kills the node if it runs, starts it again on the same ports and
// drive, and waits until it is ready.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.Kill(); err != nil {
		return err
	}
	if err := n.Launch(); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// exited returns the exit error if the process has exited, nil and false
// while it runs.
func (n *Node) exited() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return true, errors.New("never started")
	}
	select {
	case <-n.done:
		return true, n.exitErr
	default:
		return false, nil
	}
}
