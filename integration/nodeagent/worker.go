package nodeagent

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// event is something that happened to one run of a container: its process exited, its
// readiness changed, or its restart backoff ended.
type event struct {
	container int
	// run identifies the container run the event belongs to; events of older runs
	// are stale and ignored.
	run  int
	kind eventKind
	// ready is the new readiness, for readinessChanged.
	ready bool
}

type eventKind int

const (
	processExited eventKind = iota
	readinessChanged
	restartDue
)

// worker owns one pod: its IP, its processes and its status. Everything but terminate
// runs on the worker's goroutine.
type worker struct {
	agent    *Agent
	pod      *corev1.Pod
	log      logr.Logger
	podIP    netip.Addr
	loopback netip.Addr
	started  metav1.Time
	// conditions are the pod conditions last reported, by type.
	conditions map[corev1.PodConditionType]corev1.PodCondition

	events chan event
	// done is closed when run returns, so late senders do not block.
	done chan struct{}

	// mu guards grace and terminating.
	mu          sync.Mutex
	grace       time.Duration
	terminating chan struct{}
}

func newWorker(a *Agent, pod *corev1.Pod) *worker {
	return &worker{
		agent:       a,
		pod:         pod,
		log:         a.log.WithValues("pod", pod.Namespace+"/"+pod.Name),
		conditions:  map[corev1.PodConditionType]corev1.PodCondition{},
		events:      make(chan event, 16),
		done:        make(chan struct{}),
		terminating: make(chan struct{}),
	}
}

// terminate asks the worker to stop the pod's processes within grace. A later call
// may shorten the grace but not lengthen it.
func (w *worker) terminate(grace time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.terminating:
		w.grace = min(w.grace, grace)
	default:
		w.grace = grace
		close(w.terminating)
	}
}

func (w *worker) terminationGrace() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.grace
}

// run starts the pod's containers, keeps its status current until the pod is deleted
// or the agent stops, then ends the processes.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	podIP, loopback, err := w.agent.allocateIP()
	if err != nil {
		w.log.Error(err, "pod cannot start")
		return
	}
	defer w.agent.ips.Release(podIP)
	w.podIP, w.loopback = podIP, loopback
	w.started = metav1.NewTime(time.Now())

	containers := make([]*container, len(w.pod.Spec.Containers))
	for i := range containers {
		containers[i] = newContainer(w, i)
	}
	for _, c := range containers {
		c.start(ctx)
	}
	w.report(ctx, containers)
	w.log.Info("pod started", "podIP", podIP.String(), "loopback", loopback.String())

	for {
		select {
		case ev := <-w.events:
			if containers[ev.container].handle(ctx, ev) {
				w.report(ctx, containers)
			}
		case <-w.terminating:
			w.shutDown(ctx, containers)
			return
		case <-ctx.Done():
			for _, c := range containers {
				c.stop(0)
			}
			return
		}
	}
}

// shutDown ends every container within the grace period, reports the final status and
// removes the pod object, as a kubelet does once a deleted pod's containers are gone.
func (w *worker) shutDown(ctx context.Context, containers []*container) {
	grace := w.terminationGrace()
	w.log.Info("pod terminating", "grace", grace.String())

	var wg sync.WaitGroup
	for _, c := range containers {
		wg.Go(func() { c.stop(grace) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	w.report(ctx, containers)

	zero := int64(0)
	err := w.agent.client.CoreV1().Pods(w.pod.Namespace).Delete(ctx, w.pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &w.pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.log.Error(err, "failed to remove terminated pod")
		return
	}
	w.log.Info("pod terminated")
}

// send delivers an event to the worker unless the worker has ended or ctx is done.
func (w *worker) send(ctx context.Context, ev event) {
	select {
	case w.events <- ev:
	case <-w.done:
	case <-ctx.Done():
	}
}
