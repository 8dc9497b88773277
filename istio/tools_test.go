package istio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tool finds a command-line tool the tests run: the path in the environment
// variable env if set, otherwise the path the hack/ script prints (it builds the
// pinned version into a cache when needed). A test that needs it fails, not skips,
// when neither works.
type tool struct {
	env    string
	script string

	once sync.Once
	path string
	err  error
}

var (
	kubectlTool  = &tool{env: "KUBECTL", script: "kubectl.sh"}
	istioctlTool = &tool{env: "ISTIOCTL", script: "istioctl.sh"}
)

// find returns the tool's path or fails t.
func (tl *tool) find(t *testing.T) string {
	t.Helper()
	tl.once.Do(func() {
		if p := os.Getenv(tl.env); p != "" {
			tl.path = p
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		tl.path, tl.err = runScript(ctx, filepath.Join(repoRoot, "hack", tl.script))
	})
	if tl.err != nil {
		t.Fatalf("failed to find %s: set %s or make hack/%s work: %v", tl.script, tl.env, tl.script, tl.err)
	}
	return tl.path
}

// kubectl runs kubectl against the test API server and returns its combined
// output.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlTool.find(t), append([]string{"--kubeconfig", testKubeconfig}, args...)...)
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}
