package scaler

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// autoscalerError is a named autoscaler that cannot be found.
type autoscalerError struct{ message string }

func (e *autoscalerError) Error() string { return e.message }

// checkAutoscaler returns nil when the ElastiService names no autoscaler or the one
// it names exists in its namespace, an *autoscalerError when it does not, and
// another error when the API server could not say.
func (s *Scaler) checkAutoscaler(ctx context.Context, es *v1alpha1.ElastiService) error {
	as := es.Spec.Autoscaler
	if as == nil {
		return nil
	}
	key := types.NamespacedName{Namespace: es.Namespace, Name: as.Name}
	var err error
	kind := "HorizontalPodAutoscaler"
	switch as.Type {
	case v1alpha1.AutoscalerKEDA:
		kind = "ScaledObject"
		_, err = s.api.keda.paused(ctx, key.Namespace, key.Name)
	case v1alpha1.AutoscalerHPA:
		err = s.reader.Get(ctx, key, &autoscalingv2.HorizontalPodAutoscaler{})
	default:
		return &autoscalerError{message: fmt.Sprintf("autoscaler type %q is not supported: use keda or hpa", as.Type)}
	}
	switch {
	case apierrors.IsNotFound(err):
		return &autoscalerError{message: fmt.Sprintf(
			"%s %q does not exist in namespace %q: it must live in the ElastiService's namespace",
			kind, as.Name, es.Namespace)}
	case meta.IsNoMatchError(err):
		return &autoscalerError{message: fmt.Sprintf("the API server does not serve %s: is it installed?", kind)}
	case err != nil:
		return fmt.Errorf("failed to get %s %q: %w", kind, key.String(), err)
	}
	return nil
}

// hpaActiveAtZero reports whether the ElastiService's HPA still claims to be
// scaling while its target is at zero. The HPA controller turns scaling off for a
// target at zero replicas (condition ScalingActive false, reason ScalingDisabled)
// and that is what lets the scaler keep it at zero without a fight; an HPA with
// minReplicas 0 (an alpha feature) would not stop, and is reported.
func (s *Scaler) hpaActiveAtZero(ctx context.Context, es *v1alpha1.ElastiService) (bool, error) {
	as := es.Spec.Autoscaler
	if as == nil || as.Type != v1alpha1.AutoscalerHPA {
		return false, nil
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	key := types.NamespacedName{Namespace: es.Namespace, Name: as.Name}
	if err := s.reader.Get(ctx, key, &hpa); err != nil {
		return false, fmt.Errorf("failed to get HorizontalPodAutoscaler %q: %w", key.String(), err)
	}
	if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas == 0 {
		return true, nil
	}
	return false, nil
}
