package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// scaleUp brings the workload to at least minTargetReplicas: it records
// lastScaledUpTime, resumes KEDA, then writes max(current, minTargetReplicas). A
// workload already at or above the minimum is left alone. It returns the replica
// count the workload is headed for and whether it wrote one.
//
// A workload last seen at zero takes one round trip to the API server instead of
// three: the status patch of lastScaledUpTime goes out beside a /scale patch that
// writes only if the replicas are still zero. Should the scaler stop between the
// two, or the patch fail, the reconciler records the scale-up when it switches the
// service back to serve (recordMissedScaleUp), before any scale-down is allowed.
func (s *Scaler) scaleUp(
	ctx context.Context,
	w *writers,
	es *v1alpha1.ElastiService,
	reason string,
) (int32, bool, error) {
	st := s.states.get(client.ObjectKeyFromObject(es))
	st.scaleMu.Lock()
	defer st.scaleMu.Unlock()

	minReplicas := es.Spec.MinReplicas()
	if st.seenAtZero() {
		wrote, err := s.scaleUpFromZero(ctx, w, es, minReplicas)
		if err != nil || wrote {
			return s.scaledUp(es, st, scaleState{}, minReplicas, wrote, reason, err)
		}
	}

	// One read of /scale decides; lastScaledUpTime and KEDA's resume come
	// before the write, as the order requires, and only when there is a write.
	var want int32
	var prepErr error
	before, wrote, err := w.targets.update(ctx, es, func(c scaleState) (int32, error) {
		want = max(c.Spec, minReplicas)
		if c.Spec >= minReplicas {
			return 0, errStopScale
		}
		if prepErr = s.prepareScaleUp(ctx, w, es, c); prepErr != nil {
			return 0, prepErr
		}
		return want, nil
	})
	if prepErr != nil {
		return 0, false, prepErr
	}
	if err == nil {
		st.noteScale(want)
	}
	if !wrote && err == nil {
		return want, false, nil
	}
	return s.scaledUp(es, st, before, want, wrote, reason, err)
}

// scaleUpFromZero resumes KEDA, then writes n replicas if the workload is at zero,
// and records lastScaledUpTime meanwhile. It reports whether it wrote. The
// record is not waited for: the caller needs only the scale write, and a record
// that fails is made when the service is switched back to serve.
func (s *Scaler) scaleUpFromZero(ctx context.Context, w *writers, es *v1alpha1.ElastiService, n int32) (bool, error) {
	// KEDA's paused-replicas would pull the workload back to zero: its resume
	// must land first.
	if err := s.resumeKEDA(ctx, w, es); err != nil {
		return false, err
	}
	at := metav1.Now()
	key := client.ObjectKeyFromObject(es)
	go func() {
		// Not cut short when the activation that started it returns.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := s.patchScaleUpTime(pctx, w, key, at); err != nil {
			s.log.Error(err, "scale-up not recorded; it will be when the service is switched to serve",
				"elastiService", key.String())
		}
	}()
	wrote, err := w.targets.scaleFromZero(ctx, es, n)
	es.Status.LastScaledUpTime = &at
	return wrote, err
}

// recordTimeout bounds a lastScaledUpTime patch made in the background.
const recordTimeout = 10 * time.Second

// scaledUp reports the outcome of a scale-up write in metrics, logs and events.
func (s *Scaler) scaledUp(
	es *v1alpha1.ElastiService,
	st *serviceState,
	before scaleState,
	want int32,
	wrote bool,
	reason string,
	err error,
) (int32, bool, error) {
	s.metrics.scaled(es, "up", err)
	if err != nil {
		s.event(es, "Warning", "ScaleUpFailed", "ScaleUp", fmt.Sprintf("failed to scale up: %v", err))
		return 0, false, err
	}
	st.noteScale(want)
	if wrote {
		s.log.Info("scaled up", "elastiService", client.ObjectKeyFromObject(es).String(),
			"from", before.Spec, "to", want, "reason", reason)
		s.event(es, "Normal", "ScaledUp", "ScaleUp", fmt.Sprintf("scaled %s %q from %d to %d: %s",
			es.Spec.ScaleTargetRef.Kind, es.Spec.ScaleTargetRef.Name, before.Spec, want, reason))
	}
	return want, wrote, nil
}

// prepareScaleUp records lastScaledUpTime for a workload at zero and resumes
// KEDA, so that KEDA's paused-replicas does not pull the workload back to zero.
func (s *Scaler) prepareScaleUp(ctx context.Context, w *writers, es *v1alpha1.ElastiService, cur scaleState) error {
	if cur.Spec == 0 {
		if err := s.recordScaleUp(ctx, w, es, time.Now()); err != nil {
			return err
		}
	}
	return s.resumeKEDA(ctx, w, es)
}

// recordScaleUp sets status.lastScaledUpTime with a merge patch that touches
// nothing else, so it is safe beside the reconciler's own status writes.
func (s *Scaler) recordScaleUp(ctx context.Context, w *writers, es *v1alpha1.ElastiService, at time.Time) error {
	t := metav1.NewTime(at)
	if err := s.patchScaleUpTime(ctx, w, client.ObjectKeyFromObject(es), t); err != nil {
		return err
	}
	es.Status.LastScaledUpTime = &t
	return nil
}

// patchScaleUpTime writes status.lastScaledUpTime of the ElastiService key and
// nothing else.
func (s *Scaler) patchScaleUpTime(ctx context.Context, w *writers, key client.ObjectKey, t metav1.Time) error {
	body, err := json.Marshal(map[string]any{"status": map[string]any{"lastScaledUpTime": t}})
	if err != nil {
		return fmt.Errorf("failed to encode status patch: %w", err)
	}
	target := &v1alpha1.ElastiService{}
	target.Namespace, target.Name = key.Namespace, key.Name
	err = w.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body),
		client.FieldOwner(FieldManager))
	if err != nil {
		return fmt.Errorf("failed to record lastScaledUpTime: %w", err)
	}
	return nil
}
