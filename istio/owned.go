package istio

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// isOwned reports whether vs was created by the route switch.
func isOwned(vs *unstructured.Unstructured) bool {
	return vs.GetLabels()[ManagedByLabel] == ManagedByValue && vs.GetLabels()[ServiceLabel] != ""
}

// ownedVirtualService returns the VirtualService Hold creates for t when no
// VirtualService covers it for the mesh: the Service's own host, one route named
// HoldRouteName to the Service. Without a destination port Istio uses the port the
// caller connected to, so one route serves every port of the Service.
func ownedVirtualService(es *v1alpha1.ElastiService, t target) *unstructured.Unstructured {
	vs := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"hosts": []any{t.fqdn},
			"http": []any{map[string]any{
				"name": HoldRouteName,
				"route": []any{map[string]any{
					"destination": map[string]any{"host": t.fqdn},
				}},
			}},
		},
	}}
	vs.SetGroupVersionKind(virtualServiceGVK)
	vs.SetNamespace(t.namespace)
	vs.SetName(ownedName(t.name))
	vs.SetLabels(map[string]string{ManagedByLabel: ManagedByValue, ServiceLabel: t.name})
	vs.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "ElastiService",
		Name:               es.Name,
		UID:                es.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}})
	return vs
}

// ensureOwned creates the owned VirtualService for t, or brings an existing one back
// to the expected spec. It reports whether it changed anything. A VirtualService of
// the same name that the switch did not create is left alone and reported.
func (s *RouteSwitch) ensureOwned(ctx context.Context, es *v1alpha1.ElastiService, t target) (bool, error) {
	want := ownedVirtualService(es, t)
	key := t.namespace + "/" + want.GetName()
	err := s.client.Create(ctx, want.DeepCopy(), client.FieldOwner(s.opts.FieldManager))
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("failed to create VirtualService %q: %w", key, err)
	}

	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(virtualServiceGVK)
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		return false, fmt.Errorf("failed to get VirtualService %q: %w", key, err)
	}
	n, err := s.update(ctx, got, func(got *unstructured.Unstructured) (int, bool, error) {
		if !isOwned(got) {
			return 0, false, fmt.Errorf("%w: VirtualService %q exists and was not created by %s",
				errNameTaken, key, ManagedByValue)
		}
		if reflect.DeepEqual(got.Object["spec"], want.Object["spec"]) &&
			reflect.DeepEqual(got.GetOwnerReferences(), want.GetOwnerReferences()) {
			return 0, false, nil
		}
		got.Object["spec"] = want.Object["spec"]
		got.SetOwnerReferences(want.GetOwnerReferences())
		return 1, true, nil
	})
	return n > 0, err
}

// errNameTaken means the name of the VirtualService the switch creates is used by an
// object it did not create.
var errNameTaken = errors.New("name taken")

// deleteOwned deletes the owned VirtualService for t if there is one.
func (s *RouteSwitch) deleteOwned(ctx context.Context, t target) error {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	err := s.client.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: ownedName(t.name)}, vs)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to get VirtualService %q: %w", t.namespace+"/"+ownedName(t.name), err)
	}
	if !isOwned(vs) {
		// A user object that happens to have our name: not ours to delete.
		return nil
	}

	err = s.client.Delete(ctx, vs, client.Preconditions{UID: ptr.To(vs.GetUID())})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete VirtualService %q: %w", t.namespace+"/"+vs.GetName(), err)
	}
	return nil
}
