package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

const (
	sampleNamespace = "demo"
	sampleName      = "httpbin"
)

// deploySample creates the sample namespace, Deployment, Service and an
// ElastiService whose trigger is the seed's Prometheus query.
func deploySample(ctx context.Context, c *cluster.Cluster, startup time.Duration, cooldown int32) error {
	labels := map[string]string{"app": sampleName}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sampleNamespace}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: sampleName, Namespace: sampleNamespace},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{
						testapp.Container(testapp.ContainerOptions{StartupDelay: startup}),
					}},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: sampleName, Namespace: sampleNamespace},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"),
			}}},
		},
		&v1alpha1.ElastiService{
			ObjectMeta: metav1.ObjectMeta{Name: sampleName, Namespace: sampleNamespace},
			Spec: v1alpha1.ElastiServiceSpec{
				Service: sampleName,
				ScaleTargetRef: v1alpha1.ScaleTargetRef{
					APIVersion: "apps/v1", Kind: "Deployment", Name: sampleName,
				},
				CooldownPeriod: &cooldown,
				Triggers: []v1alpha1.ScaleTrigger{{
					Type: v1alpha1.TriggerPrometheus,
					Metadata: v1alpha1.TriggerMetadata{
						Query: fmt.Sprintf(`sum(rate(istio_requests_total{destination_service=`+
							`"%s.%s.svc.cluster.local"}[1m])) or vector(0)`, sampleName, sampleNamespace),
						ServerAddress: c.PrometheusURL,
						Threshold:     "0.01",
						UptimeFilter:  `job="envoy"`,
					},
				}},
			},
		},
	}
	for _, obj := range objs {
		if err := c.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("failed to create %T %q: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// sampleState is what the sandbox shows of the sample at one moment.
type sampleState struct {
	Mode     v1alpha1.Mode
	Replicas int32
	Ready    int32
}

func (s sampleState) atZero() bool { return s.Mode == v1alpha1.ModeHold && s.Replicas == 0 }

// watcher polls the sample's state.
type watcher struct{ c *cluster.Cluster }

func newWatcher(c *cluster.Cluster) *watcher { return &watcher{c: c} }

func (w *watcher) state(ctx context.Context) (sampleState, error) {
	key := client.ObjectKey{Namespace: sampleNamespace, Name: sampleName}
	es := &v1alpha1.ElastiService{}
	if err := w.c.Client.Get(ctx, key, es); err != nil {
		return sampleState{}, err
	}
	dep := &appsv1.Deployment{}
	if err := w.c.Client.Get(ctx, key, dep); err != nil {
		return sampleState{}, err
	}
	return sampleState{
		Mode: es.Status.Mode, Replicas: ptr.Deref(dep.Spec.Replicas, 1), Ready: dep.Status.ReadyReplicas,
	}, nil
}

// until polls until cond holds, for at most limit.
func (w *watcher) until(ctx context.Context, limit time.Duration, cond func(sampleState) bool) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := w.state(ctx)
		if err == nil && cond(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sample did not reach the expected state within %v (last: %+v, %v)", limit, st, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// narrate notes every change of the sample's state until it is serving again.
func (w *watcher) narrate(ctx context.Context, tl *timeline) {
	var last sampleState
	for ctx.Err() == nil {
		st, err := w.state(ctx)
		if err == nil && st != last {
			tl.note("mode %s, %d replica(s) wanted, %d ready", st.Mode, st.Replicas, st.Ready)
			last = st
			if st.Mode == v1alpha1.ModeServe {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeline prints steps with the time since the sandbox started.
type timeline struct {
	start time.Time
	// mu serialises output.
	mu sync.Mutex
}

func newTimeline() *timeline { return &timeline{start: time.Now()} }

func (t *timeline) note(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Printf("[%7.2fs] %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}
