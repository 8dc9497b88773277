package scaler

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// builderPredicates lets through ElastiService changes that need a reconcile: spec,
// deletion, finalizers and annotations; not the scaler's own status writes, which
// would otherwise wake it again for nothing.
func builderPredicates() builder.Predicates {
	return builder.WithPredicates(predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				len(o.GetFinalizers()) != len(n.GetFinalizers()) ||
				!equalMaps(o.GetAnnotations(), n.GetAnnotations())
		},
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// servicesOfSlice maps an EndpointSlice to the ElastiServices of its Service.
func (s *Scaler) servicesOfSlice(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[discoveryv1.LabelServiceName]
	if name == "" {
		return nil
	}
	return s.elastiServicesFor(ctx, o.GetNamespace(), name)
}

// servicesOfService maps a Service to the ElastiServices that name it.
func (s *Scaler) servicesOfService(ctx context.Context, o client.Object) []reconcile.Request {
	return s.elastiServicesFor(ctx, o.GetNamespace(), o.GetName())
}

func (s *Scaler) elastiServicesFor(ctx context.Context, namespace, service string) []reconcile.Request {
	var list v1alpha1.ElastiServiceList
	err := s.reader.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingFields{serviceIndex: service})
	if err != nil {
		s.log.Error(err, "failed to list ElastiServices of a Service", "namespace", namespace,
			"service", service)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
