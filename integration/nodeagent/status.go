package nodeagent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// report writes the pod's status, computed from its containers, with a merge patch
// that replaces every list the agent owns. Failures are logged: the next change
// reports again.
func (w *worker) report(ctx context.Context, containers []*container) {
	status := w.status(containers)
	err := w.agent.patch(ctx, "pods", w.pod.Namespace, w.pod.Name, map[string]any{"status": status}, "status")
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		w.log.Error(err, "failed to report pod status")
	}
}

func (w *worker) status(containers []*container) corev1.PodStatus {
	now := metav1.NewTime(time.Now())
	allReady, allDone, anyFailed := true, true, false
	statuses := make([]corev1.ContainerStatus, 0, len(containers))
	for _, c := range containers {
		allReady = allReady && c.ready
		done := c.proc == nil && c.state.Terminated != nil
		allDone = allDone && done
		anyFailed = anyFailed || (done && c.state.Terminated.ExitCode != 0)
		cs := corev1.ContainerStatus{
			Name:                 c.spec.Name,
			State:                c.state,
			LastTerminationState: c.lastState,
			Ready:                c.ready,
			RestartCount:         c.restarts,
			Image:                c.spec.Image,
			ImageID:              c.spec.Image,
			Started:              ptr.To(c.proc != nil),
		}
		if c.proc != nil {
			cs.ContainerID = containerID(c.proc.Pid())
		}
		statuses = append(statuses, cs)
	}

	phase := corev1.PodRunning
	if allDone && w.pod.Spec.RestartPolicy != corev1.RestartPolicyAlways && w.pod.Spec.RestartPolicy != "" {
		phase = corev1.PodSucceeded
		if anyFailed {
			phase = corev1.PodFailed
		}
	}

	// A condition keeps its transition time until its status changes.
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
		if prev, found := w.conditions[t]; found && prev.Status == s {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		w.conditions[t] = c
		return c
	}
	return corev1.PodStatus{
		Phase: phase,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodScheduled, true),
			cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, allReady),
			cond(corev1.PodReady, allReady),
		},
		HostIP:            w.agent.nodeIP(),
		HostIPs:           []corev1.HostIP{{IP: w.agent.nodeIP()}},
		PodIP:             w.podIP.String(),
		PodIPs:            []corev1.PodIP{{IP: w.podIP.String()}},
		StartTime:         &w.started,
		ContainerStatuses: statuses,
	}
}
