package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/stack"
	"github.com/elasti-mesh/elasti/integration/testapp/echopb"
	"github.com/elasti-mesh/elasti/istio"
)

// scaleWrites counts the changes of a Deployment's spec.replicas while it runs.
type scaleWrites struct {
	mu      sync.Mutex
	changes []int32
	stop    func()
}

func watchScale(t *testing.T, c *cluster.Cluster, ns, name string) *scaleWrites {
	t.Helper()
	w, err := c.Clientset.AppsV1().Deployments(ns).Watch(context.Background(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + name,
	})
	if err != nil {
		t.Fatal(err)
	}
	sw := &scaleWrites{stop: w.Stop}
	t.Cleanup(w.Stop)
	go func() {
		last := int32(-1)
		for ev := range w.ResultChan() {
			dep, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			n := ptr.Deref(dep.Spec.Replicas, 1)
			sw.mu.Lock()
			if last >= 0 && n != last {
				sw.changes = append(sw.changes, n)
			}
			last = n
			sw.mu.Unlock()
		}
	}()
	return sw
}

func (s *scaleWrites) get() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int32(nil), s.changes...)
}

// TestIdleToZeroThenColdGet is scenarios 1 and 2: the seed's Prometheus query
// drives an idle service to zero; a GET at zero gets 200, with one scale write,
// and the service returns to serve mode.
func TestIdleToZeroThenColdGet(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "web", idle: true, startupDelay: time.Second})
	waitAtZero(t, c, ns, "web")
	keepUp(t, c, ns, "web")

	writes := watchScale(t, c, ns, "web")
	r := do(s, http.MethodGet, "web."+ns, "/", nil, nil)
	if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "web-") {
		t.Fatalf("cold GET = %d %q, %v; want 200 from a web pod", r.status, r.body, r.err)
	}
	t.Logf("cold GET answered in %v (startup delay 1s)", r.took)
	waitServe(t, c, ns, "web")
	if got := writes.get(); len(got) != 1 || got[0] != 1 {
		t.Errorf("replica changes during the cold start = %v, want one write to 1", got)
	}
}

// TestConcurrentMixedColdRequests is scenario 3: 200 requests of every kind
// arrive while the service is at zero; every one succeeds.
func TestConcurrentMixedColdRequests(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "mixed", idle: true, startupDelay: 2 * time.Second})
	waitAtZero(t, c, ns, "mixed")
	keepUp(t, c, ns, "mixed")

	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	kinds := []struct {
		name  string
		run   func() result
		check func(result) error
	}{
		{"get", func() result { return do(s, http.MethodGet, "mixed."+ns, "/", nil, nil) }, nil},
		{"post 1MiB", func() result {
			return do(s, http.MethodPost, "mixed."+ns, "/echo", bytes.NewReader(payload), nil)
		}, func(r result) error {
			if r.body != string(payload) {
				return fmt.Errorf("echoed %d bytes, not the 1 MiB sent", len(r.body))
			}
			return nil
		}},
		{"chunked stream", func() result { return do(s, http.MethodGet, "mixed."+ns, "/stream/20", nil, nil) },
			func(r result) error {
				if r.header.Get("Content-Length") != "" {
					return fmt.Errorf("stream has Content-Length %q", r.header.Get("Content-Length"))
				}
				return nil
			}},
		{"drip", func() result { return do(s, http.MethodGet, "mixed."+ns, "/drip", nil, nil) }, nil},
		{"websocket echo", func() result { return websocketEcho(s, "mixed."+ns) }, nil},
		{"grpc unary", func() result { return grpcEcho(s, "mixed."+ns, 0) }, nil},
		{"grpc server stream", func() result { return grpcEcho(s, "mixed."+ns, 5) }, nil},
	}

	const n = 200
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = kinds[i%len(kinds)].run()
		}()
	}
	wg.Wait()

	var slowest time.Duration
	for i, r := range results {
		k := kinds[i%len(kinds)]
		if r.err != nil || r.status != 200 {
			t.Errorf("request %d (%s) = %d, %v; want 200", i, k.name, r.status, r.err)
			continue
		}
		if k.check != nil {
			if err := k.check(r); err != nil {
				t.Errorf("request %d (%s): %v", i, k.name, err)
			}
		}
		slowest = max(slowest, r.took)
	}
	t.Logf("%d cold requests, slowest %v (startup delay 2s)", n, slowest)
}

// TestHoldTimeout is scenario 5: a hold timeout shorter than the app's startup
// answers 504 with the documented body, and the service still comes up.
func TestHoldTimeout(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "slow", idle: true, startupDelay: 6 * time.Second, holdTimeout: 2 * time.Second})
	waitAtZero(t, c, ns, "slow")
	keepUp(t, c, ns, "slow")

	r := do(s, http.MethodGet, "slow."+ns, "/", nil, nil)
	want := fmt.Sprintf("service %s/slow did not become ready within 2s\n", ns)
	if r.err != nil || r.status != 504 || r.body != want {
		t.Errorf("GET with a 2s hold timeout = %d %q, %v; want 504 %q", r.status, r.body, r.err, want)
	}
	if r.took < 2*time.Second || r.took > 5*time.Second {
		t.Errorf("504 after %v, want about 2s", r.took)
	}
	waitServe(t, c, ns, "slow")
	if r := do(s, http.MethodGet, "slow."+ns, "/", nil, nil); r.status != 200 {
		t.Errorf("GET once up = %d, want 200", r.status)
	}
}

// TestHeldRequestCap is scenario 6: past maxHeldRequests, the excess gets 503
// with Retry-After at once, and only the excess.
func TestHeldRequestCap(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "capped", idle: true, startupDelay: 3 * time.Second, maxHeld: 5})
	waitAtZero(t, c, ns, "capped")
	keepUp(t, c, ns, "capped")

	const n = 8
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = do(s, http.MethodGet, "capped."+ns, "/", nil, nil)
		}()
	}
	wg.Wait()

	ok, shed := 0, 0
	for i, r := range results {
		switch {
		case r.err == nil && r.status == 200:
			ok++
		case r.err == nil && r.status == 503 && r.header.Get("Retry-After") != "":
			shed++
			if r.took > time.Second {
				t.Errorf("request %d shed after %v, want at once", i, r.took)
			}
		default:
			t.Errorf("request %d = %d %q, %v; want 200, or 503 with Retry-After", i, r.status, r.body, r.err)
		}
	}
	if ok != 5 || shed != 3 {
		t.Errorf("%d served and %d shed, want 5 and 3", ok, shed)
	}
}

// TestProbeAnsweredLocally is scenario 7: a probe rule is answered by
// elasti-extproc and the workload stays at zero.
func TestProbeAnsweredLocally(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "probed", idle: true, probes: []v1alpha1.ProbeResponseRule{{
		Method:   "GET",
		Path:     &v1alpha1.ProbePathMatch{Type: v1alpha1.PathMatchExact, Value: "/healthz"},
		Response: v1alpha1.ProbeResponse{Status: 200, Body: `{"ok":true}`},
	}}})
	waitAtZero(t, c, ns, "probed")
	keepUp(t, c, ns, "probed")

	for range 5 {
		r := do(s, http.MethodGet, "probed."+ns, "/healthz", nil, nil)
		if r.err != nil || r.status != 200 || r.body != `{"ok":true}` {
			t.Fatalf("probe = %d %q, %v; want 200 {\"ok\":true}", r.status, r.body, r.err)
		}
	}
	// Give a wrongly triggered activation time to show.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n := replicas(t, c, ns, "probed"); n != 0 {
			t.Fatalf("replicas = %d after probes, want 0", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTwoServicesWakeIndependently is scenario 12: traffic to A wakes only A.
func TestTwoServicesWakeIndependently(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "svca", idle: true})
	deploy(t, c, ns, app{name: "svcb", idle: true})
	waitAtZero(t, c, ns, "svca")
	keepUp(t, c, ns, "svca")
	waitAtZero(t, c, ns, "svcb")
	keepUp(t, c, ns, "svcb")

	if r := do(s, http.MethodGet, "svca."+ns, "/", nil, nil); r.status != 200 || !strings.HasPrefix(r.body, "svca-") {
		t.Fatalf("GET svca = %d %q, %v", r.status, r.body, r.err)
	}
	if n := replicas(t, c, ns, "svcb"); n != 0 {
		t.Errorf("svcb replicas = %d after traffic to svca, want 0", n)
	}
}

// TestRequestReachesAppUnchanged is scenario 11: method, Host, query, custom
// headers and body of a held request reach the app as sent.
func TestRequestReachesAppUnchanged(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "echo", idle: true})
	waitAtZero(t, c, ns, "echo")
	keepUp(t, c, ns, "echo")

	r := do(s, http.MethodPut, "echo."+ns, "/headers?a=1&b=two", strings.NewReader("body"), http.Header{
		"X-Custom":      {"value 1", "value 2"},
		"Authorization": {"Bearer token"},
	})
	if r.err != nil || r.status != 200 {
		t.Fatalf("PUT /headers = %d %q, %v", r.status, r.body, r.err)
	}
	for _, want := range []string{`"X-Custom"`, "value 1", "value 2", "Bearer token", `"Host"`, "echo"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("echoed request %s lacks %q", r.body, want)
		}
	}
}

// TestWarmPathBypassesExtProc is scenario 8: in serve mode no request reaches
// elasti-extproc.
func TestWarmPathBypassesExtProc(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "warm"})
	waitFor(t, time.Minute, "warm ready", func() bool {
		return do(s, http.MethodGet, "warm."+ns, "/", nil, nil).status == 200
	})

	before, _ := metricValue(t, s.ExtProcMetricsURL, "elasti_extproc_streams_total")
	for i := range 50 {
		if r := do(s, http.MethodGet, "warm."+ns, "/", nil, nil); r.status != 200 {
			t.Fatalf("warm request %d = %d, %v", i, r.status, r.err)
		}
	}
	after, _ := metricValue(t, s.ExtProcMetricsURL, "elasti_extproc_streams_total")
	if after != before {
		t.Errorf("ext_proc streams went from %v to %v over 50 warm requests, want no change", before, after)
	}
}

// TestDeleteAtZeroRestores is scenario 14: deleting the ElastiService at zero
// brings the target back and removes the hold.
func TestDeleteAtZeroRestores(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	es := deploy(t, c, ns, app{name: "gone", idle: true})
	waitAtZero(t, c, ns, "gone")
	keepUp(t, c, ns, "gone")

	if err := c.Client.Delete(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "target restored", func() bool { return replicas(t, c, ns, "gone") == 1 })
	waitFor(t, time.Minute, "served without elasti", func() bool {
		route, _, _ := s.Proxy.RouteFor(context.Background(), "gone."+ns, "/")
		return route != "elasti-hold" && do(s, http.MethodGet, "gone."+ns, "/", nil, nil).status == 200
	})
}

// TestHoldPutBackAtZero: at zero, the VirtualService that holds the service's
// traffic is deleted (a GitOps prune, a hand edit). The scaler watches
// VirtualServices and puts the hold back at once, not at its next resync (five
// minutes), and a cold request still wakes the service.
func TestHoldPutBackAtZero(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "pruned", idle: true})
	waitAtZero(t, c, ns, "pruned")
	keepUp(t, c, ns, "pruned")
	// The scaler is done with the spec change, so no reconcile of it is pending.
	waitFor(t, 30*time.Second, "the cooldown change to be reconciled", func() bool {
		es := &v1alpha1.ElastiService{}
		err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "pruned"}, es)
		return err == nil && es.Status.ObservedGeneration == es.Generation
	})

	owned := func(ctx context.Context) (*unstructured.Unstructured, error) {
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"})
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: istio.HoldRouteName + "-pruned"}, vs)
		return vs, err
	}
	before, err := owned(context.Background())
	if err != nil {
		t.Fatalf("the hold's VirtualService: %v", err)
	}
	if err := c.Client.Delete(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	waitFor(t, 30*time.Second, "the hold's VirtualService to be created again", func() bool {
		vs, err := owned(context.Background())
		return err == nil && vs.GetUID() != before.GetUID()
	})
	t.Logf("hold put back %v after the deletion", time.Since(began).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the proxy to route to the hold again", func() bool {
		route, _, _ := s.Proxy.RouteFor(context.Background(), "pruned."+ns, "/")
		return route == istio.HoldRouteName
	})
	if r := do(s, http.MethodGet, "pruned."+ns, "/", nil, nil); r.status != 200 {
		t.Fatalf("cold GET after the hold was put back = %d %q (%v), want 200", r.status, r.body, r.err)
	}
}

// TestZeroCooldownColdStart is a regression test: with cooldownPeriod 0, an idle
// verdict from before an activation once sent the service straight back to
// zero while requests were held for it, over and over, until they timed out.
func TestZeroCooldownColdStart(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "eager", idle: true, startupDelay: time.Second})
	waitAtZero(t, c, ns, "eager")

	r := do(s, http.MethodGet, "eager."+ns, "/", nil, nil)
	if r.err != nil || r.status != 200 {
		t.Fatalf("cold GET with a zero cooldown = %d %q, %v; want 200", r.status, r.body, r.err)
	}
}

// TestStatefulSetTarget is scenario 15: the same cold start with a StatefulSet.
func TestStatefulSetTarget(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "stateful", idle: true, statefulSet: true})
	waitAtZero(t, c, ns, "stateful")
	keepUp(t, c, ns, "stateful")

	r := do(s, http.MethodGet, "stateful."+ns, "/", nil, nil)
	if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "stateful-0") {
		t.Fatalf("cold GET = %d %q, %v; want 200 from stateful-0", r.status, r.body, r.err)
	}
	waitServe(t, c, ns, "stateful")
}

// TestKEDAPausedAtZero is scenario 13: the ScaledObject is paused with KEDA's
// annotations at scale-down and resumed at scale-up.
func TestKEDAPausedAtZero(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "keda", idle: true, keda: true})
	waitAtZero(t, c, ns, "keda")
	keepUp(t, c, ns, "keda")

	annotations := func() map[string]string {
		so := scaledObject(ns, "keda", "Deployment")
		if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(so), so); err != nil {
			t.Fatal(err)
		}
		return so.GetAnnotations()
	}
	got := annotations()
	if got["autoscaling.keda.sh/paused-replicas"] != "0" || got["autoscaling.keda.sh/paused"] != "true" {
		t.Errorf("ScaledObject annotations at zero = %v, want paused-replicas \"0\" and paused \"true\"", got)
	}

	if r := do(s, http.MethodGet, "keda."+ns, "/", nil, nil); r.status != 200 {
		t.Fatalf("cold GET = %d %q, %v", r.status, r.body, r.err)
	}
	waitFor(t, 30*time.Second, "ScaledObject resumed", func() bool {
		a := annotations()
		_, replicas := a["autoscaling.keda.sh/paused-replicas"]
		_, paused := a["autoscaling.keda.sh/paused"]
		return !replicas && !paused
	})
}

// websocketEcho upgrades through the sidecar and checks one echoed message; a
// success is reported as status 200.
func websocketEcho(s *stack.Stack, host string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.ProxyURL, "http")+"/ws",
		&websocket.DialOptions{Host: host})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return result{status: status, err: err, took: time.Since(start)}
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		return result{err: err}
	}
	_, got, err := conn.Read(ctx)
	if err != nil || string(got) != "ping" {
		return result{err: fmt.Errorf("echo %q, %v", got, err)}
	}
	return result{status: 200, took: time.Since(start)}
}

// grpcEcho calls the app's gRPC echo over h2c through the sidecar: unary when
// count is 0, else a server stream of count messages. A success is status 200.
func grpcEcho(s *stack.Stack, host string, count uint32) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	conn, err := grpc.NewClient(strings.TrimPrefix(s.ProxyURL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(host))
	if err != nil {
		return result{err: err}
	}
	defer conn.Close()
	client := echopb.NewEchoClient(conn)
	if count == 0 {
		resp, err := client.Echo(ctx, &echopb.EchoRequest{Payload: []byte("ping")})
		if err != nil || string(resp.Payload) != "ping" {
			return result{err: fmt.Errorf("unary echo: %v", err)}
		}
		return result{status: 200, took: time.Since(start)}
	}
	msgs, err := client.EchoStream(ctx, &echopb.EchoRequest{Payload: []byte("x"), Count: count})
	if err != nil || len(msgs) != int(count) {
		return result{err: fmt.Errorf("stream echo: %d messages, %v", len(msgs), err)}
	}
	return result{status: 200, took: time.Since(start)}
}
