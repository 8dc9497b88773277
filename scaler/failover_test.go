package scaler_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// TestLeaderFailover runs two scalers on one Lease. The follower refuses
// activations with UNAVAILABLE; the leader accepts one and dies before the
// workload is ready; the follower takes over, answers the caller's retries, and
// finishes the activation by switching the routes back to serve.
func TestLeaderFailover(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	opts := testOptions(c, ns)
	a := newScaler(t, c, ns, opts, &recordingRouter{})
	b := newScaler(t, c, ns, opts, &recordingRouter{})
	t.Cleanup(func() {
		deleteElastiServices(t, c, ns)
		a.stop()
		b.stop()
	})

	es := newElastiService(ns, 600, trafficQuery(ns))
	create(t, c, newService(ns), newDeployment(ns, 0), es)
	waitMode(t, c, ns, v1alpha1.ModeHold, 30*time.Second)

	apis := []activationv1.ActivationServiceClient{
		dialActivation(t, a.ActivationAddr().String()),
		dialActivation(t, b.ActivationAddr().String()),
	}
	scalers := []*testScaler{a, b}
	req := &activationv1.ActivateRequest{Namespace: ns, Name: appName}

	// Exactly one replica accepts: the leader.
	leader := -1
	waitFor(t, 30*time.Second, "the leader to accept an activation", func(ctx context.Context) (bool, error) {
		for i, api := range apis {
			_, err := api.Activate(ctx, req)
			if err == nil {
				leader = i
				return true, nil
			}
			if status.Code(err) != codes.Unavailable {
				return false, err
			}
		}
		return false, nil
	})
	follower := 1 - leader
	if _, err := apis[follower].Activate(context.Background(), req); status.Code(err) != codes.Unavailable {
		t.Fatalf("follower Activate() error = %v, want code Unavailable", err)
	}

	// The leader dies with the scale-up under way and the routes still held.
	scalers[leader].stop()
	if es, err := getES(context.Background(), c, ns); err != nil || es.Status.Mode != v1alpha1.ModeHold {
		t.Fatalf("mode when the leader stopped = %q (%v), want hold: the test lost its race", es.Status.Mode, err)
	}

	// The caller keeps retrying, as elasti-extproc does, and the new leader
	// completes the activation.
	waitFor(t, time.Minute, "the new leader to answer READY", func(ctx context.Context) (bool, error) {
		resp, err := apis[follower].Activate(ctx, req)
		return err == nil && resp.GetState() == activationv1.ActivateResponse_STATE_READY, err
	})
	waitMode(t, c, ns, v1alpha1.ModeServe, 30*time.Second)
	if got, err := replicas(context.Background(), c, ns); err != nil || got != 1 {
		t.Errorf("replicas after failover = %d (%v), want 1", got, err)
	}
}
