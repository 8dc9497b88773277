package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Defaults of optional fields. The CRD applies the same values at admission; the
// accessors below apply them again so that code handed an object that never went
// through the API server (a test fixture, an older stored object) behaves the same.
const (
	DefaultMinTargetReplicas int32 = 1
	DefaultCooldownPeriod    int32 = 900
	DefaultHoldTimeout             = 60 * time.Second
	DefaultMaxHeldRequests   int32 = 1000
	DefaultUptimeFilter            = `container="prometheus"`
)

// Finalizer is the finalizer the scaler puts on every ElastiService, so that it
// can restore the workload and the routes before the object goes away.
const Finalizer = "elasti.truefoundry.com/finalizer"

// MinReplicas returns minTargetReplicas, or its default when unset.
func (s *ElastiServiceSpec) MinReplicas() int32 {
	if s.MinTargetReplicas < 1 {
		return DefaultMinTargetReplicas
	}
	return s.MinTargetReplicas
}

// Cooldown returns cooldownPeriod as a duration, or its default when unset.
func (s *ElastiServiceSpec) Cooldown() time.Duration {
	if s.CooldownPeriod == nil {
		return time.Duration(DefaultCooldownPeriod) * time.Second
	}
	return time.Duration(*s.CooldownPeriod) * time.Second
}

// HoldTimeoutDuration returns holdTimeout, or its default when unset or not positive.
func (s *ElastiServiceSpec) HoldTimeoutDuration() time.Duration {
	if s.HoldTimeout == nil || s.HoldTimeout.Duration <= 0 {
		return DefaultHoldTimeout
	}
	return s.HoldTimeout.Duration
}

// HeldRequestsCap returns maxHeldRequests, or its default when unset.
func (s *ElastiServiceSpec) HeldRequestsCap() int32 {
	if s.MaxHeldRequests < 1 {
		return DefaultMaxHeldRequests
	}
	return s.MaxHeldRequests
}

// GroupKind returns the group and canonical kind of the workload, mapping the
// legacy lower-case plurals to their kinds. The second result is false for a kind
// the API does not accept.
func (r ScaleTargetRef) GroupKind() (schema.GroupKind, bool) {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	if err != nil {
		return schema.GroupKind{}, false
	}
	switch {
	case gv.Group == "apps" && (r.Kind == "Deployment" || r.Kind == "deployments"):
		return schema.GroupKind{Group: "apps", Kind: "Deployment"}, true
	case gv.Group == "apps" && r.Kind == "StatefulSet":
		return schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, true
	case gv.Group == "argoproj.io" && (r.Kind == "Rollout" || r.Kind == "rollouts"):
		return schema.GroupKind{Group: "argoproj.io", Kind: "Rollout"}, true
	}
	return schema.GroupKind{}, false
}

// GroupVersionResource returns the resource to scale through its /scale
// subresource. The second result is false for a kind the API does not accept.
func (r ScaleTargetRef) GroupVersionResource() (schema.GroupVersionResource, bool) {
	gk, ok := r.GroupKind()
	if !ok {
		return schema.GroupVersionResource{}, false
	}
	resources := map[string]string{
		"Deployment":  "deployments",
		"StatefulSet": "statefulsets",
		"Rollout":     "rollouts",
	}
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	return gv.WithResource(resources[gk.Kind]), true
}
