package istio

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	installOnce sync.Once
	installErr  error
)

// install applies manifests/ to the test API server once, as a user would with
// kubectl apply -k manifests/ on a cluster where Istio is installed.
func install(t *testing.T) {
	t.Helper()
	installOnce.Do(func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}
		if err := testClient.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
			installErr = err
			return
		}
		_, installErr = kubectl(t, "apply", "-k", "manifests/")
	})
	if installErr != nil {
		t.Fatalf("failed to install manifests/: %v", installErr)
	}
}

// The install applies to a real API server with Istio's CRDs, every object is
// stored, and a server-side dry run of it again succeeds.
func TestInstallApplies(t *testing.T) {
	install(t)

	out, err := kubectl(t, "apply", "-k", "manifests/", "--dry-run=server")
	if err != nil {
		t.Fatalf("dry run of manifests/ failed: %v", err)
	}
	if !strings.Contains(out, "(server dry run)") {
		t.Errorf("dry run output does not say it ran on the server:\n%s", out)
	}

	for _, obj := range []struct {
		gvk       schema.GroupVersionKind
		namespace string
		name      string
	}{
		{schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1alpha3", Kind: "EnvoyFilter"}, "istio-system", "elasti-extproc"},
		{schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}, "elasti-system", "elasti-extproc"},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "elasti-system", "elasti-scaler"},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "elasti-system", "elasti-extproc"},
		{schema.GroupVersionKind{Version: "v1", Kind: "Service"}, "elasti-system", "elasti-scaler-activation"},
		{schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}, "elasti-system", "elasti-extproc"},
	} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(obj.gvk)
		if err := testClient.Get(context.Background(), client.ObjectKey{Namespace: obj.namespace, Name: obj.name}, u); err != nil {
			t.Errorf("installed %s %s/%s: %v", obj.gvk.Kind, obj.namespace, obj.name, err)
		}
	}
}

// The samples apply on top of the install: the ElastiService passes its CRD's
// validation, the Istio objects Istio's and the ScaledObject KEDA's.
func TestSamplesApply(t *testing.T) {
	install(t)
	if _, err := kubectl(t, "apply", "-k", "manifests/samples/"); err != nil {
		t.Fatalf("failed to apply manifests/samples/: %v", err)
	}
}

// The optional ServiceMonitor component builds on top of the install and selects
// both metrics Services by a port they have.
func TestServiceMonitorComponent(t *testing.T) {
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	kustomization := "resources:\n- " + rel("manifests") + "\ncomponents:\n- " + rel("manifests/components/servicemonitor") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := kubectl(t, "kustomize", dir)
	if err != nil {
		t.Fatalf("failed to build the ServiceMonitor component: %v", err)
	}
	objs := decodeYAMLDocs(t, out)
	var monitors, selected int
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceMonitor":
			monitors++
		case "Service":
			if o.GetLabels()["elasti.truefoundry.com/metrics"] == "true" && hasPort(o, "http-metrics") {
				selected++
			}
		}
	}
	if monitors != 1 || selected != 2 {
		t.Errorf("component built %d ServiceMonitors selecting %d Services, want 1 selecting 2", monitors, selected)
	}
}

func hasPort(svc *unstructured.Unstructured, name string) bool {
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range ports {
		if n, _ := p.(map[string]any)["name"].(string); n == name {
			return true
		}
	}
	return false
}
