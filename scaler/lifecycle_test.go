package scaler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDeletionAtZero: deleting an ElastiService whose workload is at zero brings
// the workload back to minTargetReplicas and the routes back to serve before the
// object goes.
func TestDeletionAtZero(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	s := startScaler(t, c, ns, testOptions(c, ns))

	es := newElastiService(ns, 600, trafficQuery(ns))
	es.Spec.MinTargetReplicas = 2
	create(t, c, newService(ns), newDeployment(ns, 0), es)
	waitMode(t, c, ns, v1alpha1.ModeHold, 30*time.Second)
	if err := c.Client.Delete(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the ElastiService to be gone", func(ctx context.Context) (bool, error) {
		_, err := getES(ctx, c, ns)
		return client.IgnoreNotFound(err) == nil && err != nil, nil
	})
	if got, err := replicas(context.Background(), c, ns); err != nil || got != 2 {
		t.Errorf("replicas after deletion = %d (%v), want 2", got, err)
	}
	if mode, _ := s.router.last(ns + "/" + appName); mode != v1alpha1.ModeServe {
		t.Errorf("route mode after deletion = %q, want %q", mode, v1alpha1.ModeServe)
	}
}

// TestStatefulSet: a StatefulSet goes to zero and back through /scale like a
// Deployment.
func TestStatefulSet(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	s := startScaler(t, c, ns, testOptions(c, ns))

	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: appName,
			Selector:    &metav1.LabelSelector{MatchLabels: appLabels},
			Template:    podTemplate(),
		},
	}
	es := newElastiService(ns, 0, trafficQuery(ns))
	es.Spec.ScaleTargetRef.Kind = "StatefulSet"
	create(t, c, newService(ns), sts, es)

	stsReplicas := func(ctx context.Context) (int32, error) {
		var got appsv1.StatefulSet
		err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, &got)
		return ptr.Deref(got.Spec.Replicas, 1), err
	}
	waitFor(t, time.Minute, "StatefulSet at 0", func(ctx context.Context) (bool, error) {
		n, err := stsReplicas(ctx)
		return n == 0, err
	})
	waitMode(t, c, ns, v1alpha1.ModeHold, 10*time.Second)

	patchCooldown(t, c, ns, 600)
	api := dialActivation(t, s.ActivationAddr().String())
	if _, err := api.Activate(context.Background(),
		&activationv1.ActivateRequest{Namespace: ns, Name: appName}); err != nil {
		t.Fatalf("Activate() error = %v", err)
	}
	if n, err := stsReplicas(context.Background()); err != nil || n != 1 {
		t.Fatalf("StatefulSet replicas after Activate() = %d (%v), want 1", n, err)
	}
	waitMode(t, c, ns, v1alpha1.ModeServe, time.Minute)
}

// TestUnknownKind: a Rollout on a cluster without Argo Rollouts is reported in
// the conditions and an event, nothing is scaled, and activation says the
// precondition fails.
func TestUnknownKind(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	s := startScaler(t, c, ns, testOptions(c, ns))

	es := newElastiService(ns, 0, trafficQuery(ns))
	es.Spec.ScaleTargetRef = v1alpha1.ScaleTargetRef{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: appName}
	create(t, c, newService(ns), newDeployment(ns, 1), es)

	cond := waitCondition(t, c, ns, v1alpha1.ConditionTargetFound, metav1.ConditionFalse, "KindNotServed",
		30*time.Second)
	if !strings.Contains(cond.Message, "Rollout") {
		t.Errorf("TargetFound message = %q, want it to name the kind", cond.Message)
	}
	waitCondition(t, c, ns, v1alpha1.ConditionReady, metav1.ConditionFalse, "KindNotServed", 10*time.Second)
	waitFor(t, 30*time.Second, "a KindNotServed event", func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Reason == "KindNotServed" && e.Regarding.Name == appName && e.Type == "Warning" {
				return true, nil
			}
		}
		return false, nil
	})

	api := dialActivation(t, s.ActivationAddr().String())
	_, err := api.Activate(context.Background(), &activationv1.ActivateRequest{Namespace: ns, Name: appName})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Activate() error = %v, want code FailedPrecondition", err)
	}
	_, err = api.Activate(context.Background(), &activationv1.ActivateRequest{Namespace: ns, Name: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Activate(unknown name) error = %v, want code NotFound", err)
	}
	_, err = api.Activate(context.Background(), &activationv1.ActivateRequest{Namespace: "Bad_NS", Name: appName})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Activate(bad namespace) error = %v, want code InvalidArgument", err)
	}
	if got, _ := replicas(context.Background(), c, ns); got != 1 {
		t.Errorf("Deployment replicas = %d, want 1 untouched", got)
	}
}

// TestEnabledPeriod: outside its window a workload at zero is brought up and kept
// up; a schedule that cannot be parsed keeps the workload up and says so.
func TestEnabledPeriod(t *testing.T) {
	tests := []struct {
		name      string
		period    v1alpha1.EnabledPeriod
		start     int32
		condition string
	}{{
		// The window opens only on 29 February at midnight, for a minute.
		name:      "outside the window",
		period:    v1alpha1.EnabledPeriod{Schedule: "0 0 29 2 *", Duration: "1m"},
		start:     0,
		condition: "Reconciled",
	}, {
		name:      "invalid schedule",
		period:    v1alpha1.EnabledPeriod{Schedule: "99 * * * *", Duration: "1h"},
		start:     1,
		condition: "InvalidEnabledPeriod",
	}}
	c := cluster.Shared(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := c.NewNamespace(t)
			startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
			s := startScaler(t, c, ns, testOptions(c, ns))
			es := newElastiService(ns, 0, trafficQuery(ns))
			es.Spec.EnabledPeriod = &tt.period
			create(t, c, newService(ns), newDeployment(ns, tt.start), es)

			waitReplicas(t, c, ns, 1, 30*time.Second)
			waitCondition(t, c, ns, v1alpha1.ConditionTriggersHealthy, "True", "Evaluated", 30*time.Second)
			waitCondition(t, c, ns, v1alpha1.ConditionReady, metav1.ConditionStatus(
				map[bool]string{true: "True", false: "False"}[tt.condition == "Reconciled"]),
				tt.condition, 30*time.Second)
			waitRounds(t, s, 3)
			if got, _ := replicas(context.Background(), c, ns); got != 1 {
				t.Errorf("replicas while idle %s = %d, want 1", tt.name, got)
			}
		})
	}
}
