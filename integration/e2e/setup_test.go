package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/stack"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		istionetworking.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	cluster.Main(m, cluster.Options{Scheme: scheme})
}

var (
	stackOnce sync.Once
	shared    *stack.Stack
	stackErr  error
)

// system returns the package's cluster and running system, started once.
func system(t testing.TB) (*cluster.Cluster, *stack.Stack) {
	t.Helper()
	c := cluster.Shared(t)
	stackOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared, stackErr = stack.Start(ctx, c, stack.Options{})
		if stackErr == nil {
			cluster.BeforeStop(shared.Stop)
		}
	})
	if stackErr != nil {
		t.Fatalf("failed to start the system: %v", stackErr)
	}
	return c, shared
}

// app describes a workload under an ElastiService.
type app struct {
	name         string
	startupDelay time.Duration
	holdTimeout  time.Duration
	maxHeld      int32
	probes       []v1alpha1.ProbeResponseRule
	// idle makes the trigger report idle at once: cooldown 0 and no traffic.
	idle bool
	// statefulSet makes the workload a StatefulSet instead of a Deployment.
	statefulSet bool
	// keda adds a KEDA ScaledObject named after the app as the autoscaler.
	keda bool
}

// deploy creates the Service, Deployment (1 replica) and ElastiService of a.
// The trigger is the KEDA guide's query, run by the real Prometheus against
// the emulated sidecar's istio_requests_total.
func deploy(t testing.TB, c *cluster.Cluster, ns string, a app) *v1alpha1.ElastiService {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": a.name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromString("http"),
		}}},
	}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{testapp.Container(testapp.ContainerOptions{
				StartupDelay: a.startupDelay,
			})},
			TerminationGracePeriodSeconds: ptr.To[int64](2),
		},
	}
	var workload client.Object = &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
		},
	}
	kind := "Deployment"
	if a.statefulSet {
		kind = "StatefulSet"
		workload = &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To[int32](1), ServiceName: a.name,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: template,
			},
		}
	}
	cooldown := int32(3600)
	if a.idle {
		cooldown = 0
	}
	es := &v1alpha1.ElastiService{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns},
		Spec: v1alpha1.ElastiServiceSpec{
			Service:        a.name,
			ScaleTargetRef: v1alpha1.ScaleTargetRef{APIVersion: "apps/v1", Kind: kind, Name: a.name},
			CooldownPeriod: &cooldown,
			Triggers: []v1alpha1.ScaleTrigger{{
				Type: v1alpha1.TriggerPrometheus,
				Metadata: v1alpha1.TriggerMetadata{
					Query: fmt.Sprintf(`sum(rate(istio_requests_total{destination_service="%s.%s.svc.cluster.local"}[1m])) or vector(0)`,
						a.name, ns),
					ServerAddress: c.PrometheusURL,
					Threshold:     "0.01",
					// The query's data comes from the emulated sidecars.
					UptimeFilter: `job="envoy"`,
				},
			}},
			ProbeResponse:   a.probes,
			MaxHeldRequests: a.maxHeld,
		},
	}
	if a.holdTimeout > 0 {
		es.Spec.HoldTimeout = &metav1.Duration{Duration: a.holdTimeout}
	}
	objs := []client.Object{svc, workload, es}
	if a.keda {
		es.Spec.Autoscaler = &v1alpha1.AutoscalerSpec{Type: v1alpha1.AutoscalerKEDA, Name: a.name}
		objs = append(objs, scaledObject(ns, a.name, kind))
	}
	for _, obj := range objs {
		if err := c.Client.Create(ctx, obj); err != nil {
			t.Fatalf("failed to create %T %q: %v", obj, a.name, err)
		}
	}
	return es
}

// waitAtZero waits until the ElastiService is in hold and its Deployment has
// no replica and no ready endpoint.
func waitAtZero(t testing.TB, c *cluster.Cluster, ns, name string) {
	t.Helper()
	waitFor(t, 90*time.Second, fmt.Sprintf("%s/%s in hold at zero", ns, name), func() bool {
		es := &v1alpha1.ElastiService{}
		if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
			return false
		}
		return es.Status.Mode == v1alpha1.ModeHold && replicas(t, c, ns, name) == 0
	})
	if _, err := c.WaitForReadyEndpoints(context.Background(), ns, name, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// keepUp sets a long cooldown, so that once woken the service stays up for the
// rest of the test: the first request of a new series is invisible to rate(),
// and with a zero cooldown the service could go back to zero at once.
func keepUp(t testing.TB, c *cluster.Cluster, ns, name string) {
	t.Helper()
	es := &v1alpha1.ElastiService{}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(es.DeepCopy())
	es.Spec.CooldownPeriod = ptr.To[int32](3600)
	if err := c.Client.Patch(context.Background(), es, patch); err != nil {
		t.Fatal(err)
	}
}

// waitServe waits until the ElastiService is back in serve mode.
func waitServe(t testing.TB, c *cluster.Cluster, ns, name string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%s/%s in serve", ns, name), func() bool {
		es := &v1alpha1.ElastiService{}
		err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es)
		return err == nil && es.Status.Mode == v1alpha1.ModeServe
	})
}

// replicas returns the wanted replicas of the Deployment or StatefulSet name.
func replicas(t testing.TB, c *cluster.Cluster, ns, name string) int32 {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: name}
	dep := &appsv1.Deployment{}
	err := c.Client.Get(context.Background(), key, dep)
	if err == nil {
		return ptr.Deref(dep.Spec.Replicas, 1)
	}
	sts := &appsv1.StatefulSet{}
	if err := c.Client.Get(context.Background(), key, sts); err != nil {
		t.Fatalf("failed to get workload %s/%s: %v", ns, name, err)
	}
	return ptr.Deref(sts.Spec.Replicas, 1)
}

// scaledObject is a KEDA ScaledObject for the workload, as the KEDA guide has it.
// No KEDA controller runs here: the test checks what the scaler writes on it.
func scaledObject(ns, name, kind string) *unstructured.Unstructured {
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1",
		"kind":       "ScaledObject",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"minReplicaCount": int64(1), "maxReplicaCount": int64(1), "pollingInterval": int64(30),
			"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": name},
			"triggers": []any{map[string]any{"type": "cpu", "metricType": "Utilization",
				"metadata": map[string]any{"value": "50"}}},
		},
	}}
	return so
}

// result is one request's outcome.
type result struct {
	status int
	body   string
	header http.Header
	err    error
	took   time.Duration
}

// do sends a request through the emulated sidecar to host.
func do(s *stack.Stack, method, host, path string, body io.Reader, header http.Header) result {
	req, err := http.NewRequest(method, s.ProxyURL+path, body)
	if err != nil {
		return result{err: err}
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(data), header: resp.Header, err: err, took: time.Since(start)}
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue reads one sample from a Prometheus text endpoint: the first line
// starting with prefix (metric name and labels up to where they differ).
func metricValue(t *testing.T, url, prefix string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("failed to scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fields := strings.Fields(line)
			if _, err := fmt.Sscan(fields[len(fields)-1], &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}
