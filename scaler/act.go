package scaler

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// act moves the service one step toward where its observation says it should be,
// and sets status.mode to where its traffic goes. It returns how soon it needs to
// look again (zero for no particular hurry).
func (s *Scaler) act(ctx context.Context, es *v1alpha1.ElastiService, obs observation) (time.Duration, error) {
	// Without a target or a Service there is nothing to scale or route: leave
	// both as they are and let the conditions say what is missing.
	if obs.targetErr != nil || !obs.serviceFound {
		return 0, nil
	}
	if obs.scale.Spec == 0 {
		return 0, s.actAtZero(ctx, es, obs)
	}
	st := s.states.get(client.ObjectKeyFromObject(es))
	if since := st.pendingHold(); !since.IsZero() {
		return s.continueScaleDown(ctx, es, obs, st, since)
	}
	// A service still in hold with replicas is coming up from zero: it goes back
	// to serve before it may go down again.
	if es.Status.Mode != v1alpha1.ModeHold && s.canScaleDown(es, obs) {
		return s.beginScaleDown(ctx, es, st)
	}
	return s.serveIfReady(ctx, es, obs, st)
}

// actAtZero keeps a workload at zero in hold, or brings it up when a trigger is
// active or the enabled window is closed.
func (s *Scaler) actAtZero(ctx context.Context, es *v1alpha1.ElastiService, obs observation) error {
	reason := ""
	switch {
	case obs.hasVerdict && obs.verdict.Active:
		reason = "a trigger is at or above its threshold"
	case !obs.zeroAllowed:
		reason = "scale-to-zero is not allowed now by enabledPeriod"
	}
	if reason != "" {
		_, _, err := s.scaleUp(ctx, s.api, es, reason)
		return err
	}

	// At zero the traffic must be held, whoever scaled the workload down, and
	// KEDA must stay paused so it does not fight the zero.
	if atZero, err := s.pauseAtZero(ctx, es); err != nil || !atZero {
		return err
	}
	if active, err := s.hpaActiveAtZero(ctx, es); err != nil {
		return err
	} else if active {
		s.warnOnce(es, "HPAActiveAtZero", "the HorizontalPodAutoscaler %q has minReplicas 0 "+
			"and may act on a target at zero: give it minReplicas 1 or more", es.Spec.Autoscaler.Name)
	}
	return s.hold(ctx, es)
}

// pauseAtZero pauses KEDA if the workload is still at zero, and reports whether it
// is. The scale lock and a fresh read keep the pause from undoing an activation
// that landed since observe. The route switch that follows runs outside the lock,
// so an activation never waits for it: one that lands after this read finds the
// routes in hold or about to be, which is where a service coming up from zero is
// anyway, and its own reconcile switches them back to serve when the pods are ready.
func (s *Scaler) pauseAtZero(ctx context.Context, es *v1alpha1.ElastiService) (bool, error) {
	st := s.states.get(client.ObjectKeyFromObject(es))
	st.scaleMu.Lock()
	defer st.scaleMu.Unlock()
	cur, err := s.api.targets.get(ctx, es)
	if err != nil {
		return false, err
	}
	st.noteScale(cur.Spec)
	if cur.Spec > 0 {
		return false, nil
	}
	return true, s.pauseKEDA(ctx, s.api, es)
}

// canScaleDown reports whether every condition for going to zero holds. An idle
// verdict reached before the last scale-up says nothing about the traffic that
// caused it, so only a later one counts.
func (s *Scaler) canScaleDown(es *v1alpha1.ElastiService, obs observation) bool {
	up := es.Status.LastScaledUpTime
	return obs.hasVerdict && obs.verdict.Idle &&
		(up == nil || obs.verdict.At.After(up.Time)) &&
		obs.now.Sub(obs.verdict.At) <= 2*s.opts.PollingInterval &&
		obs.zeroAllowed && obs.autoscalerErr == nil &&
		cooldownLeft(es, obs.now) <= 0
}

// beginScaleDown pauses KEDA and switches the routes to hold; the scale write
// follows once the change has had time to reach the proxies.
func (s *Scaler) beginScaleDown(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	st *serviceState,
) (time.Duration, error) {
	if err := s.pauseKEDA(ctx, s.api, es); err != nil {
		return 0, err
	}
	if err := s.hold(ctx, es); err != nil {
		return 0, err
	}
	st.setPendingHold(time.Now())
	return s.opts.PropagationDelay, nil
}

// continueScaleDown finishes a scale-down begun at since, or calls it off when an
// activation arrived or the service is no longer idle.
func (s *Scaler) continueScaleDown(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	obs observation,
	st *serviceState,
	since time.Time,
) (time.Duration, error) {
	if st.activatedSince(since) || !s.canScaleDown(es, obs) {
		st.setPendingHold(time.Time{})
		s.event(es, "Normal", "ScaleDownCancelled", "ScaleDown",
			"scale to zero called off: the service was activated or is no longer idle")
		if err := s.resumeKEDA(ctx, s.api, es); err != nil {
			return 0, err
		}
		return 0, s.serve(ctx, es)
	}
	if left := s.opts.PropagationDelay - time.Since(since); left > 0 {
		return left, nil
	}

	// The last check and the write happen under the scale lock, which an
	// activation also takes: an activation is either seen here or sees zero.
	st.scaleMu.Lock()
	defer st.scaleMu.Unlock()
	if st.activatedSince(since) {
		return time.Millisecond, nil
	}
	before, wrote, err := s.api.targets.update(ctx, es, func(cur scaleState) (int32, error) {
		if cur.Spec == 0 {
			return 0, errStopScale
		}
		return 0, nil
	})
	s.metrics.scaled(es, "down", err)
	if err != nil {
		return 0, err
	}
	st.noteScale(0)
	st.setPendingHold(time.Time{})
	es.Status.Mode = v1alpha1.ModeHold
	s.metrics.setMode(es, v1alpha1.ModeHold)
	if wrote {
		s.log.Info("scaled to zero", "elastiService", client.ObjectKeyFromObject(es).String(),
			"from", before.Spec)
		s.event(es, "Normal", "ScaledToZero", "ScaleDown",
			fmt.Sprintf("scaled %s %q from %d to 0: every trigger was below its threshold",
				es.Spec.ScaleTargetRef.Kind, es.Spec.ScaleTargetRef.Name, before.Spec))
	}
	return 0, nil
}

// serveIfReady switches a service in hold back to serve once its Service has had
// a ready endpoint for the propagation delay, and keeps a serving service's KEDA
// resumed. The wait matters: in serve mode requests go straight to the pods, and
// a proxy that has the new route before the new endpoints answers 503.
func (s *Scaler) serveIfReady(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	obs observation,
	st *serviceState,
) (time.Duration, error) {
	if es.Status.Mode == v1alpha1.ModeHold {
		ready := st.readyFor(obs.readyEndpoints > 0, obs.now)
		if obs.readyEndpoints == 0 {
			return 0, nil
		}
		if left := s.opts.PropagationDelay - ready; left > 0 {
			return left, nil
		}
		if err := s.recordMissedScaleUp(ctx, es, obs.now); err != nil {
			return 0, err
		}
	}
	if err := s.resumeKEDA(ctx, s.api, es); err != nil {
		return 0, err
	}
	return 0, s.serve(ctx, es)
}

// recordMissedScaleUp sets lastScaledUpTime to now for a service coming back from
// zero whose record would already let it go down again. That happens when the
// scale-up was not ours (another writer scaled the workload while it was in hold),
// or when the scaler stopped, or its status patch failed, beside an activation's
// scale write. Recording late only makes the cooldown start later.
func (s *Scaler) recordMissedScaleUp(ctx context.Context, es *v1alpha1.ElastiService, now time.Time) error {
	if es.Spec.Cooldown() == 0 || cooldownLeft(es, now) > 0 {
		return nil
	}
	s.log.Info("recording a scale-up from zero that has no lastScaledUpTime yet",
		"elastiService", client.ObjectKeyFromObject(es).String())
	return s.recordScaleUp(ctx, s.api, es, now)
}
