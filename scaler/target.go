package scaler

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Reasons a scale target cannot be used; they become the TargetFound condition's
// reason.
const (
	reasonUnsupportedKind = "UnsupportedKind"
	reasonKindNotServed   = "KindNotServed"
	reasonTargetNotFound  = "TargetNotFound"
	reasonNoScale         = "NoScaleSubresource"
)

// targetError is a scale target that cannot be scaled, with a reason for the
// condition and a message a person can act on.
type targetError struct {
	reason  string
	message string
	err     error
}

func (e *targetError) Error() string { return e.message }
func (e *targetError) Unwrap() error { return e.err }

// scaleState is what a workload's /scale subresource says.
type scaleState struct {
	// Spec is the desired replica count, Status the current one.
	Spec, Status int32
}

// targets reads and writes the replica count of scale targets through their /scale
// subresource, so Deployments, StatefulSets and Rollouts are handled alike.
type targets struct {
	client client.Client
}

// scaleObject returns the workload as an empty unstructured object of its kind.
func scaleObject(es *v1alpha1.ElastiService) (*unstructured.Unstructured, error) {
	ref := es.Spec.ScaleTargetRef
	gk, ok := ref.GroupKind()
	if !ok {
		return nil, &targetError{reason: reasonUnsupportedKind, message: fmt.Sprintf(
			"scale target kind %q of %q cannot be scaled: use Deployment, StatefulSet or Rollout",
			ref.Kind, ref.APIVersion)}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(ref.APIVersion)
	u.SetKind(gk.Kind)
	u.SetNamespace(es.Namespace)
	u.SetName(ref.Name)
	return u, nil
}

// get returns the target's scale, or a *targetError when it cannot be scaled.
func (t *targets) get(ctx context.Context, es *v1alpha1.ElastiService) (scaleState, error) {
	_, st, err := t.read(ctx, es)
	return st, err
}

func (t *targets) read(
	ctx context.Context,
	es *v1alpha1.ElastiService,
) (*unstructured.Unstructured, scaleState, error) {
	obj, err := scaleObject(es)
	if err != nil {
		return nil, scaleState{}, err
	}
	scale := &unstructured.Unstructured{}
	scale.SetAPIVersion("autoscaling/v1")
	scale.SetKind("Scale")
	if err := t.client.SubResource("scale").Get(ctx, obj, scale); err != nil {
		return nil, scaleState{}, classifyTargetError(es, obj, err)
	}
	spec, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	status, _, _ := unstructured.NestedInt64(scale.Object, "status", "replicas")
	return scale, scaleState{Spec: int32(spec), Status: int32(status)}, nil
}

func classifyTargetError(es *v1alpha1.ElastiService, obj *unstructured.Unstructured, err error) error {
	what := fmt.Sprintf("%s %q", obj.GetKind(), es.Namespace+"/"+obj.GetName())
	switch {
	case meta.IsNoMatchError(err):
		return &targetError{reason: reasonKindNotServed, err: err, message: fmt.Sprintf(
			"the API server does not serve %s of %s: is its CRD installed?", obj.GetKind(), obj.GetAPIVersion())}
	case apierrors.IsNotFound(err):
		return &targetError{reason: reasonTargetNotFound, err: err,
			message: fmt.Sprintf("scale target %s does not exist", what)}
	case apierrors.IsMethodNotSupported(err):
		return &targetError{reason: reasonNoScale, err: err,
			message: fmt.Sprintf("scale target %s has no /scale subresource", what)}
	}
	return fmt.Errorf("failed to read the scale of %s: %w", what, err)
}

// errStopScale aborts a scale write from inside its decision function.
var errStopScale = errors.New("scale write not needed")

// update sets the target's replica count to what decide returns for the current
// scale, retrying on conflicts with other writers. decide may return errStopScale
// to write nothing; update then returns the scale it read and a nil error. It
// returns the scale before the write and whether it wrote.
func (t *targets) update(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	decide func(scaleState) (int32, error),
) (scaleState, bool, error) {
	var before scaleState
	var wrote bool
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		wrote = false
		scale, st, err := t.read(ctx, es)
		if err != nil {
			return err
		}
		before = st
		want, err := decide(st)
		if err != nil {
			return err
		}
		if err := unstructured.SetNestedField(scale.Object, int64(want), "spec", "replicas"); err != nil {
			return fmt.Errorf("failed to set replicas: %w", err)
		}
		obj, _ := scaleObject(es)
		if err := t.client.SubResource("scale").Update(ctx, obj,
			client.WithSubResourceBody(scale), client.FieldOwner(FieldManager)); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if errors.Is(err, errStopScale) {
		return before, false, nil
	}
	if err != nil {
		var te *targetError
		if errors.As(err, &te) {
			return before, false, err
		}
		return before, false, fmt.Errorf("failed to scale %q: %w", es.Spec.ScaleTargetRef.Name, err)
	}
	return before, wrote, nil
}

// scaleFromZero sets the target's replica count to n in one request, and only if it
// is at zero: a JSON patch whose first operation tests that the Scale's spec is
// empty, which is how autoscaling/v1 writes zero replicas (the field is omitted).
// It reports false and no error when the target was not at zero; the API server
// then changes nothing.
func (t *targets) scaleFromZero(ctx context.Context, es *v1alpha1.ElastiService, n int32) (bool, error) {
	obj, err := scaleObject(es)
	if err != nil {
		return false, err
	}
	patch := fmt.Appendf(nil, `[{"op":"test","path":"/spec","value":{}},`+
		`{"op":"add","path":"/spec/replicas","value":%d}]`, n)
	scale := &unstructured.Unstructured{}
	scale.SetAPIVersion("autoscaling/v1")
	scale.SetKind("Scale")
	err = t.client.SubResource("scale").Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch),
		client.WithSubResourceBody(scale), client.FieldOwner(FieldManager))
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsInvalid(err):
		// The test failed: the target has replicas.
		return false, nil
	}
	var te *targetError
	if err := classifyTargetError(es, obj, err); errors.As(err, &te) {
		return false, err
	}
	return false, fmt.Errorf("failed to scale %q: %w", es.Spec.ScaleTargetRef.Name, err)
}
