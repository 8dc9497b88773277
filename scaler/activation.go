package scaler

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// activationResult is the outcome of one coalesced activation.
type activationResult struct {
	desired int32
	wrote   bool
	err     error
}

// ActivationServer serves the activation API. Every replica runs one; only the
// elected leader answers, the others say UNAVAILABLE so callers retry elsewhere.
// It is safe for concurrent use.
type ActivationServer struct {
	activationv1.UnimplementedActivationServiceServer
	s *Scaler
}

var _ activationv1.ActivationServiceServer = (*ActivationServer)(nil)

// ActivationServer returns the scaler's activation API.
func (s *Scaler) ActivationServer() *ActivationServer {
	return &ActivationServer{s: s}
}

// Activate brings an ElastiService's workload up from zero. Concurrent calls for
// one service share one scale write; a call for a workload already at or above
// its minimum writes nothing and answers the current state.
func (a *ActivationServer) Activate(
	ctx context.Context,
	req *activationv1.ActivateRequest,
) (*activationv1.ActivateResponse, error) {
	began := time.Now()
	resp, result, err := a.activate(ctx, req)
	a.s.metrics.activationDelay.WithLabelValues(result).Observe(time.Since(began).Seconds())
	if result != "rejected" {
		a.s.metrics.activations.WithLabelValues(req.GetNamespace(), req.GetName(), result).Inc()
	}
	return resp, err
}

func (a *ActivationServer) activate(
	ctx context.Context,
	req *activationv1.ActivateRequest,
) (*activationv1.ActivateResponse, string, error) {
	select {
	case <-a.s.elected:
	default:
		return nil, "rejected", status.Error(codes.Unavailable, "this elasti-scaler replica is not the leader")
	}
	if msgs := append(validation.IsDNS1123Label(req.GetNamespace()),
		validation.IsDNS1123Subdomain(req.GetName())...); len(msgs) > 0 {
		return nil, "rejected", status.Errorf(codes.InvalidArgument,
			"namespace %q and name %q must be valid object names: %v", req.GetNamespace(), req.GetName(), msgs)
	}

	key := types.NamespacedName{Namespace: req.GetNamespace(), Name: req.GetName()}
	cached := &v1alpha1.ElastiService{}
	if err := a.s.reader.Get(ctx, key, cached); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "rejected", status.Errorf(codes.NotFound, "there is no ElastiService %q", key.String())
		}
		return nil, "error", status.Errorf(codes.Unavailable, "failed to get ElastiService %q: %v", key, err)
	}
	es := cached.DeepCopy()

	st := a.s.states.get(key)
	st.mu.Lock()
	st.lastActivation = time.Now()
	st.mu.Unlock()

	res := a.s.coalesce(ctx, es, st)
	if res.err != nil {
		var te *targetError
		if errors.As(res.err, &te) {
			return nil, "error", status.Error(codes.FailedPrecondition, te.message)
		}
		return nil, "error", status.Errorf(codes.Unavailable, "failed to scale up: %v", res.err)
	}
	resp, err := a.answer(ctx, es, res)
	result := "noop"
	if res.wrote {
		result = "scaled"
	}
	return resp, result, err
}

// coalesce runs one scale-up for all concurrent callers of a service: the first
// caller starts it, later ones wait for its result.
func (s *Scaler) coalesce(ctx context.Context, es *v1alpha1.ElastiService, st *serviceState) activationResult {
	st.mu.Lock()
	f := st.flight
	leader := f == nil
	if leader {
		f = &activationFlight{done: make(chan struct{})}
		st.flight = f
	}
	st.mu.Unlock()

	if leader {
		// The write must not be cut short by the first caller going away: the
		// others are waiting on it.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		desired, wrote, err := s.scaleUp(wctx, s.activationAPI, es, "a request arrived while it was at zero")
		cancel()
		f.result = activationResult{desired: desired, wrote: wrote, err: err}
		st.mu.Lock()
		st.flight = nil
		st.mu.Unlock()
		close(f.done)
		s.wakeReconciler(es)
		return f.result
	}
	select {
	case <-f.done:
		return f.result
	case <-ctx.Done():
		return activationResult{err: ctx.Err()}
	}
}

// answer builds the response from the Service's ready endpoints.
func (a *ActivationServer) answer(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	res activationResult,
) (*activationv1.ActivateResponse, error) {
	ready, err := a.s.readyEndpoints(ctx, es.Namespace, es.Spec.Service)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	resp := &activationv1.ActivateResponse{
		State:           activationv1.ActivateResponse_STATE_SCALING_UP,
		Service:         es.Spec.Service,
		DesiredReplicas: res.desired,
		ReadyReplicas:   int32(ready),
		RetryAfter:      durationpb.New(a.s.opts.ActivationRetryAfter),
	}
	if ready > 0 {
		resp.State = activationv1.ActivateResponse_STATE_READY
	}
	if t := es.Status.LastScaledUpTime; t != nil {
		resp.ScaledUpTime = timestamppb.New(t.Time)
	}
	return resp, nil
}
