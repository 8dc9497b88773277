// Package nodeagent is the local test cluster's kubelet: it registers one Node, binds
// every unscheduled pod to it, runs each container as a local process and reports pod
// status the way a kubelet does, with readiness driven by the pod's own probes.
//
// A container's image selects a program from Options.Programs; the image's tag is
// ignored. Pods get IPs from podnet.Prefix and their processes listen on the matching
// loopback address (podnet.Loopback), passed to them as LISTEN_ADDR.
//
// What a kubelet does and this agent does not: volumes, init containers, exec probes,
// liveness and startup probes, resource limits, $(VAR) expansion in env and args, node
// heartbeats (no node lifecycle controller runs against it), and image pulls.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/elasti-mesh/elasti/integration/podnet"
)

// Options configure an Agent.
type Options struct {
	// NodeName is the Node to register. Defaults to "elasti-node".
	NodeName string
	// Programs maps an image name without tag (e.g. "elasti.test/testapp") to the
	// program run for containers of that image. Required.
	Programs map[string]string
	// LogDir receives one log file per container, named namespace_pod_container.log.
	// Required.
	LogDir string
	// Env is prepended to every process's environment. Defaults to none.
	Env []string
	// RestartBackoff is the first delay before restarting an exited container; it
	// doubles on each restart up to 16 times its value. Defaults to 500ms.
	RestartBackoff time.Duration
	// Log receives the agent's log. Defaults to a discarding logger.
	Log logr.Logger
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if len(o.Programs) == 0 {
		return errors.New("no programs configured")
	}
	if o.LogDir == "" {
		return errors.New("no log directory configured")
	}
	if o.RestartBackoff < 0 {
		return fmt.Errorf("negative restart backoff %s", o.RestartBackoff)
	}
	return nil
}

func (o *Options) defaults() {
	if o.NodeName == "" {
		o.NodeName = "elasti-node"
	}
	if o.RestartBackoff == 0 {
		o.RestartBackoff = 500 * time.Millisecond
	}
}

// Agent runs pods bound to its node. Start it once and Stop it once; its methods are
// safe for concurrent use.
type Agent struct {
	opts   Options
	client kubernetes.Interface
	log    logr.Logger
	ips    podnet.Allocator

	// runCtx is cancelled by Stop; every goroutine of the agent ends with it.
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards workers and binding.
	mu      sync.Mutex
	workers map[types.UID]*worker
	binding map[types.UID]bool
}

// New returns an agent that talks to the API server at cfg.
func New(cfg *rest.Config, opts Options) (*Agent, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid node agent options: %w", err)
	}
	opts.defaults()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create client: %w", err)
	}
	return &Agent{
		opts:    opts,
		client:  cs,
		log:     opts.Log.WithValues("node", opts.NodeName),
		workers: map[types.UID]*worker{},
		binding: map[types.UID]bool{},
	}, nil
}

// NodeName returns the name of the agent's Node.
func (a *Agent) NodeName() string { return a.opts.NodeName }

// Start registers the node and starts watching pods. It returns once the pod cache has
// synced; the agent then runs until Stop.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.registerNode(ctx); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	factory := informers.NewSharedInformerFactory(a.client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	_, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.onPod(runCtx, obj) },
		UpdateFunc: func(_, obj any) { a.onPod(runCtx, obj) },
		DeleteFunc: a.onPodDeleted,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("failed to add pod handler: %w", err)
	}
	factory.Start(runCtx.Done())
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-runCtx.Done()
		factory.Shutdown()
	}()

	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced) {
		a.Stop()
		return fmt.Errorf("failed to sync pod cache: %w", ctx.Err())
	}
	a.log.Info("node agent started")
	return nil
}

// Stop kills every pod's processes at once and waits for the agent's goroutines to end.
// Pods are left in the API as they are.
func (a *Agent) Stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.wg.Wait()
}

func (a *Agent) onPod(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName == "":
		a.maybeBind(ctx, pod)
	case pod.Spec.NodeName == a.opts.NodeName:
		a.syncWorker(ctx, pod)
	}
}

func (a *Agent) onPodDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	w := a.workers[pod.UID]
	delete(a.binding, pod.UID)
	a.mu.Unlock()
	if w != nil {
		// The object is gone, so nobody waits for a graceful end.
		w.terminate(0)
	}
}

// syncWorker starts a worker for a new pod of this node and passes deletion on to it.
func (a *Agent) syncWorker(ctx context.Context, pod *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()

	w := a.workers[pod.UID]
	if w == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return
		}
		if ctx.Err() != nil {
			return
		}
		w = newWorker(a, pod.DeepCopy())
		a.workers[pod.UID] = w
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run(ctx)
			a.mu.Lock()
			delete(a.workers, pod.UID)
			a.mu.Unlock()
		}()
	}
	if pod.DeletionTimestamp != nil {
		w.terminate(deletionGrace(pod))
	}
}

// deletionGrace is how long the pod's processes get between SIGTERM and SIGKILL.
func deletionGrace(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	default:
		return 30 * time.Second
	}
}

// program returns the program for an image, ignoring its tag or digest.
func (a *Agent) program(image string) (string, bool) {
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	p, ok := a.opts.Programs[name]
	return p, ok
}

// allocateIP hands out a pod IP and its loopback address.
func (a *Agent) allocateIP() (podIP, loopback netip.Addr, err error) {
	podIP, err = a.ips.Allocate()
	if err != nil {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("failed to allocate pod IP: %w", err)
	}
	loopback, _ = podnet.Loopback(podIP)
	return podIP, loopback, nil
}
