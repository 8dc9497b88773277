// Package stack runs the whole system on a local cluster: elasti-scaler and
// elasti-extproc as processes, built from this repository, and the Envoy
// emulator in front of them, configured by the project's own EnvoyFilter. The
// end-to-end scenarios and the sandbox both start it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/envoyemu"
	"github.com/elasti-mesh/elasti/integration/proc"
)

// InstallNamespace is where the components keep their Lease, as installed.
const InstallNamespace = "elasti-system"

// Options configure Start. The zero value works.
type Options struct {
	// PollingInterval is elasti-scaler's trigger evaluation interval. Defaults to 1s.
	PollingInterval time.Duration
	// ScalerPropagationDelay is how long elasti-scaler waits after switching a
	// service to hold before scaling it to zero. Defaults to 300ms.
	ScalerPropagationDelay time.Duration
	// ReleaseDelay is elasti-extproc's propagation delay: how long after a ready
	// endpoint appears it releases held requests. Defaults to 500ms.
	ReleaseDelay time.Duration
	// EndpointLag delays endpoint changes in the emulated Envoy. Defaults to a
	// fixed 200ms, below ReleaseDelay, as a healthy mesh would be.
	EndpointLag *envoyemu.Lag
	// Scalers is the number of elasti-scaler replicas. Defaults to 1.
	Scalers int
	// SourceNamespace is the emulated sidecar's namespace. Defaults to "default".
	SourceNamespace string
	// Log receives the stack's own log. Defaults to discarding.
	Log logr.Logger
}

func (o *Options) defaults() {
	if o.PollingInterval == 0 {
		o.PollingInterval = time.Second
	}
	if o.ScalerPropagationDelay == 0 {
		o.ScalerPropagationDelay = 300 * time.Millisecond
	}
	if o.ReleaseDelay == 0 {
		o.ReleaseDelay = 500 * time.Millisecond
	}
	if o.EndpointLag == nil {
		o.EndpointLag = &envoyemu.Lag{Min: 200 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	if o.Scalers == 0 {
		o.Scalers = 1
	}
	if o.SourceNamespace == "" {
		o.SourceNamespace = "default"
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
}

// Stack is a running system. Its methods are safe for concurrent use.
type Stack struct {
	// Proxy is the emulated sidecar; ProxyURL is its base URL.
	Proxy    *envoyemu.Proxy
	ProxyURL string
	// ExtProcMetricsURL is elasti-extproc's /metrics.
	ExtProcMetricsURL string

	opts     Options
	cluster  *cluster.Cluster
	bins     binaries
	cancel   context.CancelFunc
	scalerLB *forwarder
	// extprocLB stands for the elasti-extproc Service the EnvoyFilter names.
	extprocLB *forwarder

	// mu guards the processes.
	mu      sync.Mutex
	scalers []*component
	extproc *component
	retired []*component // extproc instances replaced by a restart
}

// component is one running elasti process.
type component struct {
	name string
	proc *proc.Process
	// addrs are the loopback addresses it serves, by purpose.
	addrs map[string]string
}

// Start builds the two programs (once per test binary) and starts them and
// the emulated sidecar on c.
func Start(ctx context.Context, c *cluster.Cluster, opts Options) (*Stack, error) {
	opts.defaults()
	bins, err := build(ctx, c.Dir)
	if err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, c, InstallNamespace); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Stack{opts: opts, cluster: c, bins: bins, cancel: cancel}
	if err := s.start(ctx, runCtx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx, runCtx context.Context) error {
	lb, err := newForwarder(runCtx)
	if err != nil {
		return err
	}
	s.scalerLB = lb
	if s.extprocLB, err = newForwarder(runCtx); err != nil {
		return err
	}
	for i := range s.opts.Scalers {
		if _, err := s.StartScaler(ctx, i); err != nil {
			return err
		}
	}
	if err := s.StartExtProc(ctx); err != nil {
		return err
	}
	return s.startProxy(ctx, runCtx)
}

// startProxy runs the emulated sidecar and has Prometheus scrape its Istio
// metrics.
func (s *Stack) startProxy(ctx, runCtx context.Context) error {
	p, url, err := s.StartProxy(runCtx, *s.opts.EndpointLag)
	if err != nil {
		return err
	}
	s.Proxy, s.ProxyURL = p, url

	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(metricsLn) }()
	go func() {
		<-runCtx.Done()
		_ = srv.Close()
	}()
	return s.cluster.AddScrapeTarget("envoy", metricsLn.Addr().String())
}

// StartProxy runs another emulated sidecar with the shipped EnvoyFilter, pointed
// at elasti-extproc, until ctx ends, and returns it with its base URL. Tests use
// it for a proxy whose endpoints lag differently.
func (s *Stack) StartProxy(ctx context.Context, lag envoyemu.Lag) (*envoyemu.Proxy, string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, "", err
	}
	filter, err := envoyemu.LoadFilterConfig(filepath.Join(root, "manifests", "istio", "envoyfilter.yaml"),
		networkingv1alpha3.EnvoyFilter_SIDECAR_OUTBOUND)
	if err != nil {
		return nil, "", err
	}
	p, err := envoyemu.New(envoyemu.Options{
		Config: s.cluster.Config, Filter: filter, ExtProcAddress: s.extprocLB.addr(),
		SourceNamespace: s.opts.SourceNamespace, EndpointLag: lag,
		Logger: s.opts.Log.WithName("envoy"),
	})
	if err != nil {
		return nil, "", err
	}
	if err := p.Start(ctx); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	go func() { _ = p.Serve(ctx, ln) }()
	go func() {
		<-ctx.Done()
		_ = p.Close()
	}()
	return p, "http://" + ln.Addr().String(), nil
}

// Stop ends every process and the emulator.
func (s *Stack) Stop() {
	s.mu.Lock()
	comps := append(append([]*component{s.extproc}, s.scalers...), s.retired...)
	s.mu.Unlock()
	for _, c := range comps {
		if c != nil {
			c.proc.Stop(5 * time.Second)
		}
	}
	s.cancel()
}

// logPath is where a component's output goes, beside the cluster's logs.
func (s *Stack) logPath(name string) string {
	return filepath.Join(s.cluster.Dir, name+".log")
}

func ensureNamespace(ctx context.Context, c *cluster.Cluster, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %q: %w", name, err)
	}
	return nil
}

// freeAddr reserves a loopback port for a process to listen on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, done <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within 60s", url)
}

func environ(kubeconfig string) []string {
	env := []string{"KUBECONFIG=" + kubeconfig}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
