package scaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// finalize undoes everything the scaler did to a service before its ElastiService
// goes away: a workload at zero is brought back to minTargetReplicas, KEDA is
// resumed and the routes are switched back to serve. The finalizer is removed
// only when all of that succeeded, so the service is never left unreachable.
func (s *Scaler) finalize(ctx context.Context, es *v1alpha1.ElastiService) error {
	if !controllerutil.ContainsFinalizer(es, v1alpha1.Finalizer) {
		return nil
	}
	es = es.DeepCopy()
	key := client.ObjectKeyFromObject(es)
	s.states.get(key).setPendingHold(time.Time{})

	// A target that does not exist has nothing to restore.
	_, _, err := s.scaleUp(ctx, s.api, es, "its ElastiService is being deleted")
	var te *targetError
	if err != nil && !errors.As(err, &te) {
		return fmt.Errorf("failed to restore the workload before deletion: %w", err)
	}
	// A ScaledObject that is gone, or a KEDA that is not installed, needs no resume.
	if err := s.resumeKEDA(ctx, s.api, es); err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
		return fmt.Errorf("failed to resume KEDA before deletion: %w", err)
	}
	if err := s.router.Serve(ctx, es); err != nil {
		return fmt.Errorf("failed to restore routes before deletion: %w", err)
	}

	patch := client.MergeFrom(es.DeepCopy())
	controllerutil.RemoveFinalizer(es, v1alpha1.Finalizer)
	if err := s.client.Patch(ctx, es, patch, client.FieldOwner(FieldManager)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("failed to remove finalizer: %w", err))
	}
	s.log.Info("released ElastiService", "elastiService", key.String())
	s.forget(key)
	return nil
}
