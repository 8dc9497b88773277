package extproc

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/extproc/envoytest"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// startAPIServer starts a real etcd and kube-apiserver with the ElastiService
// CRD, and returns a client for them.
func startAPIServer(t *testing.T) (client.Client, *envtest.Environment) {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		out, err := exec.Command("../hack/controlplane.sh").Output()
		if err != nil {
			t.Fatalf("failed to locate control-plane binaries: %v", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"../manifests/crd"},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("failed to start the API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, discoveryv1.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c, env
}

// endpointSlice returns a slice of Service ns/svc with one endpoint in the
// given state.
func endpointSlice(ns, name, svc string, ready, terminating bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.200.0.7"},
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(terminating)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
	}
}

// TestReleaseOnRealEndpointSlice holds requests for a Service, drives its
// EndpointSlice through not-ready and terminating states in a real API server
// (nothing is released), then makes it ready: every request is released, none
// before the propagation delay.
func TestReleaseOnRealEndpointSlice(t *testing.T) {
	c, env := startAPIServer(t)
	ctx := t.Context()
	const ns, delay, n = "shop", 500 * time.Millisecond, 20

	mustCreate := func(obj client.Object) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("failed to create %T %q: %v", obj, obj.GetName(), err)
		}
	}
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	mustCreate(testES(ns, "api"))
	mustCreate(endpointSlice(ns, "api-1", "api", false, false))

	log := logr.Discard()
	dir, readiness := NewDirectory(log), NewReadiness(delay)
	defer readiness.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watcher, err := NewWatcher(watchCtx, log, env.Config, []string{ns}, dir, readiness)
	if err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); _ = watcher.Start(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }()
	if !watcher.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}

	envoy, server := serveForTest(t, log, dir, readiness)
	svc := ServiceKey{ns, "api"}
	results := doMany(ctx, envoy, holdRequest(ns, "api"), n)
	waitFor(t, "requests held", 30*time.Second, func() bool { return server.Held(svc) == n })

	// Terminating (even if ready), then plainly not ready: nothing released.
	// A marker Service's slice, updated after each change, proves the informer
	// has delivered the change before the check.
	marker := endpointSlice(ns, "marker-1", "marker", false, false)
	mustCreate(marker)
	for i, s := range []*discoveryv1.EndpointSlice{
		endpointSlice(ns, "api-1", "api", true, true),
		endpointSlice(ns, "api-1", "api", false, false),
	} {
		update(t, c, s)
		update(t, c, endpointSlice(ns, "marker-1", "marker", i%2 == 0, false))
		waitFor(t, "marker change seen", 10*time.Second, func() bool {
			return readiness.EndpointsReady(ServiceKey{ns, "marker"}) == (i%2 == 0)
		})
		if readiness.EndpointsReady(svc) || server.Held(svc) != n || len(results) != 0 {
			t.Fatalf("step %d: endpointsReady %v, held %d, answered %d; want false, %d, 0",
				i, readiness.EndpointsReady(svc), server.Held(svc), len(results), n)
		}
	}

	readyAt := time.Now()
	update(t, c, endpointSlice(ns, "api-1", "api", true, false))
	for range n {
		r := <-results
		if r.err != nil || !r.res.Continued {
			t.Fatalf("Do() = %+v, %v, want CONTINUE", r.res, r.err)
		}
		if got := r.at.Sub(readyAt); got < delay {
			t.Errorf("released %v after the slice became ready, want at least %v", got, delay)
		}
	}
}

// update replaces an EndpointSlice's endpoints with those of s.
func update(t *testing.T, c client.Client, s *discoveryv1.EndpointSlice) {
	t.Helper()
	var cur discoveryv1.EndpointSlice
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(s), &cur); err != nil {
		t.Fatal(err)
	}
	cur.Endpoints = s.Endpoints
	if err := c.Update(t.Context(), &cur); err != nil {
		t.Fatal(err)
	}
}

// serveForTest serves an ext_proc Server over dir and readiness on loopback,
// with a fake scaler, and returns an Envoy-like client for it.
func serveForTest(
	t *testing.T,
	log logr.Logger,
	dir *Directory,
	readiness *Readiness,
) (*envoytest.Client, *Server) {
	t.Helper()
	scalerLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scalerSrv := grpc.NewServer()
	activationv1.RegisterActivationServiceServer(scalerSrv, &fakeScaler{})
	go func() { _ = scalerSrv.Serve(scalerLis) }()
	t.Cleanup(scalerSrv.Stop)
	scalerConn, err := grpc.NewClient(scalerLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = scalerConn.Close() })

	opts := Options{}.WithDefaults()
	server := NewServer(log, opts, dir, readiness,
		activationv1.NewActivationServiceClient(scalerConn), NewMetrics(nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	serving := Start(ctx, server, lis, opts.DrainTimeout)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = serving.Wait()
		server.Close()
		_ = conn.Close()
	})
	return envoytest.New(conn, opts.MaxMessageTimeout), server
}
