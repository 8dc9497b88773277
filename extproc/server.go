package extproc

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/status"
)

// TargetLookup finds the ElastiService governing a Service. *Directory
// satisfies it.
type TargetLookup interface {
	// Get returns the Target for svc, or nil when no ElastiService names it.
	Get(svc ServiceKey) *Target
}

var _ TargetLookup = (*Directory)(nil)

// Server is the ext_proc gRPC service. Each gRPC stream is one HTTP request as
// Envoy processes it. Safe for concurrent use; create it with NewServer and end
// it with Close.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	log       logr.Logger
	opts      Options
	targets   TargetLookup
	readiness *Readiness
	holds     *holds
	metrics   *Metrics

	// expired is closed when the drain timeout passes: every request still
	// held is answered 503 at once.
	expired     chan struct{}
	expiredOnce sync.Once
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// NewServer returns a Server reading ElastiServices from targets and
// readiness from readiness, and activating through client. opts are taken
// through WithDefaults.
func NewServer(
	log logr.Logger,
	opts Options,
	targets TargetLookup,
	readiness *Readiness,
	client ActivationClient,
	metrics *Metrics,
) *Server {
	opts = opts.WithDefaults()
	return &Server{
		log:       log,
		opts:      opts,
		targets:   targets,
		readiness: readiness,
		holds:     newHolds(log, opts.holdsOptions(), client, readiness, metrics),
		metrics:   metrics,
		expired:   make(chan struct{}),
	}
}

// Close ends the activation loops. Call it after the gRPC server stopped.
func (s *Server) Close() {
	s.holds.close()
}

// Held returns how many requests are held for svc right now.
func (s *Server) Held(svc ServiceKey) int {
	return s.holds.held(svc)
}

// expireHolds answers every request still held with 503, for the end of a
// drain.
func (s *Server) expireHolds() {
	s.expiredOnce.Do(func() { close(s.expired) })
}

// Process answers every message Envoy sends on one stream, in order, and ends
// the stream with OK once request_headers is answered. A stream that ends from
// Envoy's side (EOF or cancellation) ends the call.
//
// The decision is made on request_headers and nothing after it needs us, so
// the stream closes there: Envoy takes a clean close as the end of external
// processing for that request and goes on without it. Otherwise the stream
// lives as long as the HTTP request, a WebSocket or a long download through the
// hold route pins a stream here, a drain waits for it, and a restart resets it,
// which Envoy without failure_mode_allow counts as a failed request. A
// misconfigured filter that sends other messages before request_headers still
// gets each of them answered.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	s.metrics.streamOpened()
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}

		// In observability mode Envoy ignores answers; a message without a
		// request (a flow-control update) asks for none.
		if req.GetObservabilityMode() {
			continue
		}
		if req.GetRequestHeaders() != nil {
			return s.answerHeaders(ctx, stream, req)
		}
		resp := continueResponse(req)
		if resp == nil {
			continue
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// answerHeaders decides on request_headers, holding the request if its
// service is not ready, and sends the answer.
func (s *Server) answerHeaders(
	ctx context.Context,
	stream extprocv3.ExternalProcessor_ProcessServer,
	req *extprocv3.ProcessingRequest,
) error {
	r := RequestFromProcessing(req)
	d := Decide(&r, s.snapshot)
	var resp *extprocv3.ProcessingResponse
	switch d.Action {
	case ActionRespond:
		s.log.V(1).Info("Answering probe", "target", r.Target.String(), "status", d.Response.Status)
		resp = immediate(d.Response)
	case ActionHold:
		var err error
		if resp, err = s.hold(ctx, stream, d.Target); err != nil {
			return err
		}
	default:
		resp = continueResponse(req)
	}
	return stream.Send(resp)
}

// snapshot is the lookup Decide reads.
func (s *Server) snapshot(svc ServiceKey) Snapshot {
	t := s.targets.Get(svc)
	if t == nil {
		return Snapshot{}
	}
	return Snapshot{Target: t, Ready: s.readiness.Released(svc)}
}

// hold holds one request for t until the service is released, the hold times
// out, the stream ends or the drain expires, and returns the answer.
func (s *Server) hold(
	ctx context.Context,
	stream extprocv3.ExternalProcessor_ProcessServer,
	t *Target,
) (*extprocv3.ProcessingResponse, error) {
	svc := t.Service
	labels := []string{svc.Namespace, svc.Name}
	if !s.holds.acquire(t) {
		s.metrics.sheds.WithLabelValues(labels...).Inc()
		s.log.V(1).Info("Shedding request", "service", svc.String(), "cap", t.HeldCap)
		return immediate(ShedResponse(svc, s.opts.ShedRetryAfter)), nil
	}
	defer s.holds.release(svc)
	held := s.metrics.held.WithLabelValues(labels...)
	held.Inc()
	defer held.Dec()

	timeout, override := s.opts.holdTimeouts(t)
	if err := stream.Send(overrideTimeout(override)); err != nil {
		return nil, err
	}

	_, _, released := s.readiness.State(svc)
	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	observe := func(result string) {
		s.metrics.holdSeconds.WithLabelValues(svc.Namespace, svc.Name, result).
			Observe(time.Since(start).Seconds())
	}
	// Looked up now, so that a release of thousands of waiters at once does no
	// metric lookups on its way out.
	releasedHold := s.metrics.holdSeconds.WithLabelValues(svc.Namespace, svc.Name, resultReleased)
	releases := s.metrics.releases.WithLabelValues(labels...)

	select {
	case <-released:
		releasedHold.Observe(time.Since(start).Seconds())
		releases.Inc()
		return continueResponse(&extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_RequestHeaders{}}), nil
	case <-timer.C:
		observe(resultTimeout)
		s.metrics.timeouts.WithLabelValues(labels...).Inc()
		return immediate(TimeoutResponse(svc, timeout)), nil
	case <-s.expired:
		observe(resultDrained)
		return immediate(DrainedResponse(svc, s.opts.ShedRetryAfter)), nil
	case <-ctx.Done():
		observe(resultCanceled)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}
