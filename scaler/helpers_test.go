package scaler_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/testapp"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
	"github.com/elasti-mesh/elasti/scaler"
)

const appName = "testapp"

var appLabels = map[string]string{"app": appName}

// recordingRouter is a Router that records each call. It stands in for the Istio
// route switch where routes are not what a test checks. It is safe for concurrent
// use.
type recordingRouter struct {
	// replicasOf, when set, reads the target's replicas at each call, so a test
	// can check what the routes were switched before or after.
	replicasOf func(es *v1alpha1.ElastiService) int32

	// mu guards calls.
	mu    sync.Mutex
	calls []routeCall
}

type routeCall struct {
	service  string
	mode     v1alpha1.Mode
	at       time.Time
	replicas int32
}

func (r *recordingRouter) Hold(_ context.Context, es *v1alpha1.ElastiService) error {
	r.record(es, v1alpha1.ModeHold)
	return nil
}

func (r *recordingRouter) Serve(_ context.Context, es *v1alpha1.ElastiService) error {
	r.record(es, v1alpha1.ModeServe)
	return nil
}

func (r *recordingRouter) record(es *v1alpha1.ElastiService, m v1alpha1.Mode) {
	var n int32 = -1
	if r.replicasOf != nil {
		n = r.replicasOf(es)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, routeCall{
		service: es.Namespace + "/" + es.Spec.Service, mode: m, at: time.Now(), replicas: n,
	})
}

// firstHold returns the first Hold call for the service.
func (r *recordingRouter) firstHold(service string) (routeCall, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.service == service && c.mode == v1alpha1.ModeHold {
			return c, true
		}
	}
	return routeCall{}, false
}

// last returns the latest mode set for the service, and when it was first set in
// the run of equal calls that ends the record.
func (r *recordingRouter) last(service string) (v1alpha1.Mode, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mode v1alpha1.Mode
	var since time.Time
	for _, c := range r.calls {
		if c.service != service {
			continue
		}
		if c.mode != mode {
			mode, since = c.mode, c.at
		}
	}
	return mode, since
}

// testScaler is one running scaler process, in this test binary.
type testScaler struct {
	*scaler.Scaler
	router *recordingRouter
	stop   func()
	done   chan struct{}
}

// startScaler runs a scaler against the cluster with leader election on a Lease in
// leaseNS. Its cleanup deletes the ElastiServices of ns first, while the scaler
// still runs, so their finalizers are released.
func startScaler(t *testing.T, c *cluster.Cluster, ns string, opts scaler.Options) *testScaler {
	t.Helper()
	router := &recordingRouter{replicasOf: func(es *v1alpha1.ElastiService) int32 {
		got, err := replicas(context.Background(), c, es.Namespace)
		if err != nil {
			return -1
		}
		return got
	}}
	ts := newScaler(t, c, ns, opts, router)
	t.Cleanup(func() {
		deleteElastiServices(t, c, ns)
		ts.stop()
	})
	return ts
}

func newScaler(
	t *testing.T,
	c *cluster.Cluster,
	leaseNS string,
	opts scaler.Options,
	router scaler.Router,
) *testScaler {
	t.Helper()
	mo := scaler.ManagerOptions{
		ActivationAddress: "127.0.0.1:0",
		MetricsAddress:    "0",
		ProbeAddress:      "0",
		LeaseNamespace:    leaseNS,
		LeaseName:         "elasti-scaler",
		LeaseDuration:     3 * time.Second,
		RenewDeadline:     2 * time.Second,
		RetryPeriod:       200 * time.Millisecond,
	}
	mgr, s, err := scaler.NewManager(c.Config, mo, opts, func(manager.Manager) (scaler.Router, error) {
		return router, nil
	})
	if err != nil {
		t.Fatalf("NewManager() error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testScaler{Scaler: s, done: make(chan struct{})}
	if rr, ok := router.(*recordingRouter); ok {
		ts.router = rr
	}
	go func() {
		defer close(ts.done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager stopped with error: %v", err)
		}
	}()
	var once sync.Once
	ts.stop = func() { once.Do(func() { cancel(); <-ts.done }) }
	return ts
}

func deleteElastiServices(t *testing.T, c *cluster.Cluster, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Client.DeleteAllOf(ctx, &v1alpha1.ElastiService{}, client.InNamespace(ns)); err != nil {
		t.Errorf("failed to delete ElastiServices: %v", err)
		return
	}
	waitFor(t, 30*time.Second, "ElastiServices of "+ns+" to be gone", func(ctx context.Context) (bool, error) {
		var list v1alpha1.ElastiServiceList
		err := c.Client.List(ctx, &list, client.InNamespace(ns))
		return err == nil && len(list.Items) == 0, err
	})
}

// testOptions are scaler options with short periods for tests.
func testOptions(c *cluster.Cluster, job string) scaler.Options {
	return scaler.Options{
		PollingInterval:   time.Second,
		PropagationDelay:  300 * time.Millisecond,
		QueryTimeout:      time.Second,
		ResyncPeriod:      5 * time.Second,
		PrometheusAddress: c.PrometheusURL,
		UptimeFilter:      fmt.Sprintf("job=%q", job),
	}
}

// waitFor polls cond every 100 ms until it is true or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			ok, err := cond(ctx)
			lastErr = err
			return ok, nil
		})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
	}
}

// exporter serves an Istio-style request counter for one destination service on
// loopback, for Prometheus to scrape. Its counter only moves when a test says so.
type exporter struct {
	dest     string
	requests atomic.Int64
	addr     string
}

func startExporter(t *testing.T, c *cluster.Cluster, job, dest string) *exporter {
	t.Helper()
	e := &exporter{dest: dest}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE istio_requests_total counter\n")
		fmt.Fprintf(w, "istio_requests_total{destination_service=%q,response_code=\"200\"} %d\n",
			e.dest, e.requests.Load())
	})}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	e.addr = lis.Addr().String()
	if err := c.AddScrapeTarget(job, e.addr); err != nil {
		t.Fatalf("AddScrapeTarget() error = %v", err)
	}
	return e
}

// busy makes the counter rise by 10 a second until the returned stop is called
// or a minute passes.
func (e *exporter) busy() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(time.Minute)
		for {
			select {
			case <-done:
				return
			case <-deadline:
				return
			case <-tick.C:
				e.requests.Add(1)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// trafficQuery is the seed's trigger query with a window short enough for tests:
// Prometheus scrapes every second, so five seconds hold enough samples for rate().
func trafficQuery(ns string) string {
	return fmt.Sprintf(`sum(rate(istio_requests_total{destination_service="%s.%s.svc.cluster.local"}[5s])) or vector(0)`,
		appName, ns)
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{testapp.Container(testapp.ContainerOptions{})},
			TerminationGracePeriodSeconds: ptr.To[int64](2),
		},
	}
}

func newDeployment(ns string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: podTemplate(),
		},
	}
}

func newService(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: appLabels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

// newElastiService returns an ElastiService for the test app's Deployment with one
// traffic trigger.
func newElastiService(ns string, cooldown int32, query string) *v1alpha1.ElastiService {
	return &v1alpha1.ElastiService{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: v1alpha1.ElastiServiceSpec{
			ScaleTargetRef: v1alpha1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: appName},
			Service:        appName,
			CooldownPeriod: ptr.To(cooldown),
			Triggers: []v1alpha1.ScaleTrigger{{
				Type:     v1alpha1.TriggerPrometheus,
				Metadata: v1alpha1.TriggerMetadata{Query: query, Threshold: "0.01"},
			}},
		},
	}
}

func create(t testing.TB, c *cluster.Cluster, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("failed to create %T %q: %v", o, o.GetName(), err)
		}
	}
}

// replicas returns the Deployment's spec.replicas.
func replicas(ctx context.Context, c *cluster.Cluster, ns string) (int32, error) {
	var d appsv1.Deployment
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, &d); err != nil {
		return 0, err
	}
	return ptr.Deref(d.Spec.Replicas, 1), nil
}

func waitReplicas(t testing.TB, c *cluster.Cluster, ns string, want int32, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("Deployment at %d replicas", want), func(ctx context.Context) (bool, error) {
		got, err := replicas(ctx, c, ns)
		return got == want, err
	})
}

func getES(ctx context.Context, c *cluster.Cluster, ns string) (*v1alpha1.ElastiService, error) {
	es := &v1alpha1.ElastiService{}
	err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, es)
	return es, err
}

// waitCondition waits until the ElastiService's condition has the status and reason.
func waitCondition(
	t testing.TB,
	c *cluster.Cluster,
	ns, condType string,
	status metav1.ConditionStatus,
	reason string,
	timeout time.Duration,
) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	waitFor(t, timeout, fmt.Sprintf("condition %s=%s (%s)", condType, status, reason),
		func(ctx context.Context) (bool, error) {
			es, err := getES(ctx, c, ns)
			if err != nil {
				return false, err
			}
			got = meta.FindStatusCondition(es.Status.Conditions, condType)
			if got == nil {
				return false, fmt.Errorf("no %s condition", condType)
			}
			return got.Status == status && got.Reason == reason,
				fmt.Errorf("%s is %s (%s): %s", condType, got.Status, got.Reason, got.Message)
		})
	return got
}

func waitMode(t testing.TB, c *cluster.Cluster, ns string, want v1alpha1.Mode, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "mode "+string(want), func(ctx context.Context) (bool, error) {
		es, err := getES(ctx, c, ns)
		return err == nil && es.Status.Mode == want, err
	})
}

// dialActivation connects to a scaler's activation API.
func dialActivation(t testing.TB, addr string) activationv1.ActivationServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("failed to dial %q: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return activationv1.NewActivationServiceClient(conn)
}

// waitRounds waits until the scaler has finished n more trigger evaluation rounds.
func waitRounds(t testing.TB, s *testScaler, n int) {
	t.Helper()
	target := s.RoundsDone() + uint64(n)
	waitFor(t, time.Duration(n)*10*time.Second, fmt.Sprintf("%d evaluation rounds", n),
		func(context.Context) (bool, error) { return s.RoundsDone() >= target, nil })
}

// waitBusy waits until the trigger reads at or above its threshold, so that a test
// does not start from the zero the seed's query gives before Prometheus has two
// samples of the counter.
func waitBusy(t testing.TB, c *cluster.Cluster, ns string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the trigger to read busy", func(ctx context.Context) (bool, error) {
		es, err := getES(ctx, c, ns)
		if err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionTriggersHealthy)
		if cond == nil || cond.Reason != "Evaluated" {
			return false, nil
		}
		v, err := strconv.ParseFloat(strings.TrimPrefix(cond.Message, "trigger values: "), 64)
		return err == nil && v >= 0.01, nil
	})
}
