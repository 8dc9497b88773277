package envoyemu_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/envoyemu"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, istionetworking.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	cluster.Main(m, cluster.Options{Scheme: scheme})
}

// deployApp runs the test app as Deployment and Service "name" with the given
// replicas, and waits for that many ready endpoints.
func deployApp(t *testing.T, c *cluster.Cluster, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"),
			}},
		},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{testapp.Container(testapp.ContainerOptions{})},
					TerminationGracePeriodSeconds: ptr.To[int64](2),
				},
			},
		},
	}
	if err := c.Client.Create(ctx, svc); err != nil {
		t.Fatalf("failed to create Service %q: %v", name, err)
	}
	if err := c.Client.Create(ctx, dep); err != nil {
		t.Fatalf("failed to create Deployment %q: %v", name, err)
	}
	if replicas > 0 {
		waitEndpoints(t, c, ns, name, int(replicas))
	}
}

func waitEndpoints(t *testing.T, c *cluster.Cluster, ns, name string, n int) {
	t.Helper()
	if _, err := c.WaitForReadyEndpoints(context.Background(), ns, name, n, time.Minute); err != nil {
		t.Fatalf("service %s/%s never had %d ready endpoints: %v", ns, name, n, err)
	}
}

// startProxy runs an emulated sidecar in namespace ns and returns its base URL.
func startProxy(t *testing.T, c *cluster.Cluster, opts envoyemu.Options) (*envoyemu.Proxy, string) {
	t.Helper()
	opts.Config = c.Config
	p, err := envoyemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = p.Close()
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ctx, ln) }()
	return p, "http://" + ln.Addr().String()
}

// get sends a request through the proxy with the given Host.
func get(t *testing.T, base, host, path string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// servedBy reports which Deployment's pod answered, from the test app's name
// header (the pod name starts with the Deployment's name).
func servedBy(resp *http.Response) string {
	name := resp.Header.Get(testapp.NameHeader)
	if i := strings.Index(name, "-"); i > 0 {
		return name[:i]
	}
	return name
}

// fakeExtProc is an ext_proc server whose behaviour each test sets. It stands
// for elasti-extproc, so the emulator's Envoy side can be pinned on its own.
type fakeExtProc struct {
	extprocsvc.UnimplementedExternalProcessorServer
	handle  func(stream extprocsvc.ExternalProcessor_ProcessServer) error
	streams atomic.Int64
	addr    string
}

func (f *fakeExtProc) Process(stream extprocsvc.ExternalProcessor_ProcessServer) error {
	f.streams.Add(1)
	return f.handle(stream)
}

func startExtProc(t *testing.T, handle func(extprocsvc.ExternalProcessor_ProcessServer) error) *fakeExtProc {
	t.Helper()
	f := &fakeExtProc{handle: handle}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	extprocsvc.RegisterExternalProcessorServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	f.addr = ln.Addr().String()
	return f
}

// scale sets a Deployment's replicas.
func scale(t *testing.T, c *cluster.Cluster, ns, name string, replicas int32) {
	t.Helper()
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: ns, Name: name}
	if err := c.Client.Get(context.Background(), key, dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Replicas = ptr.To(replicas)
	if err := c.Client.Patch(context.Background(), dep, patch); err != nil {
		t.Fatalf("failed to scale %s/%s to %d: %v", ns, name, replicas, err)
	}
}
