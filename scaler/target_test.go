package scaler

import (
	"context"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
)

// TestScaleWriteRetriesConflicts: another writer changes the Deployment between
// the scaler's read of /scale and its write; the write conflicts, is retried on a
// fresh read, and succeeds.
func TestScaleWriteRetriesConflicts(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	ctx := context.Background()
	d, es := createTargetAtZero(t, c, ns)

	tg := &targets{client: c.Client}
	calls := 0
	before, wrote, err := tg.update(ctx, es, func(cur scaleState) (int32, error) {
		calls++
		if calls == 1 {
			// The other writer: a label change bumps the resourceVersion.
			var fresh appsv1.Deployment
			if err := c.Client.Get(ctx, client.ObjectKeyFromObject(d), &fresh); err != nil {
				t.Fatal(err)
			}
			patch := client.MergeFrom(fresh.DeepCopy())
			fresh.Labels = map[string]string{"touched": "yes"}
			if err := c.Client.Patch(ctx, &fresh, patch); err != nil {
				t.Fatal(err)
			}
		}
		return 3, nil
	})
	if err != nil || !wrote {
		t.Fatalf("update() = (wrote %v, %v), want a write and no error", wrote, err)
	}
	if calls != 2 {
		t.Errorf("decide calls = %d, want 2 (one conflict, one retry)", calls)
	}
	if before.Spec != 0 {
		t.Errorf("update() before = %d, want 0", before.Spec)
	}
	var got appsv1.Deployment
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app"}, &got); err != nil {
		t.Fatal(err)
	}
	if *got.Spec.Replicas != 3 || got.Labels["touched"] != "yes" {
		t.Errorf("Deployment = %d replicas, labels %v; want 3 and the other writer's label kept",
			*got.Spec.Replicas, got.Labels)
	}
}

// TestScaleFromZero: the one-request scale-up writes only over zero replicas, and
// says so; a missing target is a targetError.
func TestScaleFromZero(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	ctx := context.Background()
	d, es := createTargetAtZero(t, c, ns)
	tg := &targets{client: c.Client}
	replicas := func() int32 {
		t.Helper()
		var got appsv1.Deployment
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
			t.Fatal(err)
		}
		return *got.Spec.Replicas
	}

	if wrote, err := tg.scaleFromZero(ctx, es, 2); err != nil || !wrote {
		t.Fatalf("scaleFromZero(2) at zero = (%v, %v), want a write", wrote, err)
	}
	if got := replicas(); got != 2 {
		t.Fatalf("replicas = %d, want 2", got)
	}
	if wrote, err := tg.scaleFromZero(ctx, es, 1); err != nil || wrote {
		t.Fatalf("scaleFromZero(1) at 2 = (%v, %v), want no write and no error", wrote, err)
	}
	if got := replicas(); got != 2 {
		t.Fatalf("replicas after a scaleFromZero at 2 = %d, want 2 left alone", got)
	}

	missing := es.DeepCopy()
	missing.Spec.ScaleTargetRef.Name = "gone"
	_, err := tg.scaleFromZero(ctx, missing, 1)
	var te *targetError
	if !errors.As(err, &te) || te.reason != reasonTargetNotFound {
		t.Fatalf("scaleFromZero() of a missing Deployment = %v, want a %s targetError", err, reasonTargetNotFound)
	}
}

// createTargetAtZero creates a Deployment "app" at zero replicas in ns, whose
// pods never run (the node has no program for image "none"), and returns it with
// an ElastiService, not created, that targets it.
func createTargetAtZero(
	t *testing.T,
	c *cluster.Cluster,
	ns string,
) (*appsv1.Deployment, *v1alpha1.ElastiService) {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}},
			},
		},
	}
	if err := c.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	es := &v1alpha1.ElastiService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: v1alpha1.ElastiServiceSpec{ScaleTargetRef: v1alpha1.ScaleTargetRef{
			APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}}}
	return d, es
}
