package extproc

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestSliceReady(t *testing.T) {
	ep := func(ready, terminating *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{
			Ready: ready, Terminating: terminating}}
	}
	tests := []struct {
		name      string
		endpoints []discoveryv1.Endpoint
		want      bool
	}{
		{"no endpoints", nil, false},
		{"ready", []discoveryv1.Endpoint{ep(ptr.To(true), ptr.To(false))}, true},
		{"ready unset counts as ready", []discoveryv1.Endpoint{ep(nil, nil)}, true},
		{"not ready", []discoveryv1.Endpoint{ep(ptr.To(false), nil)}, false},
		{"terminating", []discoveryv1.Endpoint{ep(ptr.To(true), ptr.To(true))}, false},
		{"one of two ready", []discoveryv1.Endpoint{
			ep(ptr.To(false), nil), ep(ptr.To(true), nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SliceReady(&discoveryv1.EndpointSlice{Endpoints: tt.endpoints})
			if got != tt.want {
				t.Errorf("SliceReady() = %v, want %v", got, tt.want)
			}
		})
	}
}
