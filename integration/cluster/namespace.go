package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// logTail is how much of each pod log a failing test prints.
const logTail = 2048

// NewNamespace creates a namespace for one test, named after it, and deletes it when
// the test ends. If the test failed, the tails of the logs of the namespace's pods
// are printed first.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	prefix := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Client.Create(ctx, ns); err != nil {
		t.Fatalf("failed to create namespace: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			c.printPodLogs(t, ns.Name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Client.Delete(ctx, ns); err != nil {
			t.Errorf("failed to delete namespace %q: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func (c *Cluster) printPodLogs(t testing.TB, namespace string) {
	files, _ := filepath.Glob(filepath.Join(c.PodLogDir(), namespace+"_*.log"))
	t.Logf("cluster files: %s", c.Dir)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		t.Logf("tail of %s:\n%s", filepath.Base(f), bytes.TrimSpace(data))
	}
}
