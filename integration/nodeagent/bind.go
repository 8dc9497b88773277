package nodeagent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// maybeBind binds an unscheduled pod to this node, standing in for the scheduler. Pods
// that name another scheduler are left alone.
func (a *Agent) maybeBind(ctx context.Context, pod *corev1.Pod) {
	if pod.DeletionTimestamp != nil {
		return
	}
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return
	}

	a.mu.Lock()
	if a.binding[pod.UID] || ctx.Err() != nil {
		a.mu.Unlock()
		return
	}
	a.binding[pod.UID] = true
	a.wg.Add(1)
	a.mu.Unlock()

	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: a.opts.NodeName},
	}
	go func() {
		defer a.wg.Done()
		backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 8, Cap: 2 * time.Second}
		err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
			err := a.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
			switch {
			case err == nil:
				return true, nil
			case apierrors.IsNotFound(err), apierrors.IsConflict(err), apierrors.IsInvalid(err):
				// Gone, already bound, or deleted meanwhile: nothing to do.
				return false, err
			default:
				a.log.V(1).Info("retrying pod binding", "pod", pod.Namespace+"/"+pod.Name, "err", err.Error())
				return false, nil
			}
		})
		if err != nil && ctx.Err() == nil {
			a.log.V(1).Info("pod not bound", "pod", pod.Namespace+"/"+pod.Name, "err", err.Error())
		}
	}()
}
