package scaler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceExists reports whether the Service exists.
func (s *Scaler) serviceExists(ctx context.Context, namespace, name string) (bool, error) {
	var svc corev1.Service
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &svc)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get Service %q: %w", namespace+"/"+name, err)
	}
	return true, nil
}

// readyEndpoints counts the ready endpoints of the Service across its
// EndpointSlices. An endpoint whose ready condition is unset counts as ready, as
// the EndpointSlice API defines.
func (s *Scaler) readyEndpoints(ctx context.Context, namespace, service string) (int, error) {
	var slices discoveryv1.EndpointSliceList
	err := s.reader.List(ctx, &slices, client.InNamespace(namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: service})
	if err != nil {
		return 0, fmt.Errorf("failed to list EndpointSlices of %q: %w", namespace+"/"+service, err)
	}
	n := 0
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}
