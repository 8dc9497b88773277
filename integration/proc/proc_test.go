package proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as a parent that starts a long sleep through
// Start, prints its pid and then dies the way the variable says.
const childEnv = "PROC_TEST_PARENT"

func TestMain(m *testing.M) {
	if how := os.Getenv(childEnv); how != "" {
		p, err := Start(Spec{Path: "/bin/sleep", Args: []string{"60"}})
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(p.Pid()) + "\n")
		if how == "panic" {
			panic("parent dies")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestChildrenDieWithParent checks that a child does not outlive the program that
// started it, whether that program exits or panics.
func TestChildrenDieWithParent(t *testing.T) {
	for _, how := range []string{"exit", "panic"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+how)
			out, _ := cmd.Output()
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatalf("parent printed %q, want a pid", out)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) && !isZombie(pid) {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("child %d outlived its parent", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// isZombie reports whether pid has exited but is not reaped yet (its new parent, often
// not us, reaps it).
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] == "Z"
}

func TestStopEscalatesToKill(t *testing.T) {
	// The shell ignores SIGTERM once it says so, so only SIGKILL ends it.
	log := filepath.Join(t.TempDir(), "sh.log")
	p, err := Start(Spec{
		Path:    "/bin/sh",
		Args:    []string{"-c", "trap '' TERM; echo trapped; sleep 30 & wait"},
		LogPath: log,
	})
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(log)
		if strings.Contains(string(data), "trapped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shell never installed its trap")
		}
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	p.Stop(200 * time.Millisecond)
	if elapsed := time.Since(began); elapsed < 200*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Stop() took %s, want about the 200ms grace", elapsed)
	}
	if p.ExitCode() != -1 {
		t.Errorf("ExitCode() = %d, want -1 (killed by a signal)", p.ExitCode())
	}
}
