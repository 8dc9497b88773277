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
func (s *Scaler) scaleUp(
	ctx context.Context,
	w *writers,
	es *v1alpha1.ElastiService,
	reason string,
) (int32, bool, error) {
	st := s.states.get(client.ObjectKeyFromObject(es))
	st.scaleMu.Lock()
	defer st.scaleMu.Unlock()

	// One read of /scale decides; lastScaledUpTime and KEDA's resume come
	// before the write, as the order requires, and only when there is a write.
	minReplicas := es.Spec.MinReplicas()
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
	if !wrote && err == nil {
		return want, false, nil
	}
	s.metrics.scaled(es, "up", err)
	if err != nil {
		s.event(es, "Warning", "ScaleUpFailed", "ScaleUp", fmt.Sprintf("failed to scale up: %v", err))
		return 0, false, err
	}
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
	body, err := json.Marshal(map[string]any{"status": map[string]any{"lastScaledUpTime": t}})
	if err != nil {
		return fmt.Errorf("failed to encode status patch: %w", err)
	}
	target := &v1alpha1.ElastiService{}
	target.Namespace, target.Name = es.Namespace, es.Name
	err = w.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body),
		client.FieldOwner(FieldManager))
	if err != nil {
		return fmt.Errorf("failed to record lastScaledUpTime: %w", err)
	}
	es.Status.LastScaledUpTime = &t
	return nil
}
