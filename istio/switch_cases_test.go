package istio

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// A route that splits traffic between two held Services stays in hold until both
// are served, and then reads exactly as the user wrote it.
func TestSharedRouteHeldUntilBothServed(t *testing.T) {
	createNamespace(t, "shared")
	ctx := context.Background()
	orig := createVirtualService(t, `
metadata: {name: split, namespace: shared}
spec:
  hosts: [books]
  http:
  - name: split
    match: [{name: all, uri: {prefix: /}}]
    route:
    - {destination: {host: reviews}, weight: 50}
    - {destination: {host: ratings}, weight: 50}`)
	s := NewRouteSwitch(testClient, RouteSwitchOptions{})
	reviews, ratings := elastiService("shared", "reviews"), elastiService("shared", "ratings")

	for _, step := range []struct {
		name string
		do   func(context.Context, *v1alpha1.ElastiService) error
		es   *v1alpha1.ElastiService
		held bool
	}{
		{"hold reviews", s.Hold, reviews, true},
		{"hold ratings", s.Hold, ratings, true},
		{"serve reviews", s.Serve, reviews, true},
		{"serve ratings", s.Serve, ratings, false},
	} {
		if err := step.do(ctx, step.es); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := getVirtualService(t, "shared/split")
		if step.held {
			checkHeld(t, got, orig, []int{0})
		} else {
			checkRestored(t, got, orig)
		}
	}
}

// An edit made by someone else between the switch's read and its write makes the
// write fail on resourceVersion; the switch reads again and keeps the edit.
func TestConcurrentEditIsKept(t *testing.T) {
	createNamespace(t, "conflict")
	ctx := context.Background()
	orig := createVirtualService(t, `
metadata: {name: reviews, namespace: conflict}
spec:
  hosts: [reviews]
  http:
  - name: main
    route: [{destination: {host: reviews}}]`)

	var updates atomic.Int32
	c := interceptor.NewClient(testClient, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if updates.Add(1) == 1 {
				userEdit(t, "conflict/reviews", "9s")
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	s := NewRouteSwitch(c, RouteSwitchOptions{})
	es := elastiService("conflict", "reviews")

	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("Hold() = %v, want nil", err)
	}
	if got := updates.Load(); got != 2 {
		t.Errorf("Hold() made %d updates, want 2 (one conflict, one retry)", got)
	}
	got := getVirtualService(t, "conflict/reviews")
	if timeout := routeField(got, 0, "timeout"); timeout != "9s" {
		t.Errorf("held route timeout = %q, want the user's concurrent %q", timeout, "9s")
	}
	if name := routeName(mustRoutes(t, got)[0]); name == nil || *name != HoldRouteName {
		t.Errorf("held route name = %v, want %q", name, HoldRouteName)
	}

	if err := s.Serve(ctx, es); err != nil {
		t.Fatalf("Serve() = %v, want nil", err)
	}
	want := orig.DeepCopy()
	routes := mustRoutes(t, want)
	routes[0].(map[string]any)["timeout"] = "9s"
	_ = unstructured.SetNestedSlice(want.Object, routes, "spec", "http")
	checkRestored(t, getVirtualService(t, "conflict/reviews"), want)
}

// Changes the user makes to a held route during the hold survive serve; only the
// names go back.
func TestEditDuringHoldSurvivesServe(t *testing.T) {
	createNamespace(t, "edit")
	ctx := context.Background()
	orig := createVirtualService(t, `
metadata: {name: reviews, namespace: edit}
spec:
  hosts: [reviews]
  http:
  - name: main
    match: [{name: root, uri: {prefix: /}}]
    route: [{destination: {host: reviews}}]`)
	s := NewRouteSwitch(testClient, RouteSwitchOptions{})
	es := elastiService("edit", "reviews")

	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("Hold() = %v, want nil", err)
	}
	userEdit(t, "edit/reviews", "3s")
	if err := s.Serve(ctx, es); err != nil {
		t.Fatalf("Serve() = %v, want nil", err)
	}

	want := orig.DeepCopy()
	routes := mustRoutes(t, want)
	routes[0].(map[string]any)["timeout"] = "3s"
	_ = unstructured.SetNestedSlice(want.Object, routes, "spec", "http")
	checkRestored(t, getVirtualService(t, "edit/reviews"), want)
}

// A user VirtualService that starts covering the host while the switch's own one
// exists replaces it: two VirtualServices for one host conflict in Istio.
func TestOwnedDeletedWhenUserCovers(t *testing.T) {
	createNamespace(t, "takeover")
	ctx := context.Background()
	s := NewRouteSwitch(testClient, RouteSwitchOptions{})
	es := elastiService("takeover", "reviews")

	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("Hold() = %v, want nil", err)
	}
	checkOwned(t, "takeover", "reviews", true)

	orig := createVirtualService(t, `
metadata: {name: mine, namespace: takeover}
spec:
  hosts: [reviews.takeover.svc.cluster.local]
  http:
  - route: [{destination: {host: reviews}}]`)
	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("Hold() after user VirtualService = %v, want nil", err)
	}
	checkOwned(t, "takeover", "reviews", false)
	checkHeld(t, getVirtualService(t, "takeover/mine"), orig, []int{0})
}

// A VirtualService the user created under the switch's name is never overwritten or
// deleted.
func TestOwnedNameTaken(t *testing.T) {
	createNamespace(t, "taken")
	ctx := context.Background()
	orig := createVirtualService(t, `
metadata: {name: elasti-hold-reviews, namespace: taken}
spec:
  hosts: [other]
  http:
  - route: [{destination: {host: other}}]`)
	s := NewRouteSwitch(testClient, RouteSwitchOptions{})
	es := elastiService("taken", "reviews")

	err := s.Hold(ctx, es)
	if !errors.Is(err, errNameTaken) {
		t.Errorf("Hold() = %v, want %v", err, errNameTaken)
	}
	if err := s.Serve(ctx, es); err != nil {
		t.Errorf("Serve() = %v, want nil", err)
	}
	checkRestored(t, getVirtualService(t, "taken/elasti-hold-reviews"), orig)
}

// Namespaces limits what the switch rewrites.
func TestNamespacesOption(t *testing.T) {
	createNamespace(t, "scoped")
	createNamespace(t, "scoped-out")
	ctx := context.Background()
	outside := createVirtualService(t, `
metadata: {name: ingress, namespace: scoped-out}
spec:
  hosts: [reviews.example.com]
  http:
  - route: [{destination: {host: reviews.scoped.svc.cluster.local}}]`)
	inside := createVirtualService(t, `
metadata: {name: reviews, namespace: scoped}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]`)
	s := NewRouteSwitch(testClient, RouteSwitchOptions{Namespaces: []string{"scoped"}})

	if err := s.Hold(ctx, elastiService("scoped", "reviews")); err != nil {
		t.Fatalf("Hold() = %v, want nil", err)
	}
	checkHeld(t, getVirtualService(t, "scoped/reviews"), inside, []int{0})
	checkRestored(t, getVirtualService(t, "scoped-out/ingress"), outside)
}

// userEdit sets the timeout of the first http route of the VirtualService key, as a
// user's kubectl edit would.
func userEdit(t *testing.T, key, timeout string) {
	t.Helper()
	vs := getVirtualService(t, key)
	routes := mustRoutes(t, vs)
	routes[0].(map[string]any)["timeout"] = timeout
	_ = unstructured.SetNestedSlice(vs.Object, routes, "spec", "http")
	if err := testClient.Update(context.Background(), vs); err != nil {
		t.Fatalf("failed to edit VirtualService %q: %v", key, err)
	}
}

func mustRoutes(t *testing.T, vs *unstructured.Unstructured) []any {
	t.Helper()
	routes, _, err := unstructured.NestedSlice(vs.Object, "spec", "http")
	if err != nil || len(routes) == 0 {
		t.Fatalf("VirtualService %q has no http routes (%v)", vs.GetName(), err)
	}
	return routes
}

func routeField(vs *unstructured.Unstructured, i int, field string) string {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if i >= len(routes) {
		return ""
	}
	v, _ := routes[i].(map[string]any)[field].(string)
	return strings.TrimSpace(v)
}
