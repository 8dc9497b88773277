package scaler

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// RouteSource is implemented by a Router whose routes live in objects other
// writers may change. The scaler watches those objects and reconciles the
// services a changed one carries, so that a change that undoes a hold or a serve
// is put right at once rather than at the next resync.
type RouteSource interface {
	// RouteObject returns an empty object of the kind to watch.
	RouteObject() client.Object
	// ServicesOf returns the Services whose routes the object may carry.
	ServicesOf(o client.Object) []types.NamespacedName
}
