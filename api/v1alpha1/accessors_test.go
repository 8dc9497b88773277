package v1alpha1_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

func TestScaleTargetRefResource(t *testing.T) {
	tests := []struct {
		apiVersion, kind string
		want             schema.GroupVersionResource
		ok               bool
	}{
		{"apps/v1", "Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
		{"apps/v1", "deployments", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
		{"apps/v1", "StatefulSet", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, true},
		{"argoproj.io/v1alpha1", "Rollout", schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}, true},
		{"argoproj.io/v1alpha1", "rollouts", schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}, true},
		{"apps/v1", "DaemonSet", schema.GroupVersionResource{}, false},
		{"apps/v1", "Rollout", schema.GroupVersionResource{}, false},
		{"a/b/c", "Deployment", schema.GroupVersionResource{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.apiVersion+" "+tt.kind, func(t *testing.T) {
			ref := v1alpha1.ScaleTargetRef{APIVersion: tt.apiVersion, Kind: tt.kind, Name: "x"}
			got, ok := ref.GroupVersionResource()
			if got != tt.want || ok != tt.ok {
				t.Errorf("GroupVersionResource() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSpecAccessorsApplyDefaults(t *testing.T) {
	var zero v1alpha1.ElastiServiceSpec
	if got := zero.MinReplicas(); got != 1 {
		t.Errorf("MinReplicas() = %d, want 1", got)
	}
	if got := zero.Cooldown(); got != 900*time.Second {
		t.Errorf("Cooldown() = %v, want 15m", got)
	}
	if got := zero.HoldTimeoutDuration(); got != time.Minute {
		t.Errorf("HoldTimeoutDuration() = %v, want 1m", got)
	}
	if got := zero.HeldRequestsCap(); got != 1000 {
		t.Errorf("HeldRequestsCap() = %d, want 1000", got)
	}

	set := v1alpha1.ElastiServiceSpec{
		MinTargetReplicas: 4,
		CooldownPeriod:    ptr.To[int32](0),
		HoldTimeout:       &metav1.Duration{Duration: 90 * time.Second},
		MaxHeldRequests:   7,
	}
	if set.MinReplicas() != 4 || set.Cooldown() != 0 ||
		set.HoldTimeoutDuration() != 90*time.Second || set.HeldRequestsCap() != 7 {
		t.Errorf("accessors = %d, %v, %v, %d; want 4, 0s, 1m30s, 7",
			set.MinReplicas(), set.Cooldown(), set.HoldTimeoutDuration(), set.HeldRequestsCap())
	}
}
