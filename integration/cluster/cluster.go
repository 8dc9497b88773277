// Package cluster starts a local Kubernetes cluster for tests with one call: etcd,
// kube-apiserver and kube-controller-manager as child processes, an in-process node
// agent that runs pods as local processes, Prometheus, and the Istio and KEDA CRDs.
//
// Pods of the image testapp.Image run the test app. Pod IPs come from podnet.Prefix;
// reach a pod through Loopback or podnet.DialContext, never at its pod IP.
//
// Every child process dies with the test binary, even when it panics or times out.
// Use Main in TestMain so that one package's tests share one cluster:
//
//	func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}) }
//
//	func TestServes(t *testing.T) {
//		c := cluster.Shared(t)
//		ns := c.NewNamespace(t)
//		// create a Service "web" and a Deployment of testapp.Container(...) in ns
//		ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "web", 1, time.Minute)
//		if err != nil {
//			t.Fatal(err)
//		}
//		lo, _ := c.Loopback(ips[0]) // dial lo, never ips[0]
//	}
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/nodeagent"
	"github.com/elasti-mesh/elasti/integration/podnet"
	"github.com/elasti-mesh/elasti/integration/proc"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// Options configure Start. The zero value works.
type Options struct {
	// AssetsDir holds etcd, kube-apiserver and kube-controller-manager. Defaults to
	// KUBEBUILDER_ASSETS, else to the folder hack/controlplane.sh prints.
	AssetsDir string
	// PrometheusPath is the Prometheus program. Defaults to /usr/bin/prometheus.
	PrometheusPath string
	// Dir receives certificates, data and every process's log. Defaults to a new
	// temporary folder, which Stop removes unless KeepDir is set.
	Dir string
	// KeepDir keeps Dir after Stop, for example because a test failed.
	KeepDir bool
	// Programs maps more images to programs for the node agent, in addition to
	// testapp.Image. Defaults to none.
	Programs map[string]string
	// CRDDirs are folders whose *.yaml CustomResourceDefinitions are installed besides
	// Istio's and KEDA's. Nil means the repository's manifests/crd, if it exists; an
	// empty slice means none.
	CRDDirs []string
	// Scheme is the scheme of Cluster.Client. Defaults to client-go's scheme plus
	// apiextensions/v1.
	Scheme *runtime.Scheme
	// Log receives the harness's and the node agent's log. Defaults to discarding.
	Log logr.Logger
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	for image, path := range o.Programs {
		if image == testapp.Image {
			return fmt.Errorf("image %q is reserved for the test app", image)
		}
		if !fileExists(path) {
			return fmt.Errorf("program %q for image %q does not exist", path, image)
		}
	}
	return nil
}

// Cluster is a running local cluster. Its fields are set by Start and must not be
// changed; its methods are safe for concurrent use.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file with the same credentials.
	KubeconfigPath string
	// Client is a controller-runtime client without cache, built from Config.
	Client client.Client
	// Clientset is a client-go clientset built from Config.
	Clientset kubernetes.Interface
	// Dir holds the cluster's files; logs are Dir/*.log and Dir/pods/*.log.
	Dir string
	// PrometheusURL is Prometheus's base URL, for example http://127.0.0.1:9090.
	PrometheusURL string
	// TestAppPath is the built test app program.
	TestAppPath string

	opts       Options
	pki        *pki
	agent      *nodeagent.Agent
	targetsDir string
	stopOnce   sync.Once

	// mu guards procs.
	mu    sync.Mutex
	procs []namedProcess
}

type namedProcess struct {
	name string
	p    *proc.Process
}

// Start brings up a cluster and returns once the API server serves, the controllers
// run, the node is registered, Prometheus answers and every CRD is established. On
// error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid cluster options: %w", err)
	}
	c := &Cluster{opts: opts}
	if err := c.start(ctx); err != nil {
		c.opts.KeepDir = true
		c.Stop()
		return nil, fmt.Errorf("%w (logs in %q)", err, c.Dir)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	began := time.Now()
	if err := c.prepare(ctx); err != nil {
		return err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if c.opts.AssetsDir == "" {
		if c.opts.AssetsDir, err = FindAssets(ctx, root); err != nil {
			return err
		}
	}

	// Work that does not need the API server runs beside its start.
	var side sync.WaitGroup
	var buildErr, promErr, crdErr error
	var crdPaths []string
	side.Go(func() { c.TestAppPath, buildErr = buildTestApp(ctx, root, c.Dir) })
	side.Go(func() { promErr = c.startPrometheus(ctx) })
	side.Go(func() { crdPaths, crdErr = CRDFiles(ctx, root, c.opts.CRDDirs) })

	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		side.Wait()
		return err
	}
	c.opts.Log.V(1).Info("etcd ready", "elapsed", since(began))
	if err := c.startAPIServer(ctx, etcdURL); err != nil {
		side.Wait()
		return err
	}
	c.opts.Log.V(1).Info("kube-apiserver ready", "elapsed", since(began))
	if err := c.newClients(); err != nil {
		side.Wait()
		return err
	}
	if err := c.startControllerManager(); err != nil {
		side.Wait()
		return err
	}
	side.Wait()
	if err := errors.Join(buildErr, promErr, crdErr); err != nil {
		return err
	}
	c.opts.Log.V(1).Info("test app built, prometheus ready", "elapsed", since(began))

	if err := c.startAgent(ctx); err != nil {
		return err
	}
	if err := c.installCRDs(ctx, crdPaths); err != nil {
		return err
	}
	c.opts.Log.V(1).Info("CRDs established", "count", len(crdPaths), "elapsed", since(began))
	if err := c.waitForControllers(ctx); err != nil {
		return err
	}
	c.opts.Log.Info("cluster started", "dir", c.Dir, "apiServer", c.Config.Host,
		"prometheus", c.PrometheusURL, "elapsed", since(began))
	return nil
}

// prepare applies defaults and creates the cluster's folder and credentials.
func (c *Cluster) prepare(ctx context.Context) error {
	if c.opts.PrometheusPath == "" {
		c.opts.PrometheusPath = "/usr/bin/prometheus"
	}
	if c.opts.Scheme == nil {
		c.opts.Scheme = runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(c.opts.Scheme); err != nil {
			return fmt.Errorf("failed to build scheme: %w", err)
		}
		if err := apiextensionsv1.AddToScheme(c.opts.Scheme); err != nil {
			return fmt.Errorf("failed to build scheme: %w", err)
		}
	}
	c.Dir = c.opts.Dir
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "elasti-cluster-")
		if err != nil {
			return fmt.Errorf("failed to create cluster folder: %w", err)
		}
		c.Dir = dir
	}
	if err := os.MkdirAll(c.PodLogDir(), 0o755); err != nil {
		return fmt.Errorf("failed to create pod log folder: %w", err)
	}
	p, err := newPKI(c.Dir)
	if err != nil {
		return err
	}
	c.pki = p
	return ctx.Err()
}

func (c *Cluster) newClients() error {
	cl, err := client.New(c.Config, client.Options{Scheme: c.opts.Scheme})
	if err != nil {
		return fmt.Errorf("failed to create client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("failed to create clientset: %w", err)
	}
	c.Client, c.Clientset = cl, cs
	return nil
}

func (c *Cluster) startAgent(ctx context.Context) error {
	programs := map[string]string{testapp.Image: c.TestAppPath}
	for image, path := range c.opts.Programs {
		programs[image] = path
	}
	agent, err := nodeagent.New(c.Config, nodeagent.Options{
		Programs: programs,
		LogDir:   c.PodLogDir(),
		Log:      c.opts.Log.WithName("nodeagent"),
	})
	if err != nil {
		return err
	}
	if err := agent.Start(ctx); err != nil {
		return fmt.Errorf("failed to start node agent: %w", err)
	}
	c.agent = agent
	return nil
}

// PodLogDir holds one log per pod container, named namespace_pod_container.log.
func (c *Cluster) PodLogDir() string { return filepath.Join(c.Dir, "pods") }

// NodeName returns the name of the only node.
func (c *Cluster) NodeName() string { return c.agent.NodeName() }

// Loopback returns the loopback address where the pod with podIP listens; it reports
// false for addresses that are not pod IPs. See package podnet.
func (c *Cluster) Loopback(podIP netip.Addr) (netip.Addr, bool) {
	return podnet.Loopback(podIP)
}

// Stop ends the node agent (killing every pod process), then Prometheus, the
// controller-manager, the API server and etcd, and removes Dir unless KeepDir is set
// or a process could not be ended. Calling it again does nothing.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.agent != nil {
			c.agent.Stop()
		}
		c.mu.Lock()
		procs := c.procs
		c.procs = nil
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].p.Stop(5 * time.Second)
		}
		if !c.opts.KeepDir && c.Dir != "" && c.opts.Dir == "" {
			os.RemoveAll(c.Dir)
		}
	})
}

// Processes returns the process id of each child the cluster runs (etcd,
// kube-apiserver, kube-controller-manager, prometheus), by name. Pod processes are not
// included.
func (c *Cluster) Processes() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.procs))
	for _, np := range c.procs {
		out[np.name] = np.p.Pid()
	}
	return out
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
