package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/extproc/envoytest"
)

// checkLeaks fails the test if goroutines it started outlive it. Registered
// first, it runs after every other cleanup.
func checkLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

func holdRequest(ns, svc string) envoytest.Request {
	return envoytest.Request{
		ClusterName: envoytest.ClusterName(ns, svc, 80),
		RouteName:   HoldRouteName,
		Path:        "/work",
		Authority:   svc + "." + ns + ".svc.cluster.local",
	}
}

func TestHoldThenRelease(t *testing.T) {
	checkLeaks(t)
	const delay = 300 * time.Millisecond
	env := startEnv(t, Options{PropagationDelay: delay}, nil)
	es := testES("ns", "a")
	env.dir.Upsert(es)
	svc := ServiceKey{"ns", "a"}

	const n = 50
	results := doMany(t.Context(), env.envoy, holdRequest("ns", "a"), n)
	waitFor(t, "all requests held", 10*time.Second, func() bool { return env.server.Held(svc) == n })

	readyAt := time.Now()
	env.readiness.SetSlice(svc, "a-1", true)
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("Do() error = %v", r.err)
		}
		if !r.res.Continued || r.res.TimedOut {
			t.Fatalf("Do() = %+v, want CONTINUE", r.res)
		}
		if got := r.at.Sub(readyAt); got < delay {
			t.Errorf("released %v after readiness, want at least the %v propagation delay", got, delay)
		}
		if want := es.Spec.HoldTimeoutDuration() + DefaultTimeoutMargin; r.res.Override != want {
			t.Errorf("override = %v, want %v", r.res.Override, want)
		}
	}
	if env.scaler.calls.Load() == 0 {
		t.Error("Activate was never called")
	}

	// Released: the next request continues at once, with no override.
	res, err := env.envoy.Do(t.Context(), holdRequest("ns", "a"))
	if err != nil || !res.Continued || res.Overrides != 0 {
		t.Errorf("Do() after release = %+v, %v, want CONTINUE without override", res, err)
	}
}

func TestCoalescesActivation(t *testing.T) {
	checkLeaks(t)
	scaler := &fakeScaler{gate: make(chan struct{})}
	env := startEnv(t, Options{PropagationDelay: time.Millisecond}, scaler)
	env.dir.Upsert(testES("ns", "a"))
	svc := ServiceKey{"ns", "a"}

	// A burst of 1000 streams on a busy 2-core machine can take longer than
	// Envoy's default 200ms to get each override out; this test is about
	// coalescing, so the emulated filter gets the mesh's 1s and more.
	env.envoy.MessageTimeout = 10 * time.Second
	const n = 1000
	results := doMany(t.Context(), env.envoy, holdRequest("ns", "a"), n)
	waitFor(t, "all requests held", time.Minute, func() bool { return env.server.Held(svc) == n })
	if got := scaler.calls.Load(); got != 1 {
		t.Errorf("Activate calls while one blocks = %d, want 1", got)
	}

	close(scaler.gate)
	env.readiness.SetSlice(svc, "a-1", true)
	for range n {
		if r := <-results; r.err != nil || !r.res.Continued {
			t.Fatalf("Do() = %+v, %v, want CONTINUE", r.res, r.err)
		}
	}
	if got := scaler.maxInFlight.Load(); got != 1 {
		t.Errorf("most Activate calls in flight = %d, want 1", got)
	}
}

func TestHoldTimeout(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	es := testES("ns", "a")
	es.Spec.HoldTimeout = &metav1.Duration{Duration: time.Second}
	env.dir.Upsert(es)

	start := time.Now()
	res, err := env.envoy.Do(t.Context(), holdRequest("ns", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < time.Second {
		t.Errorf("answered after %v, want at least the 1s hold timeout", got)
	}
	if res.TimedOut {
		t.Fatal("Envoy's message timeout fired before elasti-extproc answered")
	}
	if got := res.Immediate.GetStatus().GetCode(); got != 504 {
		t.Errorf("status = %d, want 504", got)
	}
	want := "service ns/a did not become ready within 1s\n"
	if got := string(res.Immediate.GetBody()); got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got := env.server.Held(ServiceKey{"ns", "a"}); got != 0 {
		t.Errorf("Held() after timeout = %d, want 0", got)
	}
}

func TestShedOverCap(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	es := testES("ns", "a")
	es.Spec.MaxHeldRequests = 2
	env.dir.Upsert(es)
	svc := ServiceKey{"ns", "a"}

	ctx, cancel := context.WithCancel(t.Context())
	held := doMany(ctx, env.envoy, holdRequest("ns", "a"), 2)
	waitFor(t, "two requests held", 10*time.Second, func() bool { return env.server.Held(svc) == 2 })

	res, err := env.envoy.Do(t.Context(), holdRequest("ns", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Immediate.GetStatus().GetCode(); got != 503 {
		t.Errorf("status = %d, want 503", got)
	}
	if got, _ := res.HeaderValue("retry-after"); got != "5" {
		t.Errorf("retry-after = %q, want %q", got, "5")
	}
	wantBody := "service ns/a has too many requests waiting for it; retry later\n"
	if got := string(res.Immediate.GetBody()); got != wantBody {
		t.Errorf("body = %q, want %q", got, wantBody)
	}
	if res.Overrides != 0 {
		t.Errorf("overrides = %d, want 0 for a shed request", res.Overrides)
	}

	cancel()
	for range 2 {
		<-held
	}
}

func TestClientGoneRemovesWaiter(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	env.dir.Upsert(testES("ns", "a"))
	svc := ServiceKey{"ns", "a"}

	ctx, cancel := context.WithCancel(t.Context())
	done := doMany(ctx, env.envoy, holdRequest("ns", "a"), 1)
	waitFor(t, "request held", 10*time.Second, func() bool { return env.server.Held(svc) == 1 })
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Errorf("Do() error = %v, want context.Canceled", r.err)
	}
	waitFor(t, "waiter removed", time.Second, func() bool { return env.server.Held(svc) == 0 })
}

func TestUnknownServiceAndProbe(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	env.dir.Upsert(testES("ns", "a", v1alpha1.ProbeResponseRule{
		Method:   "GET",
		Path:     &v1alpha1.ProbePathMatch{Type: v1alpha1.PathMatchExact, Value: "/healthz"},
		Response: v1alpha1.ProbeResponse{Status: 200, Body: `{"status":"ok"}`},
	}))

	t.Run("unknown service", func(t *testing.T) {
		res, err := env.envoy.Do(t.Context(), holdRequest("ns", "nobody"))
		if err != nil || !res.Continued || res.Overrides != 0 {
			t.Errorf("Do() = %+v, %v, want CONTINUE at once", res, err)
		}
	})
	t.Run("no attributes", func(t *testing.T) {
		res, err := env.envoy.Do(t.Context(), envoytest.Request{Authority: "a.ns.svc.cluster.local"})
		if err != nil || !res.Continued {
			t.Errorf("Do() = %+v, %v, want CONTINUE", res, err)
		}
	})
	t.Run("probe rule", func(t *testing.T) {
		req := holdRequest("ns", "a")
		req.Path = "/healthz"
		res, err := env.envoy.Do(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Immediate.GetStatus().GetCode(); got != 200 {
			t.Errorf("status = %d, want 200", got)
		}
		if got := string(res.Immediate.GetBody()); got != `{"status":"ok"}` {
			t.Errorf("body = %q", got)
		}
		if got, _ := res.HeaderValue("content-type"); got != "application/json" {
			t.Errorf("content-type = %q, want application/json", got)
		}
	})
	if got := env.scaler.calls.Load(); got != 0 {
		t.Errorf("Activate calls = %d, want 0", got)
	}
}

func TestSpoofedHostCannotActivateOtherService(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	env.dir.Upsert(testES("ns", "a"))
	env.dir.Upsert(testES("ns", "b"))
	svcA := ServiceKey{"ns", "a"}

	req := holdRequest("ns", "a")
	req.Authority = "b.ns.svc.cluster.local"
	req.Headers = map[string]string{"host": "b.ns.svc.cluster.local", "x-forwarded-host": "b.ns"}
	ctx, cancel := context.WithCancel(t.Context())
	done := doMany(ctx, env.envoy, req, 1)
	waitFor(t, "request held for a", 10*time.Second, func() bool { return env.server.Held(svcA) == 1 })
	waitFor(t, "an activation", 10*time.Second, func() bool { return env.scaler.calls.Load() > 0 })

	if got := env.server.Held(ServiceKey{"ns", "b"}); got != 0 {
		t.Errorf("Held(b) = %d, want 0", got)
	}
	for _, name := range env.scaler.calledNames() {
		if name != "ns/a-es" {
			t.Errorf("Activate(%q), want only ns/a-es", name)
		}
	}
	cancel()
	<-done
}

func TestGracefulDrain(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{DrainTimeout: 10 * time.Second}, nil)
	env.dir.Upsert(testES("ns", "a"))
	svc := ServiceKey{"ns", "a"}

	held := doMany(t.Context(), env.envoy, holdRequest("ns", "a"), 3)
	waitFor(t, "requests held", 10*time.Second, func() bool { return env.server.Held(svc) == 3 })
	env.cancel()
	waitFor(t, "draining", 5*time.Second, env.serving.Draining)

	// A new stream is refused while held ones keep waiting.
	if _, err := env.envoy.Do(t.Context(), holdRequest("ns", "a")); err == nil {
		t.Error("Do() during drain succeeded, want the new stream refused")
	}
	if got := env.server.Held(svc); got != 3 {
		t.Fatalf("Held() during drain = %d, want 3", got)
	}

	env.readiness.SetSlice(svc, "a-1", true)
	for range 3 {
		if r := <-held; r.err != nil || !r.res.Continued {
			t.Errorf("held Do() during drain = %+v, %v, want CONTINUE", r.res, r.err)
		}
	}
	env.stop(t)
}

// TestDrainSkipsAnsweredStreams pins that an answered request leaves nothing
// for a drain to wait for, even under a proxy that keeps its side of the stream
// open for the whole HTTP request (Envoy releases older than those that close
// the stream once processing is done).
func TestDrainSkipsAnsweredStreams(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{DrainTimeout: time.Minute}, nil)
	env.dir.Upsert(testES("ns", "a"))
	env.readiness.SetSlice(ServiceKey{"ns", "a"}, "a-1", true)
	waitFor(t, "service released", 5*time.Second, func() bool { return env.readiness.Released(ServiceKey{"ns", "a"}) })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := extprocv3.NewExternalProcessorClient(env.conn).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(envoytest.Headers(holdRequest("ns", "a"))); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetRequestHeaders() == nil {
		t.Fatalf("Recv() = %v, %v, want the request_headers answer", resp, err)
	}
	// Our side stays open, as a long download through the hold route would
	// keep it; the server has ended the stream already.
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv() after the answer = %v, want EOF", err)
	}

	drained := make(chan struct{})
	go func() { env.stop(t); close(drained) }()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Error("the drain was still waiting 10s after it began, with nothing held")
		<-drained // ends with the drain timeout; the test must outlive the stop
	}
}

func TestDrainTimeoutAnswersHeld(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{DrainTimeout: 300 * time.Millisecond}, nil)
	env.dir.Upsert(testES("ns", "a"))
	svc := ServiceKey{"ns", "a"}

	held := doMany(t.Context(), env.envoy, holdRequest("ns", "a"), 2)
	waitFor(t, "requests held", 10*time.Second, func() bool { return env.server.Held(svc) == 2 })
	env.stop(t)
	for range 2 {
		r := <-held
		if r.err != nil {
			t.Fatalf("Do() = %v", r.err)
		}
		if got := r.res.Immediate.GetStatus().GetCode(); got != 503 {
			t.Errorf("status = %d, want 503", got)
		}
		want := fmt.Sprintf("service %s is not ready yet and elasti-extproc is shutting down; retry\n", svc)
		if got := string(r.res.Immediate.GetBody()); got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
	}
}
