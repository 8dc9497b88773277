package scaler

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KEDA's pause annotations. With paused-replicas set, KEDA scales the target to
// that count and stops acting on it; paused stops it acting at the current count.
// Both are set so that a KEDA version that knows only one of them is paused too.
const (
	kedaPausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
	kedaPausedAnnotation         = "autoscaling.keda.sh/paused"
)

// scaledObjectGVK is KEDA's ScaledObject.
var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// keda pauses and resumes KEDA ScaledObjects through their annotations.
type keda struct {
	client client.Client
}

// paused reports whether the ScaledObject carries the pause annotations.
func (k *keda) paused(ctx context.Context, namespace, name string) (bool, error) {
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(scaledObjectGVK)
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if err := k.client.Get(ctx, key, so); err != nil {
		return false, fmt.Errorf("failed to get ScaledObject %q: %w", key.String(), err)
	}
	a := so.GetAnnotations()
	return a[kedaPausedReplicasAnnotation] == "0" && a[kedaPausedAnnotation] == "true", nil
}

// pause sets both pause annotations on the ScaledObject.
func (k *keda) pause(ctx context.Context, namespace, name string) error {
	return k.patch(ctx, namespace, name, map[string]any{
		kedaPausedReplicasAnnotation: "0",
		kedaPausedAnnotation:         "true",
	})
}

// resume removes both pause annotations from the ScaledObject.
func (k *keda) resume(ctx context.Context, namespace, name string) error {
	return k.patch(ctx, namespace, name, map[string]any{
		kedaPausedReplicasAnnotation: nil,
		kedaPausedAnnotation:         nil,
	})
}

func (k *keda) patch(ctx context.Context, namespace, name string, annotations map[string]any) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return fmt.Errorf("failed to encode ScaledObject patch: %w", err)
	}
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(scaledObjectGVK)
	so.SetNamespace(namespace)
	so.SetName(name)
	err = k.client.Patch(ctx, so, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldManager))
	if err != nil {
		return fmt.Errorf("failed to patch ScaledObject %q: %w", namespace+"/"+name, err)
	}
	return nil
}
