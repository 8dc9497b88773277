package scaler_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

const (
	pausedReplicas = "autoscaling.keda.sh/paused-replicas"
	paused         = "autoscaling.keda.sh/paused"
)

func newScaledObject(ns string) *unstructured.Unstructured {
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1",
		"kind":       "ScaledObject",
		"metadata":   map[string]any{"name": "httpbin-scaled-object", "namespace": ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": appName},
			"minReplicaCount": int64(1),
			"maxReplicaCount": int64(5),
			"triggers": []any{map[string]any{
				"type": "cpu", "metricType": "Utilization", "metadata": map[string]any{"value": "50"},
			}},
		},
	}}
	return so
}

func scaledObjectAnnotations(t testing.TB, c *cluster.Cluster, ns string) map[string]string {
	t.Helper()
	so := newScaledObject(ns)
	if err := c.Client.Get(context.Background(),
		types.NamespacedName{Namespace: ns, Name: so.GetName()}, so); err != nil {
		t.Fatalf("failed to get ScaledObject: %v", err)
	}
	return so.GetAnnotations()
}

// TestKEDAScenario is the seed's KEDA guide: replicas KEDA set above the minimum
// are left alone, the ScaledObject is paused with both annotations before the
// workload goes to zero, and resumed (annotations removed) when it comes back.
func TestKEDAScenario(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	exp := startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	stopTraffic := exp.busy()
	defer stopTraffic()
	s := startScaler(t, c, ns, testOptions(c, ns))

	// The cooldown holds the workload up until the traffic shows in Prometheus.
	es := newElastiService(ns, 600, trafficQuery(ns))
	es.Spec.Autoscaler = &v1alpha1.AutoscalerSpec{Type: v1alpha1.AutoscalerKEDA, Name: "httpbin-scaled-object"}
	create(t, c, newService(ns), newDeployment(ns, 3), newScaledObject(ns), es)
	waitMode(t, c, ns, v1alpha1.ModeServe, 30*time.Second)
	waitBusy(t, c, ns)

	// KEDA's three replicas survive busy rounds and an activation.
	before := generation(t, c, ns)
	api := dialActivation(t, s.ActivationAddr().String())
	resp, err := api.Activate(context.Background(), &activationv1.ActivateRequest{Namespace: ns, Name: appName})
	if err != nil {
		t.Fatalf("Activate() error = %v", err)
	}
	if resp.GetDesiredReplicas() != 3 {
		t.Errorf("Activate() desired = %d, want 3 (the current count, above the minimum)", resp.GetDesiredReplicas())
	}
	waitRounds(t, s, 3)
	if got, _ := replicas(context.Background(), c, ns); got != 3 || generation(t, c, ns) != before {
		t.Fatalf("replicas = %d, generation moved by %d; want 3 and no write", got, generation(t, c, ns)-before)
	}
	if a := scaledObjectAnnotations(t, c, ns); a[paused] != "" || a[pausedReplicas] != "" {
		t.Fatalf("ScaledObject annotations while serving = %v, want no pause", a)
	}

	// Idle: paused with the exact annotations, then scaled to zero.
	stopTraffic()
	patchCooldown(t, c, ns, 0)
	waitReplicas(t, c, ns, 0, time.Minute)
	a := scaledObjectAnnotations(t, c, ns)
	if a[pausedReplicas] != "0" || a[paused] != "true" {
		t.Fatalf("ScaledObject annotations at zero = %v, want %s: \"0\" and %s: \"true\"",
			a, pausedReplicas, paused)
	}

	// Activation: resumed first, then scaled to the minimum.
	patchCooldown(t, c, ns, 600)
	if _, err := api.Activate(context.Background(),
		&activationv1.ActivateRequest{Namespace: ns, Name: appName}); err != nil {
		t.Fatalf("Activate() error = %v", err)
	}
	a = scaledObjectAnnotations(t, c, ns)
	if _, ok := a[pausedReplicas]; ok {
		t.Errorf("ScaledObject annotations after activation = %v, want %s removed", a, pausedReplicas)
	}
	if _, ok := a[paused]; ok {
		t.Errorf("ScaledObject annotations after activation = %v, want %s removed", a, paused)
	}
	waitReplicas(t, c, ns, 1, time.Second)
	waitMode(t, c, ns, v1alpha1.ModeServe, time.Minute)
}
