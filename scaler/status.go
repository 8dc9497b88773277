package scaler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// setConditions sets TargetFound, AutoscalerFound and TriggersHealthy from the
// observation, with a warning event each time one of them turns false.
func (s *Scaler) setConditions(es *v1alpha1.ElastiService, obs observation) {
	var te *targetError
	switch {
	case errors.As(obs.targetErr, &te):
		s.condition(es, v1alpha1.ConditionTargetFound, metav1.ConditionFalse, te.reason, te.message)
	case !obs.serviceFound:
		s.condition(es, v1alpha1.ConditionTargetFound, metav1.ConditionFalse, "ServiceNotFound",
			fmt.Sprintf("Service %q does not exist in namespace %q", es.Spec.Service, es.Namespace))
	default:
		s.condition(es, v1alpha1.ConditionTargetFound, metav1.ConditionTrue, "Found",
			fmt.Sprintf("%s %q and Service %q exist", es.Spec.ScaleTargetRef.Kind,
				es.Spec.ScaleTargetRef.Name, es.Spec.Service))
	}

	switch {
	case es.Spec.Autoscaler == nil:
		s.condition(es, v1alpha1.ConditionAutoscalerFound, metav1.ConditionTrue, "NotConfigured",
			"no autoscaler is named")
	case obs.autoscalerErr != nil:
		s.condition(es, v1alpha1.ConditionAutoscalerFound, metav1.ConditionFalse, "AutoscalerNotFound",
			obs.autoscalerErr.Error()+"; the workload is not scaled to zero until it is found")
	default:
		s.condition(es, v1alpha1.ConditionAutoscalerFound, metav1.ConditionTrue, "Found",
			fmt.Sprintf("%s %q exists", es.Spec.Autoscaler.Type, es.Spec.Autoscaler.Name))
	}

	s.setTriggersCondition(es, obs)
}

func (s *Scaler) setTriggersCondition(es *v1alpha1.ElastiService, obs observation) {
	const cond = v1alpha1.ConditionTriggersHealthy
	switch {
	case len(es.Spec.Triggers) == 0:
		s.condition(es, cond, metav1.ConditionTrue, "NoTriggers",
			"no triggers: the workload is never scaled to zero")
	case !obs.hasVerdict:
		s.condition(es, cond, metav1.ConditionUnknown, "NotEvaluated",
			"the triggers have not been evaluated yet")
	case obs.verdict.Err != nil:
		reason := map[string]string{
			queryErrUptime: "PrometheusUnhealthy", queryErrConfig: "InvalidTrigger",
			queryErrEmpty: "EmptyResult", queryErrMultiple: "AmbiguousResult",
		}[obs.verdict.ErrKind]
		s.condition(es, cond, metav1.ConditionFalse, cmpOr(reason, "QueryFailed"),
			obs.verdict.Err.Error()+"; the workload is not scaled to zero while a trigger cannot be evaluated")
	default:
		values := make([]string, len(obs.verdict.Values))
		for i, v := range obs.verdict.Values {
			values[i] = strconv.FormatFloat(v, 'g', 4, 64)
		}
		s.condition(es, cond, metav1.ConditionTrue, "Evaluated",
			"trigger values: "+strings.Join(values, ", "))
	}
}

// setReady sets Ready from the other conditions and the outcome of act.
func (s *Scaler) setReady(es *v1alpha1.ElastiService, obs observation, actErr error) {
	const cond = v1alpha1.ConditionReady
	target := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionTargetFound)
	switch {
	case target != nil && target.Status != metav1.ConditionTrue:
		s.condition(es, cond, metav1.ConditionFalse, target.Reason, target.Message)
	case actErr != nil:
		s.condition(es, cond, metav1.ConditionFalse, "ReconcileFailed", actErr.Error())
	case obs.windowErr != nil:
		s.condition(es, cond, metav1.ConditionFalse, "InvalidEnabledPeriod",
			obs.windowErr.Error()+"; the workload is kept up until it is fixed")
	default:
		s.condition(es, cond, metav1.ConditionTrue, "Reconciled",
			fmt.Sprintf("traffic goes to %s", describeMode(es.Status.Mode)))
	}
}

// condition sets a condition and records a warning event when it turns false.
func (s *Scaler) condition(
	es *v1alpha1.ElastiService,
	condType string,
	status metav1.ConditionStatus,
	reason, message string,
) {
	prev := meta.FindStatusCondition(es.Status.Conditions, condType)
	turnedFalse := status == metav1.ConditionFalse &&
		(prev == nil || prev.Status != status || prev.Reason != reason)
	meta.SetStatusCondition(&es.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: es.Generation,
	})
	if turnedFalse {
		s.event(es, "Warning", reason, "Check", message)
	}
}

// writeStatus writes the status through the status subresource when it changed,
// or when lastReconciledTime is older than the resync period.
func (s *Scaler) writeStatus(
	ctx context.Context,
	before, es *v1alpha1.ElastiService,
	now time.Time,
) error {
	es.Status.ObservedGeneration = es.Generation
	stale := es.Status.LastReconciledTime == nil ||
		now.Sub(es.Status.LastReconciledTime.Time) >= s.opts.ResyncPeriod
	if !stale && equality.Semantic.DeepEqual(before.Status, es.Status) {
		return nil
	}
	t := metav1.NewTime(now)
	es.Status.LastReconciledTime = &t
	if err := s.client.Status().Patch(ctx, es, client.MergeFrom(before), client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("failed to update status: %w", err)
	}
	return nil
}
