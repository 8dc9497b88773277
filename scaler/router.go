package scaler

import (
	"context"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Router switches a service's traffic between the hold route, where requests wait
// for the workload, and the workload itself. Both methods must be idempotent, and
// Serve must undo everything Hold did: the scaler also calls it when an
// ElastiService is deleted.
type Router interface {
	// Hold sends the service's traffic through the hold route.
	Hold(ctx context.Context, es *v1alpha1.ElastiService) error
	// Serve sends the service's traffic straight to the workload again.
	Serve(ctx context.Context, es *v1alpha1.ElastiService) error
}
