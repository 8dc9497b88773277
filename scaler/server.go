package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// activationRunnable serves the activation API and gRPC health on every replica;
// the API itself refuses calls on a replica that is not the leader.
type activationRunnable struct {
	server   *grpc.Server
	listener net.Listener
}

// NeedLeaderElection is false: followers serve too, so callers get a quick
// UNAVAILABLE and retry on another replica instead of a connection error.
func (r *activationRunnable) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then stops gracefully within five seconds.
func (r *activationRunnable) Start(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- r.server.Serve(r.listener) }()
	select {
	case err := <-served:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return fmt.Errorf("failed to serve the activation API: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { r.server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		r.server.Stop()
		<-stopped
	}
	<-served
	return nil
}

// AddActivationServer adds to mgr a gRPC server on lis with the activation API and
// the gRPC health service. The server owns lis and closes it when mgr stops.
func (s *Scaler) AddActivationServer(mgr manager.Manager, lis net.Listener) error {
	srv := grpc.NewServer()
	activationv1.RegisterActivationServiceServer(srv, s.ActivationServer())
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	if err := mgr.Add(&activationRunnable{server: srv, listener: lis}); err != nil {
		return fmt.Errorf("failed to add the activation server: %w", err)
	}
	return nil
}

// wakeReconciler asks for a reconcile of es soon. When the queue is full the
// request is dropped: the EndpointSlice watch and the resync catch up.
func (s *Scaler) wakeReconciler(es *v1alpha1.ElastiService) {
	select {
	case s.wake <- event.GenericEvent{Object: es}:
	default:
	}
}
