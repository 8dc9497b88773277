// Command sandbox runs elasti on a local cluster and shows its main job: a
// service goes to zero when idle, a request for it is held while it comes back,
// and the request is answered. It then keeps everything running for kubectl and
// curl until interrupted.
//
// Everything is local: a real kube-apiserver, etcd and kube-controller-manager, a
// node agent that runs pods as processes, Prometheus, elasti-scaler and
// elasti-extproc built from this repository, and an emulated Envoy sidecar in
// front of them, configured by the shipped EnvoyFilter.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run() error {
	startup := flag.Duration("startup-delay", 2*time.Second, "how long the sample app takes to start")
	cooldown := flag.Int("cooldown", 10, "the sample ElastiService's cooldownPeriod, in seconds")
	flag.Parse()
	if *startup < 0 || *cooldown < 0 {
		return fmt.Errorf("--startup-delay and --cooldown must not be negative")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctrllog.SetLogger(logr.Discard())
	tl := newTimeline()

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		istionetworking.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return err
		}
	}

	tl.note("starting the local cluster (the first run builds the control plane: a few minutes)")
	c, err := cluster.Start(ctx, cluster.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	defer c.Stop()
	tl.note("cluster up; building and starting elasti-scaler, elasti-extproc and the Envoy emulator")
	s, err := stack.Start(ctx, c, stack.Options{SourceNamespace: sampleNamespace})
	if err != nil {
		return err
	}
	defer s.Stop()

	if err := deploySample(ctx, c, *startup, int32(*cooldown)); err != nil {
		return err
	}
	tl.note("deployed %s/%s: Deployment, Service and ElastiService (cooldown %ds)",
		sampleNamespace, sampleName, *cooldown)
	if err := showColdStart(ctx, c, s, tl); err != nil {
		return err
	}

	fmt.Printf(`
The sandbox keeps running. Try:

  export KUBECONFIG=%s
  kubectl get elastiservices -A
  curl -H 'Host: %s.%s' %s/

The service goes back to zero %ds after its last scale-up when idle; the next
request wakes it again. Logs: %s
Press Ctrl-C to stop.
`, c.KubeconfigPath, sampleName, sampleNamespace, s.ProxyURL, *cooldown, c.Dir)
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// showColdStart waits for the sample to go to zero, sends it a request and
// narrates what happens.
func showColdStart(ctx context.Context, c *cluster.Cluster, s *stack.Stack, tl *timeline) error {
	w := newWatcher(c)
	tl.note("waiting for the service to be idle (its Prometheus trigger below 0.01 req/s)")
	if err := w.until(ctx, 5*time.Minute, func(st sampleState) bool { return st.atZero() }); err != nil {
		return err
	}
	tl.note("scaled to zero: mode hold, 0 replicas")

	done := make(chan string, 1)
	go func() { done <- get(ctx, s.ProxyURL, sampleName+"."+sampleNamespace) }()
	tl.note("GET / sent through the sidecar: held by elasti-extproc")
	go w.narrate(ctx, tl)
	answer := <-done
	tl.note("answered: %s", answer)
	return w.until(ctx, time.Minute, func(st sampleState) bool { return st.Mode == v1alpha1.ModeServe })
}

func get(ctx context.Context, base, host string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return err.Error()
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Sprintf("%s, body %q", resp.Status, body)
}
