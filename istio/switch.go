package istio

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// RouteSwitch moves a Service's Istio routes between hold and serve (see the package
// documentation). It keeps no state between calls: everything it needs is on the
// VirtualServices themselves, so a restarted or newly elected scaler carries on where
// the last one stopped. It is safe for concurrent use; two calls that touch the same
// VirtualService resolve their conflict through the API server's resourceVersion.
type RouteSwitch struct {
	client client.Client
	// cache, when set, finds the VirtualServices of a Service through an index;
	// nil lists every VirtualService from the API server on each call.
	cache client.Reader
	opts  RouteSwitchOptions
}

// NewRouteSwitch returns a RouteSwitch that reads and writes through c, listing
// every VirtualService in its namespaces on each call; NewCachedRouteSwitch finds
// them through a cache instead, which is what a cluster with many services wants. The client
// needs no Istio types in its scheme: VirtualServices are handled as unstructured
// objects, which a controller-runtime client reads from the API server rather than
// its cache unless its options set Cache.Unstructured; keep that unset, or a stale
// cache turns every write into a conflict retry.
// Options left unset take their defaults; call opts.Validate first to reject bad ones.
func NewRouteSwitch(c client.Client, opts RouteSwitchOptions) *RouteSwitch {
	return &RouteSwitch{client: c, opts: opts.withDefaults()}
}

// Hold sends the traffic of es's Service through the hold route: every VirtualService
// route that sends to the Service is renamed HoldRouteName, and when no VirtualService
// bound to the mesh covers the Service, one owned by es is created. Calling it again
// changes nothing.
func (s *RouteSwitch) Hold(ctx context.Context, es *v1alpha1.ElastiService) error {
	t := s.target(es)
	services, err := s.list(ctx, t)
	if err != nil {
		return err
	}

	covered, held := false, 0
	for i := range services {
		vs := &services[i]
		if isOwned(vs) {
			continue
		}
		covered = covered || coversMesh(vs, t)
		n, err := s.update(ctx, vs, func(vs *unstructured.Unstructured) (int, bool, error) {
			return holdRoutes(vs, t)
		})
		if err != nil {
			return err
		}
		held += n
	}

	if covered {
		err = s.deleteOwned(ctx, t)
	} else {
		var created bool
		created, err = s.ensureOwned(ctx, es, t)
		if created {
			held++
		}
	}
	if err != nil {
		return err
	}
	if held > 0 {
		logf.FromContext(ctx).Info("Routes switched to hold", "service", t.key, "routes", held)
	}
	return nil
}

// Serve sends the traffic of es's Service straight to its pods again: it undoes every
// change Hold made for this Service and deletes the VirtualService Hold created.
// Routes also held for other Services stay in hold. Calling it again, or on a Service
// that was never held, changes nothing; it is also the cleanup when es is deleted.
func (s *RouteSwitch) Serve(ctx context.Context, es *v1alpha1.ElastiService) error {
	t := s.target(es)
	services, err := s.list(ctx, t)
	if err != nil {
		return err
	}

	restored := 0
	for i := range services {
		vs := &services[i]
		if isOwned(vs) {
			continue
		}
		if _, ok := vs.GetAnnotations()[HeldRoutesAnnotation]; !ok {
			continue
		}
		n, err := s.update(ctx, vs, func(vs *unstructured.Unstructured) (int, bool, error) {
			return serveRoutes(vs, t)
		})
		if err != nil {
			return err
		}
		restored += n
	}

	if err := s.deleteOwned(ctx, t); err != nil {
		return err
	}
	if restored > 0 {
		logf.FromContext(ctx).Info("Routes switched to serve", "service", t.key, "routes", restored)
	}
	return nil
}

// target returns the Service es points at.
func (s *RouteSwitch) target(es *v1alpha1.ElastiService) target {
	return newTarget(es.Namespace, es.Spec.Service, s.opts.ClusterDomain)
}

// list returns the VirtualServices in the configured namespaces, as the API server
// has them now: every one, or with a cache only those that may concern t.
func (s *RouteSwitch) list(ctx context.Context, t target) ([]unstructured.Unstructured, error) {
	namespaces := s.opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	var out []unstructured.Unstructured
	for _, ns := range namespaces {
		if s.cache != nil {
			found, err := s.findCached(ctx, ns, t)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(virtualServiceListGVK)
		if err := s.client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("failed to list VirtualServices in namespace %q: %w", ns, err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// mutation changes a VirtualService in memory and reports how many routes it switched
// and whether anything changed.
type mutation func(vs *unstructured.Unstructured) (int, bool, error)

// update applies mutate to vs and writes the result with vs's resourceVersion. On a
// conflict it reads vs again and recomputes, so whatever changed meanwhile is kept.
// A VirtualService deleted meanwhile is skipped.
func (s *RouteSwitch) update(ctx context.Context, vs *unstructured.Unstructured, mutate mutation) (int, error) {
	obj := vs.DeepCopy()
	switched := 0
	first := true
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if !first {
			if err := s.client.Get(ctx, client.ObjectKeyFromObject(vs), obj); err != nil {
				return err
			}
		}
		first = false

		n, changed, err := mutate(obj)
		if err != nil || !changed {
			return err
		}
		switched = n
		return s.client.Update(ctx, obj, client.FieldOwner(s.opts.FieldManager))
	})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("failed to update VirtualService %q: %w", vs.GetNamespace()+"/"+vs.GetName(), err)
	}
	return switched, nil
}

// coversMesh reports whether vs is bound to the mesh and names one of the Service's
// hosts, so that sidecars use its routes rather than Istio's default route.
func coversMesh(vs *unstructured.Unstructured, t target) bool {
	if !boundToMesh(vs) {
		return false
	}
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	for _, h := range hosts {
		if t.coveredBy(h, vs.GetNamespace()) {
			return true
		}
	}
	return false
}
