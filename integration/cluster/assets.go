package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// kedaModule is the KEDA release whose ScaledObject CRD the cluster installs. It is
// read from the Go module cache, not kept in this repository.
const kedaModule = "github.com/kedacore/keda/v2@v2.20.2"

// errNoAssets explains how to get the control plane binaries.
var errNoAssets = errors.New("control plane binaries not found: run hack/controlplane.sh " +
	"(it builds etcd, kube-apiserver and kube-controller-manager and prints their folder) " +
	"or set KUBEBUILDER_ASSETS to a folder holding all three")

// moduleRoot returns the folder of this repository's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := goCommand(ctx, "", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(out)
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("failed to find the module root: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// FindAssets returns the folder holding etcd, kube-apiserver and
// kube-controller-manager: KUBEBUILDER_ASSETS if set, otherwise the folder
// hack/controlplane.sh prints (it builds only when its cache is empty).
func FindAssets(ctx context.Context, root string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		script := filepath.Join(root, "hack", "controlplane.sh")
		if !fileExists(script) {
			return "", errNoAssets
		}
		// Test binaries of several packages start at once; two builds into the same
		// cache folder would break each other.
		unlock, err := lockBuilds()
		if err != nil {
			return "", err
		}
		defer unlock()
		cmd := exec.CommandContext(ctx, script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%w: hack/controlplane.sh failed: %v: %s", errNoAssets, err, stderr.String())
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if !fileExists(filepath.Join(dir, name)) {
			return "", fmt.Errorf("%w (%q has no %s)", errNoAssets, dir, name)
		}
	}
	return dir, nil
}

// lockBuilds takes an exclusive lock shared by every test binary on this machine
// and returns its release.
func lockBuilds() (func(), error) {
	dir := os.Getenv("ELASTI_CACHE_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("failed to find the cache folder: %w", err)
		}
		dir = filepath.Join(cache, "elasti-mesh")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %q: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "controlplane.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to take build lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// buildTestApp compiles the test app into dir and returns the program's path.
func buildTestApp(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "testapp")
	if _, err := goCommand(ctx, root, "build", "-o", out, "./integration/cmd/testapp"); err != nil {
		return "", fmt.Errorf("failed to build the test app: %w", err)
	}
	return out, nil
}

// CRDFiles lists the CRD YAML files a test cluster installs: Istio's from the istio.io/api module,
// KEDA's ScaledObject and TriggerAuthentication from the KEDA module, and every YAML
// file in dirs (nil means the repository's manifests/crd, if that folder exists).
func CRDFiles(ctx context.Context, root string, dirs []string) ([]string, error) {
	istioDir, err := goCommand(ctx, root, "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	if err != nil {
		return nil, fmt.Errorf("failed to locate istio.io/api: %w", err)
	}
	files := []string{
		filepath.Join(strings.TrimSpace(istioDir), "kubernetes", "customresourcedefinitions.gen.yaml"),
	}

	kedaDir, err := downloadModule(ctx, kedaModule)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"} {
		files = append(files, filepath.Join(kedaDir, "config", "crd", "bases", name))
	}

	if dirs == nil {
		dirs = []string{filepath.Join(root, "manifests", "crd")}
	}
	for _, dir := range dirs {
		own, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("failed to list CRDs in %q: %w", dir, err)
		}
		files = append(files, own...)
	}
	return files, nil
}

// downloadModule fetches a module into the module cache, outside any go.mod so our
// own requirements stay untouched, and returns its folder.
func downloadModule(ctx context.Context, module string) (string, error) {
	out, err := goCommand(ctx, os.TempDir(), "mod", "download", "-json", module)
	if err != nil {
		return "", fmt.Errorf("failed to download %q: %w", module, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return "", fmt.Errorf("failed to parse go mod download output: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("failed to download %q: %s", module, info.Error)
	}
	return info.Dir, nil
}

// goCommand runs the go tool in dir and returns its standard output.
func goCommand(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if dir == os.TempDir() {
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
