package scaler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// TestFullCycle runs the seed's traffic trigger against the real Prometheus: a
// service idle for its cooldown goes to zero (routes held before the scale write),
// and an activation brings it back to minTargetReplicas and to serve. Fifty
// concurrent activations make a single scale write.
func TestFullCycle(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	exp := startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	stopTraffic := exp.busy()
	defer stopTraffic()

	s := startScaler(t, c, ns, testOptions(c, ns))
	create(t, c, newService(ns), newDeployment(ns, 1), newElastiService(ns, 2, trafficQuery(ns)))
	if _, err := c.WaitForReadyEndpoints(context.Background(), ns, appName, 1, time.Minute); err != nil {
		t.Fatalf("the workload never became ready: %v", err)
	}
	waitMode(t, c, ns, v1alpha1.ModeServe, 30*time.Second)
	waitCondition(t, c, ns, v1alpha1.ConditionTriggersHealthy, metav1.ConditionTrue, "Evaluated", 30*time.Second)

	// Busy: several rounds pass above the threshold and nothing is scaled.
	waitRounds(t, s, 4)
	if got, err := replicas(context.Background(), c, ns); err != nil || got != 1 {
		t.Fatalf("replicas while busy = %d (%v), want 1", got, err)
	}

	// Idle: the rate drops to zero and the workload goes to zero after the
	// routes were held.
	stopTraffic()
	waitReplicas(t, c, ns, 0, time.Minute)
	if mode, _ := s.router.last(ns + "/" + appName); mode != v1alpha1.ModeHold {
		t.Fatalf("route mode at zero = %q, want %q", mode, v1alpha1.ModeHold)
	}
	if hold, ok := s.router.firstHold(ns + "/" + appName); !ok || hold.replicas != 1 {
		t.Fatalf("first Hold() saw %d replicas (called: %v), want 1: routes must be held before the scale-down",
			hold.replicas, ok)
	}
	waitMode(t, c, ns, v1alpha1.ModeHold, 10*time.Second)

	// Keep it down for the rest of the test, then activate fifty times at once.
	patchCooldown(t, c, ns, 600)
	before := generation(t, c, ns)
	api := dialActivation(t, s.ActivationAddr().String())
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			resp, err := api.Activate(context.Background(),
				&activationv1.ActivateRequest{Namespace: ns, Name: appName})
			if err == nil && resp.GetDesiredReplicas() != 1 {
				t.Errorf("Activate() desired = %d, want 1", resp.GetDesiredReplicas())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Activate() error = %v", err)
		}
	}
	if got := generation(t, c, ns) - before; got != 1 {
		t.Errorf("Deployment generation moved by %d after 50 activations, want 1 (one scale write)", got)
	}
	waitReplicas(t, c, ns, 1, time.Second)

	// Ready: the activation answers READY and the routes go back to serve.
	waitFor(t, time.Minute, "Activate() to answer READY", func(ctx context.Context) (bool, error) {
		resp, err := api.Activate(ctx, &activationv1.ActivateRequest{Namespace: ns, Name: appName})
		return err == nil && resp.GetState() == activationv1.ActivateResponse_STATE_READY, err
	})
	waitMode(t, c, ns, v1alpha1.ModeServe, 30*time.Second)
	es, err := getES(context.Background(), c, ns)
	if err != nil {
		t.Fatal(err)
	}
	if es.Status.LastScaledUpTime == nil || time.Since(es.Status.LastScaledUpTime.Time) > time.Minute {
		t.Errorf("lastScaledUpTime = %v, want a recent time", es.Status.LastScaledUpTime)
	}
	if mode, _ := s.router.last(ns + "/" + appName); mode != v1alpha1.ModeServe {
		t.Errorf("route mode after activation = %q, want %q", mode, v1alpha1.ModeServe)
	}
}

func patchCooldown(t testing.TB, c *cluster.Cluster, ns string, seconds int32) {
	t.Helper()
	es, err := getES(context.Background(), c, ns)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(es.DeepCopy())
	es.Spec.CooldownPeriod = &seconds
	if err := c.Client.Patch(context.Background(), es, patch); err != nil {
		t.Fatalf("failed to patch cooldown: %v", err)
	}
}

func generation(t testing.TB, c *cluster.Cluster, ns string) int64 {
	t.Helper()
	var d appsv1.Deployment
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: appName}, &d); err != nil {
		t.Fatal(err)
	}
	return d.Generation
}
