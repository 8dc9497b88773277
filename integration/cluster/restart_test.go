package cluster_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// TestRestartPolicy checks what happens to a bare pod whose process exits, for each
// restart policy and exit code.
func TestRestartPolicy(t *testing.T) {
	c := cluster.Shared(t)
	tests := []struct {
		policy       corev1.RestartPolicy
		exitCode     string
		wantPhase    corev1.PodPhase
		wantRestarts int32
	}{
		{policy: corev1.RestartPolicyNever, exitCode: "0", wantPhase: corev1.PodSucceeded},
		{policy: corev1.RestartPolicyNever, exitCode: "2", wantPhase: corev1.PodFailed},
		{policy: corev1.RestartPolicyOnFailure, exitCode: "0", wantPhase: corev1.PodSucceeded},
		{policy: corev1.RestartPolicyOnFailure, exitCode: "2", wantPhase: corev1.PodRunning, wantRestarts: 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/exit"+tt.exitCode, func(t *testing.T) {
			t.Parallel()
			ns := c.NewNamespace(t)
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: appLabels},
				Spec: corev1.PodSpec{
					Containers:    []corev1.Container{testapp.Container(testapp.ContainerOptions{})},
					RestartPolicy: tt.policy,
				},
			}
			if err := c.Client.Create(t.Context(), pod); err != nil {
				t.Fatalf("failed to create pod: %v", err)
			}
			if err := c.Client.Create(t.Context(), newService(ns)); err != nil {
				t.Fatalf("failed to create service: %v", err)
			}
			ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code, err := post(t.Context(), ips[0], "/exit/"+tt.exitCode); err != nil || code >= 300 {
				t.Fatalf("POST /exit/%s = %d, %v, want success", tt.exitCode, code, err)
			}

			var got corev1.Pod
			err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 20*time.Second, true,
				func(ctx context.Context) (bool, error) {
					if err := c.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
						return false, nil
					}
					statuses := got.Status.ContainerStatuses
					return got.Status.Phase == tt.wantPhase && len(statuses) == 1 &&
						statuses[0].RestartCount == tt.wantRestarts &&
						(tt.wantPhase != corev1.PodRunning || statuses[0].Ready), nil
				})
			if err != nil {
				t.Fatalf("pod phase = %s, status %+v; want phase %s with %d restarts",
					got.Status.Phase, got.Status.ContainerStatuses, tt.wantPhase, tt.wantRestarts)
			}
		})
	}
}
