package scaler_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
)

// TestUnrecordedScaleUpIsRecorded: a workload brought up from zero without
// lastScaledUpTime being written (here by another writer; the same happens when a
// scaler stops between an activation's scale write and its status patch) gets it
// when its service goes back to serve, so the cooldown counts from then and the
// idle service is not sent straight back to zero.
func TestUnrecordedScaleUpIsRecorded(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	startScaler(t, c, ns, testOptions(c, ns))

	const cooldown = 3
	create(t, c, newService(ns), newDeployment(ns, 0), newElastiService(ns, cooldown, trafficQuery(ns)))
	waitMode(t, c, ns, v1alpha1.ModeHold, 30*time.Second)
	// Past the cooldown since creation, nothing would keep the idle service up.
	waitFor(t, time.Minute, "the cooldown since creation to pass", func(ctx context.Context) (bool, error) {
		es, err := getES(ctx, c, ns)
		return err == nil && time.Since(es.CreationTimestamp.Time) > cooldown*time.Second, err
	})

	scaledAt := time.Now().Truncate(time.Second)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName}}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":1}}`))
	if err := c.Client.Patch(context.Background(), d, patch); err != nil {
		t.Fatal(err)
	}
	waitMode(t, c, ns, v1alpha1.ModeServe, time.Minute)
	es, err := getES(context.Background(), c, ns)
	if err != nil {
		t.Fatal(err)
	}
	if up := es.Status.LastScaledUpTime; up == nil || up.Time.Before(scaledAt) {
		t.Fatalf("lastScaledUpTime after the service came back = %v, want at or after %v", up, scaledAt)
	}
}
