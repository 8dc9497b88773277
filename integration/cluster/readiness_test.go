package cluster_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/podnet"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// post sends an empty POST to the pod at podIP.
func post(ctx context.Context, podIP netip.Addr, path string) (int, error) {
	lo, _ := podnet.Loopback(podIP)
	url := "http://" + netip.AddrPortFrom(lo, appPort).String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// onePod returns the namespace's only pod.
func onePod(t *testing.T, c *cluster.Cluster, ns string) corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := c.Client.List(t.Context(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatalf("failed to list pods: %v", err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("namespace has %d pods, want 1", len(pods.Items))
	}
	return pods.Items[0]
}

// TestReadinessFollowsTheApp checks that the endpoint leaves the ready set when the app
// reports unready or its process exits, and comes back when the app recovers or the
// node agent restarts it.
func TestReadinessFollowsTheApp(t *testing.T) {
	c := cluster.Shared(t)
	tests := []struct {
		name         string
		breakIt      string
		fixIt        string
		wantRestarts int32
	}{
		{name: "flap", breakIt: "/control/unready", fixIt: "/control/ready", wantRestarts: 0},
		{name: "exit", breakIt: "/exit/3", wantRestarts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := c.NewNamespace(t)
			deploy(t, c, newDeployment(ns, 1, testapp.ContainerOptions{}))
			ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ip := ips[0]

			if code, err := post(t.Context(), ip, tt.breakIt); err != nil || code >= 300 {
				t.Fatalf("POST %s = %d, %v, want success", tt.breakIt, code, err)
			}
			if _, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 0, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			pod := onePod(t, c, ns)
			if isReady(pod) {
				t.Errorf("pod %s is Ready after %s, want not ready", pod.Name, tt.breakIt)
			}

			if tt.fixIt != "" {
				if code, err := post(t.Context(), ip, tt.fixIt); err != nil || code >= 300 {
					t.Fatalf("POST %s = %d, %v, want success", tt.fixIt, code, err)
				}
			}
			got, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != ip {
				t.Errorf("endpoint after recovery = %s, want the same pod IP %s", got[0], ip)
			}
			pod = onePod(t, c, ns)
			if n := pod.Status.ContainerStatuses[0].RestartCount; n != tt.wantRestarts {
				t.Errorf("restartCount = %d, want %d", n, tt.wantRestarts)
			}
			if code, _, _, err := get(t.Context(), ip, "/"); err != nil || code != http.StatusOK {
				t.Errorf("GET / after recovery = %d, %v, want 200", code, err)
			}
		})
	}
}

func isReady(pod corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestDeletionWaitsForGracePeriod checks that a pod whose process ignores nothing but
// takes its time to shut down keeps serving during its shutdown delay, and is gone
// once it exits.
func TestDeletionWaitsForGracePeriod(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deploy(t, c, newDeployment(ns, 1, testapp.ContainerOptions{ShutdownDelay: 2 * time.Second}))
	ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pod := onePod(t, c, ns)
	pids := podPIDs(t, c, ns)

	began := time.Now()
	if err := c.Client.Delete(t.Context(), &pod); err != nil {
		t.Fatalf("failed to delete pod: %v", err)
	}
	// The app keeps its listener open during its shutdown delay.
	if code, _, _, err := get(t.Context(), ips[0], "/"); err != nil || code != http.StatusOK {
		t.Errorf("GET / during shutdown delay = %d, %v, want 200", code, err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true,
		func(ctx context.Context) (bool, error) {
			err := c.Client.Get(ctx, client.ObjectKeyFromObject(&pod), &corev1.Pod{})
			return client.IgnoreNotFound(err) == nil && err != nil, nil
		})
	if err != nil {
		t.Fatalf("pod was not removed: %v", err)
	}
	if elapsed := time.Since(began); elapsed < 2*time.Second {
		t.Errorf("pod removed after %s, want after its 2s shutdown delay", elapsed)
	}
	for _, pid := range pids {
		if processExists(pid) {
			t.Errorf("process %d outlived its pod", pid)
		}
	}
}
