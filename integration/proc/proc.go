// Package proc starts the child processes of the local test cluster so that none of
// them can outlive the test binary.
//
// Every child runs in its own process group and gets SIGKILL from the kernel when the
// thread that forked it dies (Pdeathsig). Linux ties that signal to the forking thread,
// not the process, so all children are forked from one goroutine that holds its OS
// thread for the life of the program; the thread, and with it every child, ends only
// when the test binary ends, whether it returns, panics or times out.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	// Path is the program to run.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the complete environment; nil means an empty one.
	Env []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// LogPath receives stdout and stderr, appended; empty discards both.
	LogPath string
}

// Process is a started child. It is safe for concurrent use.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	// err is the result of Wait, readable once done is closed.
	err error
}

type startRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

var (
	forkerOnce sync.Once
	forkerReqs chan startRequest
)

// forker starts every child from one locked OS thread and never returns: if it did, the
// Go runtime would end the locked thread and the kernel would kill every child.
func forker() {
	runtime.LockOSThread()
	for req := range forkerReqs {
		req.reply <- req.cmd.Start()
	}
}

// Start starts the process described by s.
func Start(s Spec) (*Process, error) {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}

	var logFile *os.File
	if s.LogPath != "" {
		f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("failed to open log %q: %w", s.LogPath, err)
		}
		logFile = f
		cmd.Stdout = f
		cmd.Stderr = f
	}

	forkerOnce.Do(func() {
		forkerReqs = make(chan startRequest)
		go forker()
	})
	reply := make(chan error, 1)
	forkerReqs <- startRequest{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("failed to start %q: %w", s.Path, err)
	}

	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		// The group may hold children of the child; they go with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the exit code, or -1 if the process is running or was killed by a
// signal.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Err returns the error from waiting for the process, nil while it runs or if it
// exited with status 0.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Signal sends sig to the process group. Signalling an exited process does nothing.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.Pid(), sig)
	}
}

// Stop sends SIGTERM to the process group, waits up to grace for the process to exit,
// then sends SIGKILL and waits for it. A grace of zero kills at once.
func (p *Process) Stop(grace time.Duration) {
	if grace > 0 {
		p.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
	p.Signal(syscall.SIGKILL)
	<-p.done
}
