package v1alpha1_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// These tests run the generated CRD in a real kube-apiserver, so that the schema,
// the defaults and the CEL rules are checked as a cluster would check them.

var (
	k8s        client.Client
	restConfig *rest.Config
)

// restHTTPClient returns an HTTP client authenticated to the test API server.
func restHTTPClient() (*http.Client, error) {
	return rest.HTTPClientFor(restConfig)
}

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	assets, err := controlPlaneAssets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "manifests", "crd")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to start the API server: %v\n", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restConfig = cfg

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to create a client: %v\n", err)
		return 1
	}
	return m.Run()
}

// controlPlaneAssets returns KUBEBUILDER_ASSETS, or the folder hack/controlplane.sh
// prints (the script builds nothing when its cache is warm).
func controlPlaneAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", "controlplane.sh")).Output()
	if err != nil {
		return "", fmt.Errorf("failed to locate the control plane binaries "+
			"(set KUBEBUILDER_ASSETS or run hack/controlplane.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("failed to create namespace: %v", err)
	}
	return ns.Name
}

// readManifest decodes a testdata YAML file as written, without going through
// the Go types, so that nothing the types would drop is lost on the way.
func readManifest(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatalf("failed to decode %s: %v", name, err)
	}
	return obj
}

func TestDocumentedManifestsAreAccepted(t *testing.T) {
	ns := newNamespace(t)
	for _, name := range []string{
		"seed-keda.yaml", "elasti-full.yaml", "elasti-legacy.yaml", "statefulset-hpa.yaml",
	} {
		t.Run(name, func(t *testing.T) {
			obj := readManifest(t, name)
			obj.SetNamespace(ns)
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Fatalf("Create() = %v, want the manifest accepted unchanged", err)
			}
		})
	}
}

func TestUnknownTriggerMetadataIsKept(t *testing.T) {
	ns := newNamespace(t)
	obj := readManifest(t, "elasti-legacy.yaml")
	obj.SetNamespace(ns)
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}

	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	triggers, _, _ := unstructured.NestedSlice(got.Object, "spec", "triggers")
	if len(triggers) != 1 {
		t.Fatalf("stored %d triggers, want 1", len(triggers))
	}
	metadata, _ := triggers[0].(map[string]any)["metadata"].(map[string]any)
	if metadata["metricName"] != "legacy_requests" {
		t.Errorf("metadata.metricName = %v, want %q kept", metadata["metricName"], "legacy_requests")
	}
}
