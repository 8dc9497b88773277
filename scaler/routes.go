package scaler

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// hold switches the service's routes to hold and sets status.mode.
func (s *Scaler) hold(ctx context.Context, es *v1alpha1.ElastiService) error {
	if err := s.router.Hold(ctx, es); err != nil {
		return fmt.Errorf("failed to switch routes to hold: %w", err)
	}
	s.setMode(es, v1alpha1.ModeHold)
	return nil
}

// serve switches the service's routes back to the workload and sets status.mode.
func (s *Scaler) serve(ctx context.Context, es *v1alpha1.ElastiService) error {
	if err := s.router.Serve(ctx, es); err != nil {
		return fmt.Errorf("failed to switch routes to serve: %w", err)
	}
	s.setMode(es, v1alpha1.ModeServe)
	return nil
}

func (s *Scaler) setMode(es *v1alpha1.ElastiService, mode v1alpha1.Mode) {
	if es.Status.Mode != mode {
		s.log.Info("routes switched", "elastiService", client.ObjectKeyFromObject(es).String(),
			"mode", mode)
		s.event(es, "Normal", "Routes"+titled(mode), "SwitchRoutes",
			fmt.Sprintf("traffic for Service %q now goes to %s", es.Spec.Service, describeMode(mode)))
	}
	es.Status.Mode = mode
	s.metrics.setMode(es, mode)
}

func titled(m v1alpha1.Mode) string {
	if m == v1alpha1.ModeHold {
		return "Hold"
	}
	return "Serve"
}

func describeMode(m v1alpha1.Mode) string {
	if m == v1alpha1.ModeHold {
		return "the hold route, where requests wait for the workload"
	}
	return "the workload directly"
}

// pauseKEDA pauses the service's ScaledObject, if it has one and it is not paused.
func (s *Scaler) pauseKEDA(ctx context.Context, w *writers, es *v1alpha1.ElastiService) error {
	name, ok := kedaName(es)
	if !ok {
		return nil
	}
	paused, err := w.keda.paused(ctx, es.Namespace, name)
	if err != nil || paused {
		return err
	}
	if err := w.keda.pause(ctx, es.Namespace, name); err != nil {
		return err
	}
	s.event(es, "Normal", "KEDAPaused", "PauseAutoscaler",
		fmt.Sprintf("paused ScaledObject %q while the workload goes to or stays at zero", name))
	return nil
}

// resumeKEDA resumes the service's ScaledObject, if it has one and it is paused.
func (s *Scaler) resumeKEDA(ctx context.Context, w *writers, es *v1alpha1.ElastiService) error {
	name, ok := kedaName(es)
	if !ok {
		return nil
	}
	paused, err := w.keda.paused(ctx, es.Namespace, name)
	if err != nil || !paused {
		return err
	}
	if err := w.keda.resume(ctx, es.Namespace, name); err != nil {
		return err
	}
	s.event(es, "Normal", "KEDAResumed", "ResumeAutoscaler",
		fmt.Sprintf("resumed ScaledObject %q", name))
	return nil
}

func kedaName(es *v1alpha1.ElastiService) (string, bool) {
	as := es.Spec.Autoscaler
	if as == nil || as.Type != v1alpha1.AutoscalerKEDA {
		return "", false
	}
	return as.Name, true
}

// event records a Kubernetes event about the ElastiService.
func (s *Scaler) event(es *v1alpha1.ElastiService, eventType, reason, action, note string) {
	s.recorder.Eventf(es, nil, eventType, reason, action, "%s", note)
}

// warnOnce records a warning event, once per reason for the life of the service
// in this process, so a condition that persists does not flood the event stream.
func (s *Scaler) warnOnce(es *v1alpha1.ElastiService, reason, format string, args ...any) {
	st := s.states.get(client.ObjectKeyFromObject(es))
	st.mu.Lock()
	if st.warned == nil {
		st.warned = map[string]bool{}
	}
	seen := st.warned[reason]
	st.warned[reason] = true
	st.mu.Unlock()
	if !seen {
		s.event(es, "Warning", reason, "Check", fmt.Sprintf(format, args...))
	}
}
