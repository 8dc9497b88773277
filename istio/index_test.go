package istio

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cachedSwitch is a RouteSwitch over a running informer cache of the test API
// server.
type cachedSwitch struct {
	s     *RouteSwitch
	cache cache.Cache
}

// startCachedSwitch starts a cache, registers a cached RouteSwitch's index in it and
// waits for it to sync. The cache stops when the test ends.
func startCachedSwitch(t *testing.T, opts RouteSwitchOptions) *cachedSwitch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := cache.New(testConfig, cache.Options{Scheme: testScheme})
	if err != nil {
		t.Fatalf("cache.New() = %v", err)
	}
	s, err := NewCachedRouteSwitch(ctx, testClient, c, opts)
	if err != nil {
		t.Fatalf("NewCachedRouteSwitch() = %v, want nil", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return &cachedSwitch{s: s, cache: c}
}

// waitFor waits until the cache has every object at its resourceVersion.
func (cs *cachedSwitch) waitFor(t *testing.T, objs map[string]*unstructured.Unstructured) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, want := range objs {
		for {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(virtualServiceGVK)
			err := cs.cache.Get(context.Background(), client.ObjectKeyFromObject(want), got)
			if err == nil && got.GetResourceVersion() == want.GetResourceVersion() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache has no %q at resourceVersion %s (err %v)", want.GetName(),
					want.GetResourceVersion(), err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestServiceKeyAgreesWithIsHost checks that the index names exactly the Service a
// host means to the switch, so an index lookup finds what a full scan would.
func TestServiceKeyAgreesWithIsHost(t *testing.T) {
	hosts := []string{
		"reviews", "Reviews", "reviews.", "reviews.prod", "reviews.prod.svc",
		"reviews.prod.svc.cluster.local", "reviews.prod.svc.cluster.local.",
		"reviews.prod.svc.example.org", "reviews.prod.svc.cluster", "reviews.other",
		"ratings", "reviews.prod.com", "example.com", "reviews.prod.svc.cluster.local.extra",
		"a.b.c.d.e",
	}
	targets := []target{
		newTarget("prod", "reviews", DefaultClusterDomain),
		newTarget("other", "reviews", DefaultClusterDomain),
		newTarget("prod", "ratings", DefaultClusterDomain),
	}
	for _, h := range hosts {
		for _, vsNamespace := range []string{"prod", "other"} {
			for _, tg := range targets {
				t.Run(fmt.Sprintf("%s in %s for %s", h, vsNamespace, tg.key), func(t *testing.T) {
					got := serviceKey(h, vsNamespace, DefaultClusterDomain) == tg.key
					want := tg.isHost(h, vsNamespace)
					if got != want {
						t.Errorf("serviceKey(%q, %q) names %s: %v, isHost = %v", h, vsNamespace,
							tg.key, got, want)
					}
				})
			}
		}
	}
}

// TestIndexValues checks what a VirtualService is indexed under.
func TestIndexValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{{
		name: "destinations and mesh hosts",
		doc: `
metadata: {name: a, namespace: prod}
spec:
  hosts: [reviews, "ratings.prod.svc.cluster.local", "*.prod.svc.cluster.local", example.com]
  http:
  - route: [{destination: {host: details}}, {destination: {host: reviews.other}}]`,
		want: []string{"*", "service:com/example", "service:other/reviews", "service:prod/details",
			"service:prod/ratings", "service:prod/reviews"},
	}, {
		name: "gateway only: hosts do not cover the mesh, destinations still count",
		doc: `
metadata: {name: a, namespace: prod}
spec:
  hosts: ["*"]
  gateways: [ingress]
  http:
  - route: [{destination: {host: reviews}}]`,
		want: []string{"service:prod/reviews"},
	}, {
		name: "held for a Service it no longer sends to",
		doc: `
metadata:
  name: a
  namespace: prod
  annotations:
    elasti.truefoundry.com/held-routes: '[{"name":null,"services":["prod/gone"]}]'
spec:
  hosts: [example.com]
  gateways: [ingress]
  http:
  - name: elasti-hold
    route: [{destination: {host: reviews}}]`,
		want: []string{"service:prod/gone", "service:prod/reviews"},
	}, {
		name: "created by the switch",
		doc: `
metadata:
  name: elasti-hold-reviews
  namespace: prod
  labels: {app.kubernetes.io/managed-by: elasti-scaler, elasti.truefoundry.com/service: reviews}
spec:
  hosts: [reviews.prod.svc.cluster.local]
  http:
  - name: elasti-hold
    route: [{destination: {host: reviews.prod.svc.cluster.local}}]`,
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := decodeYAMLDocs(t, tt.doc)[0]
			got := indexValues(vs, DefaultClusterDomain)
			if !slices.Equal(got, tt.want) {
				t.Errorf("indexValues() = %q, want %q", got, tt.want)
			}
		})
	}
}

// frozenReader answers lists from a snapshot taken once, as a cache that has not
// yet seen the latest writes would. It applies the switch's index to the
// snapshot the way the informer cache does.
type frozenReader struct {
	client.Reader
	items []unstructured.Unstructured
}

func (f *frozenReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := &client.ListOptions{}
	o.ApplyOptions(opts)
	value, _ := o.FieldSelector.RequiresExactMatch(virtualServiceIndex)
	out := list.(*unstructured.UnstructuredList)
	for _, vs := range f.items {
		if o.Namespace != "" && vs.GetNamespace() != o.Namespace {
			continue
		}
		if slices.Contains(indexValues(&vs, DefaultClusterDomain), value) {
			out.Items = append(out.Items, *vs.DeepCopy())
		}
	}
	return nil
}

// TestCachedServeAfterStaleHold serves right after a hold while the cache still
// has every VirtualService as it was before the hold: the routes must come back
// all the same, and a hold from the same stale view must not double-book.
func TestCachedServeAfterStaleHold(t *testing.T) {
	sh := shapes[0]
	ns := "stale-cache"
	originals, es := createShape(t, sh, ns)
	frozen := &frozenReader{}
	for _, vs := range originals {
		frozen.items = append(frozen.items, *vs.DeepCopy())
	}
	s := NewRouteSwitch(testClient, RouteSwitchOptions{})
	s.cache = frozen
	ctx := context.Background()

	for _, step := range []string{"Hold", "Hold", "Serve"} {
		call := s.Hold
		if step == "Serve" {
			call = s.Serve
		}
		if err := call(ctx, es); err != nil {
			t.Fatalf("%s() = %v, want nil", step, err)
		}
	}
	for key, orig := range originals {
		got := getVirtualService(t, key)
		checkRestored(t, got, orig)
		if raw := got.GetAnnotations()[HeldRoutesAnnotation]; strings.Contains(raw, "reviews") {
			t.Errorf("annotation after Serve = %s, want none", raw)
		}
	}
}

// TestServicesOf checks which Services a VirtualService change is mapped to.
func TestServicesOf(t *testing.T) {
	s := NewRouteSwitch(nil, RouteSwitchOptions{})
	tests := []struct {
		name string
		doc  string
		want []string
	}{{
		name: "a user's VirtualService: destinations and mesh hosts, no wildcard",
		doc: `
metadata: {name: a, namespace: prod}
spec:
  hosts: [reviews, "*.prod.svc.cluster.local"]
  http:
  - route: [{destination: {host: details}}, {destination: {host: reviews.other.svc}}]`,
		want: []string{"other/reviews", "prod/details", "prod/reviews"},
	}, {
		name: "held for a Service it no longer sends to",
		doc: `
metadata:
  name: a
  namespace: prod
  annotations:
    elasti.truefoundry.com/held-routes: '[{"name":"r","services":["prod/gone"]}]'
spec:
  hosts: [example.com]
  gateways: [ingress]
  http:
  - name: elasti-hold
    route: [{destination: {host: reviews}}]`,
		want: []string{"prod/gone", "prod/reviews"},
	}, {
		name: "created by the switch: its Service",
		doc: `
metadata:
  name: elasti-hold-reviews
  namespace: prod
  labels: {app.kubernetes.io/managed-by: elasti-scaler, elasti.truefoundry.com/service: reviews}
spec:
  hosts: [reviews.prod.svc.cluster.local]
  http:
  - name: elasti-hold
    route: [{destination: {host: reviews.prod.svc.cluster.local}}]`,
		want: []string{"prod/reviews"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, key := range s.ServicesOf(decodeYAMLDocs(t, tt.doc)[0]) {
				got = append(got, key.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ServicesOf() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := s.ServicesOf(&corev1.ConfigMap{}); got != nil {
		t.Errorf("ServicesOf(ConfigMap) = %v, want nil", got)
	}
}
