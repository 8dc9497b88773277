package cluster_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/elasti-mesh/elasti/integration/cluster"
)

// TestCRDsValidate checks that Istio's and KEDA's CRDs are installed with their
// schemas: valid objects are stored and invalid ones rejected.
func TestCRDsValidate(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	tests := []struct {
		name    string
		object  string
		wantErr string
	}{
		{
			name: "VirtualService",
			object: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [testapp]
  http:
  - route:
    - destination: {host: testapp, port: {number: 80}}`,
		},
		{
			name: "VirtualService with hosts of the wrong type",
			object: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs-bad}
spec:
  hosts: testapp`,
			wantErr: "spec.hosts",
		},
		{
			name: "EnvoyFilter",
			object: `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: SIDECAR_INBOUND}
    patch:
      operation: INSERT_BEFORE
      value: {name: envoy.filters.http.ext_proc}`,
		},
		{
			name: "ScaledObject",
			object: `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: so}
spec:
  scaleTargetRef: {name: testapp}
  minReplicaCount: 0
  triggers:
  - type: prometheus
    metadata: {serverAddress: "http://127.0.0.1:9090", query: "sum(up)", threshold: "1"}`,
		},
		{
			name: "ScaledObject without triggers",
			object: `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: so-bad}
spec:
  scaleTargetRef: {name: testapp}`,
			wantErr: "triggers",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tt.object), &obj.Object); err != nil {
				t.Fatalf("bad fixture: %v", err)
			}
			obj.SetNamespace(ns)
			err := c.Client.Create(t.Context(), obj)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Create() error = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Create() error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
