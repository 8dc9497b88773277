package scaler_test

import (
	"context"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// TestHPACoexistence runs the real HPA controller beside the scaler: at zero the
// HPA reports scaling disabled and leaves the workload there; after an activation
// the HPA raises it to its own minimum and the scaler does not fight that.
func TestHPACoexistence(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	s := startScaler(t, c, ns, testOptions(c, ns))

	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: appName},
			MinReplicas:    ptr.To[int32](2),
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)},
				},
			}},
		},
	}
	es := newElastiService(ns, 0, trafficQuery(ns))
	es.Spec.Autoscaler = &v1alpha1.AutoscalerSpec{Type: v1alpha1.AutoscalerHPA, Name: appName}
	create(t, c, newService(ns), newDeployment(ns, 2), hpa, es)

	// Idle: to zero, and the HPA turns itself off there.
	waitReplicas(t, c, ns, 0, time.Minute)
	waitFor(t, 90*time.Second, "the HPA to report scaling disabled", func(ctx context.Context) (bool, error) {
		var got autoscalingv2.HorizontalPodAutoscaler
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, &got); err != nil {
			return false, err
		}
		cond := hpaCondition(got, autoscalingv2.ScalingActive)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == "ScalingDisabled", nil
	})
	waitRounds(t, s, 3)
	if got, _ := replicas(context.Background(), c, ns); got != 0 {
		t.Fatalf("replicas at zero with an HPA = %d, want 0", got)
	}
	waitCondition(t, c, ns, v1alpha1.ConditionAutoscalerFound, metav1.ConditionTrue, "Found", 10*time.Second)

	// Activation: the scaler writes 1, the HPA takes it to its minimum of 2, and
	// the scaler leaves that alone.
	patchCooldown(t, c, ns, 600)
	api := dialActivation(t, s.ActivationAddr().String())
	if _, err := api.Activate(context.Background(),
		&activationv1.ActivateRequest{Namespace: ns, Name: appName}); err != nil {
		t.Fatalf("Activate() error = %v", err)
	}
	waitReplicas(t, c, ns, 2, 90*time.Second)
	waitMode(t, c, ns, v1alpha1.ModeServe, time.Minute)
	waitRounds(t, s, 3)
	if got, _ := replicas(context.Background(), c, ns); got != 2 {
		t.Fatalf("replicas after the HPA took over = %d, want 2", got)
	}
}

func hpaCondition(h autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) *autoscalingv2.HorizontalPodAutoscalerCondition {
	for i := range h.Status.Conditions {
		if h.Status.Conditions[i].Type == typ {
			return &h.Status.Conditions[i]
		}
	}
	return nil
}
