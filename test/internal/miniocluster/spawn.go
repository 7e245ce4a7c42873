package miniocluster

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Pdeathsig is delivered when the *thread* that forked the child exits, not
// the process (golang/go#27505). Go may retire threads, so every child is
// forked from one goroutine locked to an OS thread that never exits: the
// signal then fires exactly when the test binary dies.

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func spawner() {
	runtime.LockOSThread() // never unlocked: this thread lives as long as the process
	for req := range spawnCh {
		req.done <- req.cmd.Start()
	}
}

// startWithDeathSignal starts cmd so that it gets SIGKILL when this process
// dies, in its own process group (a terminal's Ctrl-C reaches only us; we
// decide how the children end).
func startWithDeathSignal(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go spawner()
	})
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// StartWithDeathSignal is startWithDeathSignal for sibling harnesses (the
// caddy process runner) that want the same guarantee.
func StartWithDeathSignal(cmd *exec.Cmd) error { return startWithDeathSignal(cmd) }
