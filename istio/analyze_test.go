package istio

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// analyze runs istioctl analyze offline over objs and fails t unless it reports
// nothing at all, not even an Info message.
func analyze(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(file, []byte(encodeYAMLDocs(t, objs)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, istioctlTool.find(t), "analyze", "--use-kube=false",
		"--failure-threshold=Info", "--output-threshold=Info", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("istioctl analyze = %v, want no findings:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "No validation issues found") {
		t.Errorf("istioctl analyze did not report a clean result:\n%s", out.String())
	}
}

// build returns the objects kubectl kustomize builds from dir.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := kubectl(t, "kustomize", dir)
	if err != nil {
		t.Fatalf("failed to build %q: %v", dir, err)
	}
	return decodeYAMLDocs(t, out)
}

// The install and the samples, as shipped, in hold as the route switch writes them,
// and with the VirtualService the switch creates, all analyze clean.
func TestIstioctlAnalyze(t *testing.T) {
	installed := build(t, "manifests/")
	samples := build(t, "manifests/samples/")
	es := elastiService("elasti-demo", "demo")
	tg := newTarget("elasti-demo", "demo", DefaultClusterDomain)

	t.Run("as shipped", func(t *testing.T) {
		analyze(t, append(installed, samples...))
	})

	t.Run("samples in hold", func(t *testing.T) {
		var objs []*unstructured.Unstructured
		held := 0
		for _, o := range samples {
			o = o.DeepCopy()
			if o.GetKind() == "VirtualService" {
				n, _, err := holdRoutes(o, tg)
				if err != nil {
					t.Fatalf("holdRoutes() = %v", err)
				}
				held += n
			}
			objs = append(objs, o)
		}
		if held == 0 {
			t.Fatalf("holdRoutes() held no route of the sample VirtualService")
		}
		analyze(t, append(installed, objs...))
	})

	t.Run("owned VirtualService", func(t *testing.T) {
		var objs []*unstructured.Unstructured
		for _, o := range samples {
			if o.GetKind() != "VirtualService" && o.GetKind() != "Gateway" {
				objs = append(objs, o)
			}
		}
		analyze(t, append(append(installed, objs...), ownedVirtualService(es, tg)))
	})
}

// The analysis can fail: a VirtualService bound to a Gateway that does not exist
// is reported.
func TestIstioctlAnalyzeReportsProblems(t *testing.T) {
	vs := decodeYAMLDocs(t, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: default}
spec:
  hosts: [nowhere]
  gateways: [missing]
  http:
  - route: [{destination: {host: missing.default.svc.cluster.local}}]`)
	file := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(file, []byte(encodeYAMLDocs(t, vs)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(istioctlTool.find(t), "analyze", "--use-kube=false", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "IST0101") {
		t.Errorf("istioctl analyze of a route on a missing Gateway = %v\n%s\nwant a failure with IST0101", err, out)
	}
}
