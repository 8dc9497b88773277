package nodeagent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/integration/proc"
)

// container is one container of a pod across its restarts. It belongs to the worker's
// goroutine, except that its process waiter and prober send events.
type container struct {
	w    *worker
	idx  int
	spec *corev1.Container

	run          int
	proc         *proc.Process
	stopProbe    context.CancelFunc
	ready        bool
	restarts     int32
	state        corev1.ContainerState
	lastState    corev1.ContainerState
	backoff      time.Duration
	runningSince time.Time
}

func newContainer(w *worker, idx int) *container {
	return &container{w: w, idx: idx, spec: &w.pod.Spec.Containers[idx], backoff: w.agent.opts.RestartBackoff}
}

// start runs the container's program. A missing program or a failed start leaves the
// container waiting, as a failed image pull would.
func (c *container) start(ctx context.Context) {
	c.run++
	path, ok := c.w.agent.program(c.spec.Image)
	if !ok {
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "ErrImagePull",
			Message: fmt.Sprintf("no program for image %q on this node", c.spec.Image),
		}}
		return
	}

	p, err := proc.Start(proc.Spec{
		Path:    path,
		Args:    c.spec.Args,
		Env:     c.env(),
		LogPath: c.logPath(),
	})
	if err != nil {
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "RunContainerError",
			Message: err.Error(),
		}}
		c.scheduleRestart(ctx)
		return
	}

	c.proc = p
	c.runningSince = time.Now()
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{
		StartedAt: metav1.NewTime(c.runningSince),
	}}
	run := c.run
	go func() {
		<-p.Done()
		c.w.send(ctx, event{container: c.idx, run: run, kind: processExited})
	}()

	probeCtx, cancel := context.WithCancel(ctx)
	c.stopProbe = cancel
	pr := newProber(c.spec, c.w.loopback)
	go pr.run(probeCtx, func(ready bool) {
		c.w.send(probeCtx, event{container: c.idx, run: run, kind: readinessChanged, ready: ready})
	})
}

// handle applies an event and reports whether the pod status changed.
func (c *container) handle(ctx context.Context, ev event) bool {
	if ev.run != c.run {
		return false
	}
	switch ev.kind {
	case readinessChanged:
		if c.proc == nil || c.ready == ev.ready {
			return false
		}
		c.ready = ev.ready
		c.w.log.V(1).Info("readiness changed", "container", c.spec.Name, "ready", ev.ready)
		return true
	case processExited:
		c.exited()
		if c.shouldRestart() {
			c.scheduleRestart(ctx)
		}
		return true
	case restartDue:
		c.restarts++
		c.start(ctx)
		return true
	}
	return false
}

// exited records the end of the current process.
func (c *container) exited() {
	p := c.proc
	c.proc = nil
	c.ready = false
	if c.stopProbe != nil {
		c.stopProbe()
	}
	code := p.ExitCode()
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	started := metav1.NewTime(c.runningSince)
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    int32(code),
		Reason:      reason,
		StartedAt:   started,
		FinishedAt:  metav1.NewTime(time.Now()),
		ContainerID: containerID(p.Pid()),
	}}
	c.w.log.Info("container exited", "container", c.spec.Name, "exitCode", code)
}

func (c *container) shouldRestart() bool {
	switch c.w.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.state.Terminated != nil && c.state.Terminated.ExitCode != 0
	default:
		return true
	}
}

// scheduleRestart waits the backoff, which doubles per restart and resets after a
// run of ten backoffs without exiting, then asks the worker to start the container.
func (c *container) scheduleRestart(ctx context.Context) {
	base := c.w.agent.opts.RestartBackoff
	if time.Since(c.runningSince) > 10*c.backoff {
		c.backoff = base
	}
	delay := c.backoff
	c.backoff = min(2*c.backoff, 16*base)

	c.lastState = c.state
	c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
		Reason:  "CrashLoopBackOff",
		Message: fmt.Sprintf("back-off %s restarting container", delay),
	}}
	run := c.run
	time.AfterFunc(delay, func() {
		c.w.send(ctx, event{container: c.idx, run: run, kind: restartDue})
	})
}

// stop ends the process, if any, within grace. The container will not restart.
func (c *container) stop(grace time.Duration) {
	c.run++
	if c.stopProbe != nil {
		c.stopProbe()
	}
	if c.proc == nil {
		return
	}
	p := c.proc
	p.Stop(grace)
	c.proc = nil
	c.ready = false
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    int32(p.ExitCode()),
		Reason:      "Completed",
		StartedAt:   metav1.NewTime(c.runningSince),
		FinishedAt:  metav1.NewTime(time.Now()),
		ContainerID: containerID(p.Pid()),
	}}
}

func containerID(pid int) string { return "process://" + strconv.Itoa(pid) }

func (c *container) logPath() string {
	pod := c.w.pod
	return filepath.Join(c.w.agent.opts.LogDir, pod.Namespace+"_"+pod.Name+"_"+c.spec.Name+".log")
}

// env builds the process environment: the agent's base, the pod's identity, the
// container's env, and finally LISTEN_ADDR, which must name the pod's loopback address.
func (c *container) env() []string {
	pod := c.w.pod
	vars := newEnv()
	for _, kv := range c.w.agent.opts.Env {
		vars.setPair(kv)
	}
	vars.set("HOSTNAME", pod.Name)
	vars.set("POD_NAME", pod.Name)
	vars.set("POD_NAMESPACE", pod.Namespace)
	vars.set("POD_IP", c.w.podIP.String())
	if len(c.spec.Ports) > 0 {
		vars.set("PORT", strconv.Itoa(int(c.spec.Ports[0].ContainerPort)))
	}
	for _, e := range c.spec.Env {
		switch {
		case e.ValueFrom == nil:
			vars.set(e.Name, e.Value)
		case e.ValueFrom.FieldRef != nil:
			vars.set(e.Name, c.fieldValue(e.ValueFrom.FieldRef.FieldPath))
		}
	}
	vars.set("LISTEN_ADDR", c.w.loopback.String())
	return vars.list()
}

// fieldValue resolves the downward API fields a test is likely to use.
func (c *container) fieldValue(path string) string {
	pod := c.w.pod
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return c.w.agent.opts.NodeName
	case "status.podIP":
		return c.w.podIP.String()
	default:
		return ""
	}
}
