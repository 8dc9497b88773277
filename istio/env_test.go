package istio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
)

// The package's tests share one real kube-apiserver (with etcd) that serves the
// ElastiService CRD and Istio's own CRDs, so every object the tests write is checked
// by Istio's OpenAPI schemas and CEL rules exactly as in a cluster.
var (
	testConfig *rest.Config
	testClient client.WithWatch
	// testKubeconfig is an admin kubeconfig file for the test API server.
	testKubeconfig string
	testScheme     = runtime.NewScheme()
	// repoRoot is the repository's top folder.
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	env, err := startEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failed to start the test API server:", err)
		return 1
	}
	code := m.Run()
	_ = os.Remove(testKubeconfig)
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to stop the test API server:", err)
	}
	return code
}

// startEnv starts etcd and kube-apiserver with the project's and Istio's CRDs and
// the KEDA ScaledObject CRD, and sets the package's test client.
func startEnv() (*envtest.Environment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	repoRoot = root
	assets, err := cluster.FindAssets(ctx, root)
	if err != nil {
		return nil, err
	}
	// The project's CRD, Istio's from the istio.io/api module this project builds
	// with, and KEDA's, as the local test cluster installs them.
	crds, err := cluster.CRDFiles(ctx, root, nil)
	if err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: crds, ErrorIfPathMissing: true},
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}

	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, AddToScheme} {
		if err := add(testScheme); err != nil {
			return nil, err
		}
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		return nil, err
	}
	kubeconfig, err := os.CreateTemp("", "elasti-istio-kubeconfig-*")
	if err != nil {
		return nil, err
	}
	defer kubeconfig.Close()
	if _, err := kubeconfig.Write(env.KubeConfig); err != nil {
		return nil, err
	}
	testConfig, testClient, testKubeconfig = cfg, c, kubeconfig.Name()
	return env, nil
}

// runScript runs a hack/ script and returns the last line it printed.
func runScript(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("failed to run %q: %w: %s", path, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// createNamespace creates a namespace for one test and deletes it at the end.
func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := testClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("failed to create namespace %q: %v", name, err)
	}
	t.Cleanup(func() { _ = testClient.Delete(context.Background(), ns) })
}
