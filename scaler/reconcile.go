package scaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

var _ reconcile.Reconciler = (*Scaler)(nil)

// observation is what one reconcile saw of a service's world.
type observation struct {
	now time.Time

	// scale is the target's scale; targetErr says why it could not be read.
	scale     scaleState
	targetErr error

	serviceFound   bool
	readyEndpoints int
	autoscalerErr  error

	verdict    verdict
	hasVerdict bool

	// zeroAllowed is the enabledPeriod's answer; windowErr says why it could not
	// be read (then zeroAllowed is false).
	zeroAllowed bool
	windowErr   error
}

// Reconcile brings one ElastiService's workload, routes and status in step with
// its spec and its triggers' latest verdict.
func (s *Scaler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	es := &v1alpha1.ElastiService{}
	if err := s.client.Get(ctx, req.NamespacedName, es); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get ElastiService: %w", err)
	}
	if !es.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, s.finalize(ctx, es)
	}
	if !controllerutil.ContainsFinalizer(es, v1alpha1.Finalizer) {
		patch := client.MergeFrom(es.DeepCopy())
		controllerutil.AddFinalizer(es, v1alpha1.Finalizer)
		if err := s.client.Patch(ctx, es, patch, client.FieldOwner(FieldManager)); err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to add finalizer: %w", err)
		}
	}

	before := es.DeepCopy()
	obs, err := s.observe(ctx, es)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.setConditions(es, obs)
	after, actErr := s.act(ctx, es, obs)
	s.setReady(es, obs, actErr)
	if err := s.writeStatus(ctx, before, es, obs.now); err != nil {
		return ctrl.Result{}, errors.Join(actErr, err)
	}
	if actErr != nil {
		return ctrl.Result{}, actErr
	}
	return ctrl.Result{RequeueAfter: s.nextVisit(es, obs, after)}, nil
}

// observe reads the target, the Service, the autoscaler, the verdict and the
// enabled window. Only failures to talk to the API server are errors; missing
// objects are recorded in the observation.
func (s *Scaler) observe(ctx context.Context, es *v1alpha1.ElastiService) (observation, error) {
	obs := observation{now: time.Now()}
	obs.scale, obs.targetErr = s.api.targets.get(ctx, es)
	if obs.targetErr == nil {
		s.states.get(client.ObjectKeyFromObject(es)).noteScale(obs.scale.Spec)
	}
	var te *targetError
	if obs.targetErr != nil && !errors.As(obs.targetErr, &te) {
		return obs, obs.targetErr
	}

	found, err := s.serviceExists(ctx, es.Namespace, es.Spec.Service)
	if err != nil {
		return obs, err
	}
	obs.serviceFound = found
	if found {
		if obs.readyEndpoints, err = s.readyEndpoints(ctx, es.Namespace, es.Spec.Service); err != nil {
			return obs, err
		}
	}

	obs.autoscalerErr = s.checkAutoscaler(ctx, es)
	var ae *autoscalerError
	if obs.autoscalerErr != nil && !errors.As(obs.autoscalerErr, &ae) {
		return obs, obs.autoscalerErr
	}

	obs.verdict, obs.hasVerdict = s.verdicts.get(client.ObjectKeyFromObject(es))
	obs.zeroAllowed, obs.windowErr = zeroAllowed(es.Spec.EnabledPeriod, obs.now)
	return obs, nil
}

// nextVisit returns when the service should be reconciled again even if nothing
// changes: when its cooldown ends, when its enabled window opens or closes, and at
// the latest after the resync period.
func (s *Scaler) nextVisit(es *v1alpha1.ElastiService, obs observation, pending time.Duration) time.Duration {
	next := s.opts.ResyncPeriod
	if pending > 0 && pending < next {
		next = pending
	}
	if obs.hasVerdict && obs.verdict.Idle {
		if left := cooldownLeft(es, obs.now); left > 0 && left < next {
			next = left
		}
	}
	if t := nextWindowChange(es.Spec.EnabledPeriod, obs.now); !t.IsZero() {
		if left := t.Sub(obs.now) + time.Second; left < next {
			next = left
		}
	}
	return next
}

// cooldownLeft returns how long until both the creation and the last scale-up are
// older than the cooldown period.
func cooldownLeft(es *v1alpha1.ElastiService, now time.Time) time.Duration {
	cooldown := es.Spec.Cooldown()
	left := es.CreationTimestamp.Add(cooldown).Sub(now)
	if up := es.Status.LastScaledUpTime; up != nil {
		left = max(left, up.Add(cooldown).Sub(now))
	}
	return left
}

// forget drops everything kept in memory about a service that is gone.
func (s *Scaler) forget(key types.NamespacedName) {
	s.verdicts.forget(key)
	s.states.forget(key)
	s.metrics.forget(key.Namespace, key.Name)
}
