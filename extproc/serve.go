package extproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// expiredGrace is how long, after the drain timeout, streams get to send the
// 503 answers of the requests that were still held before the server stops.
const expiredGrace = time.Second

// Serving serves the ext_proc and gRPC health services on a listener until its
// context ends, then drains. Create it with Start.
type Serving struct {
	grpc   *grpc.Server
	health *health.Server
	done   chan error
	// draining is set when the drain begins, for the readiness probe.
	draining atomic.Bool
}

// Start serves s and the gRPC health service on lis. Both ext_proc and the
// overall health report SERVING until ctx ends; then the health turns
// NOT_SERVING, no new stream is accepted, and held requests keep being answered
// until they are released or time out, for at most drainTimeout; those still
// held then are answered 503 and the server stops. Wait returns when it did.
func Start(
	ctx context.Context,
	s *Server,
	lis net.Listener,
	drainTimeout time.Duration,
	opts ...grpc.ServerOption,
) *Serving {
	sv := &Serving{
		grpc:   grpc.NewServer(opts...),
		health: health.NewServer(),
		done:   make(chan error, 1),
	}
	extprocv3.RegisterExternalProcessorServer(sv.grpc, s)
	healthpb.RegisterHealthServer(sv.grpc, sv.health)
	sv.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	sv.health.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName,
		healthpb.HealthCheckResponse_SERVING)

	served := make(chan error, 1)
	go func() { served <- sv.grpc.Serve(lis) }()
	go func() { sv.done <- sv.run(ctx, s, served, drainTimeout) }()
	return sv
}

// Draining reports whether the drain has begun.
func (sv *Serving) Draining() bool {
	return sv.draining.Load()
}

// Wait blocks until the server stopped and returns why it stopped early, or nil
// after a drain.
func (sv *Serving) Wait() error {
	return <-sv.done
}

// run waits for ctx or a serve failure, then drains.
func (sv *Serving) run(
	ctx context.Context,
	s *Server,
	served <-chan error,
	drainTimeout time.Duration,
) error {
	select {
	case err := <-served:
		sv.grpc.Stop()
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("failed to serve ext_proc: %w", err)
		}
		return nil
	case <-ctx.Done():
	}

	sv.draining.Store(true)
	sv.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		sv.grpc.GracefulStop()
		close(stopped)
	}()

	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.expireHolds()
		grace := time.NewTimer(expiredGrace)
		select {
		case <-stopped:
		case <-grace.C:
		}
		grace.Stop()
		sv.grpc.Stop()
		<-stopped
	}
	<-served
	return nil
}
