package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elasti-mesh/elasti/integration/proc"
)

// binaries are the built programs.
type binaries struct {
	scaler, extproc string
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
)

// build compiles elasti-scaler and elasti-extproc into dir, once per process.
func build(ctx context.Context, dir string) (binaries, error) {
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(dir, "bin")
		for name, out := range map[string]*string{"elasti-scaler": &built.scaler, "elasti-extproc": &built.extproc} {
			*out = filepath.Join(bin, name)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", *out, "./cmd/"+name)
			cmd.Dir = root
			if msg, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("failed to build %s: %w: %s", name, err, msg)
				return
			}
		}
	})
	return built, buildErr
}

// repoRoot is the folder of the module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("failed to locate the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(gomod), nil
}

// StartScaler starts elasti-scaler replica i (it joins the leader election) and
// adds it to the activation Service's endpoints.
func (s *Stack) StartScaler(ctx context.Context, i int) (*proc.Process, error) {
	addrs := map[string]string{}
	for _, k := range []string{"activation", "metrics", "probes"} {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[k] = a
	}
	name := fmt.Sprintf("elasti-scaler-%d", i)
	p, err := proc.Start(proc.Spec{
		Path: s.bins.scaler,
		Args: []string{
			"--prometheus-address=" + s.cluster.PrometheusURL,
			"--polling-interval=" + s.opts.PollingInterval.String(),
			"--query-timeout=" + (s.opts.PollingInterval * 9 / 10).String(),
			"--propagation-delay=" + s.opts.ScalerPropagationDelay.String(),
			"--activation-address=" + addrs["activation"],
			"--metrics-address=" + addrs["metrics"],
			"--health-probe-address=" + addrs["probes"],
			"--leader-election-namespace=" + InstallNamespace,
			"--log-level=debug",
		},
		Env:     environ(s.cluster.KubeconfigPath),
		LogPath: s.logPath(name),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	c := &component{name: name, proc: p, addrs: addrs}
	if err := waitHTTP(ctx, "http://"+addrs["probes"]+"/healthz", p.Done()); err != nil {
		p.Stop(time.Second)
		return nil, fmt.Errorf("%s did not become healthy (log %s): %w", name, s.logPath(name), err)
	}

	s.mu.Lock()
	for len(s.scalers) <= i {
		s.scalers = append(s.scalers, nil)
	}
	s.scalers[i] = c
	s.mu.Unlock()
	s.updateScalerEndpoints()
	return p, nil
}

// KillScaler ends scaler replica i with SIGKILL, as a node failure would, and
// removes it from the activation Service's endpoints.
func (s *Stack) KillScaler(i int) {
	s.mu.Lock()
	c := s.scalers[i]
	s.scalers[i] = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	s.updateScalerEndpoints()
	c.proc.Signal(syscall.SIGKILL)
	<-c.proc.Done()
}

// updateScalerEndpoints points the activation address at the live replicas,
// as the headless Service's DNS does once a pod is gone.
func (s *Stack) updateScalerEndpoints() {
	s.mu.Lock()
	var backends []string
	for _, c := range s.scalers {
		if c != nil {
			backends = append(backends, c.addrs["activation"])
		}
	}
	s.mu.Unlock()
	s.scalerLB.setBackends(backends)
}

// StartExtProc starts an elasti-extproc instance and makes it the one the
// emulated Envoy opens new streams to. A previous instance, if any, is sent
// SIGTERM and drains its held requests, as in a rolling restart.
func (s *Stack) StartExtProc(ctx context.Context) error {
	addrs := map[string]string{}
	for _, k := range []string{"grpc", "metrics"} {
		a, err := freeAddr()
		if err != nil {
			return err
		}
		addrs[k] = a
	}
	s.mu.Lock()
	n := 0
	if s.extproc != nil {
		n = 1
	}
	s.mu.Unlock()
	name := fmt.Sprintf("elasti-extproc-%d", n)
	p, err := proc.Start(proc.Spec{
		Path: s.bins.extproc,
		Args: []string{
			"--address=" + addrs["grpc"],
			"--metrics-address=" + addrs["metrics"],
			"--scaler-address=" + s.scalerLB.addr(),
			"--propagation-delay=" + s.opts.ReleaseDelay.String(),
			"--log-level=debug",
		},
		Env:     environ(s.cluster.KubeconfigPath),
		LogPath: s.logPath(name),
	})
	if err != nil {
		return fmt.Errorf("failed to start %s: %w", name, err)
	}
	if err := waitHTTP(ctx, "http://"+addrs["metrics"]+"/readyz", p.Done()); err != nil {
		p.Stop(time.Second)
		return fmt.Errorf("%s did not become ready (log %s): %w", name, s.logPath(name), err)
	}

	s.mu.Lock()
	old := s.extproc
	s.extproc = &component{name: name, proc: p, addrs: addrs}
	s.ExtProcMetricsURL = "http://" + addrs["metrics"] + "/metrics"
	s.mu.Unlock()
	s.extprocLB.setBackends([]string{addrs["grpc"]})
	if old != nil {
		s.mu.Lock()
		s.retired = append(s.retired, old)
		s.mu.Unlock()
		old.proc.Signal(syscall.SIGTERM)
	}
	return nil
}
