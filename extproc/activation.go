package extproc

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// ActivationClient is the part of elasti-scaler's activation API that extproc
// calls. activationv1.ActivationServiceClient satisfies it.
type ActivationClient interface {
	Activate(
		ctx context.Context,
		in *activationv1.ActivateRequest,
		opts ...grpc.CallOption,
	) (*activationv1.ActivateResponse, error)
}

var _ ActivationClient = (activationv1.ActivationServiceClient)(nil)

// backoff computes the wait after the n-th consecutive failed activation call
// (n from 1): exponential from base, capped at max, with jitter drawn from the
// upper half so that replicas do not call in step.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// activationLoop calls Activate for t until nobody waits for its Service, one
// call at a time. The holds registry guarantees that at most one loop runs per
// Service. While the Service has ready endpoints it makes no call; if they go
// away while requests still wait, it calls again.
func (h *holds) activationLoop(t *Target) {
	log := h.log.WithValues("namespace", t.Service.Namespace, "elastiService", t.Name)
	failures := 0
	for {
		stop, wake := h.stopActivation(t.Service)
		if stop {
			return
		}

		wait := h.opts.ActivationRetryInterval
		if !h.readiness.EndpointsReady(t.Service) {
			resp, err := h.activateOnce(t)
			switch {
			case h.closing():
				return
			case err == nil:
				failures = 0
				if ra := resp.GetRetryAfter(); ra != nil && ra.AsDuration() > 0 {
					wait = min(ra.AsDuration(), h.opts.ActivationBackoffMax)
				}
			default:
				failures++
				wait = h.failureWait(err, failures)
				log.V(1).Info("Activation call failed", "attempt", failures, "retryIn", wait,
					"error", err.Error())
			}
		}

		timer := time.NewTimer(wait)
		select {
		case <-h.done:
			timer.Stop()
			return
		case <-wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// failureWait is how long to wait after a failed call. Errors that retrying
// cannot fix soon are retried at the slowest pace, still while anyone waits,
// since the object or the target may be fixed meanwhile.
func (h *holds) failureWait(err error, failures int) time.Duration {
	switch status.Code(err) {
	case codes.NotFound, codes.FailedPrecondition, codes.InvalidArgument:
		return h.opts.ActivationBackoffMax
	}
	return backoff(h.opts.ActivationBackoffBase, h.opts.ActivationBackoffMax, failures)
}

// activateOnce makes one bounded Activate call and counts it.
func (h *holds) activateOnce(t *Target) (*activationv1.ActivateResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.ActivationCallTimeout)
	defer cancel()

	// Close cuts a call short rather than waiting out its timeout.
	callDone := make(chan struct{})
	defer close(callDone)
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-callDone:
		}
	}()

	resp, err := h.client.Activate(ctx, &activationv1.ActivateRequest{
		Namespace: t.Service.Namespace,
		Name:      t.Name,
	})
	result := "ok"
	if err != nil {
		result = "error"
	}
	h.metrics.activations.WithLabelValues(t.Service.Namespace, t.Service.Name, result).Inc()
	return resp, err
}
