package istio

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// shape is one way a user may have written the VirtualServices around the Service
// "reviews" in namespace NS. In the YAML, NS and OTHER stand for the test's two
// namespaces.
type shape struct {
	name string
	// virtualServices are the user's objects.
	virtualServices []string
	// held maps "namespace/name" (with NS and OTHER) to the http route indexes
	// that must be in hold.
	held map[string][]int
	// owned says whether the switch must create its own VirtualService.
	owned bool
}

var shapes = []shape{{
	name: "single destination, unnamed route, short host",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}`},
	held: map[string][]int{"NS/reviews": {0}},
}, {
	name: "named route, fully qualified host, port",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews.NS.svc.cluster.local]
  http:
  - name: primary
    route:
    - destination: {host: reviews.NS.svc.cluster.local, port: {number: 9080}}`},
	held: map[string][]int{"NS/reviews": {0}},
}, {
	name: "weighted split with another service",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - name: split
    route:
    - destination: {host: reviews}
      weight: 90
    - destination: {host: ratings}
      weight: 10`},
	held: map[string][]int{"NS/reviews": {0}},
}, {
	name: "weighted subsets of the service",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 75
    - destination: {host: reviews, subset: v2}
      weight: 25`},
	held: map[string][]int{"NS/reviews": {0}},
}, {
	name: "header and path matches with match names",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match:
    - name: by-header
      headers:
        x-canary: {exact: "true"}
    - uri: {prefix: /beta}
    - name: by-path
      uri: {regex: "^/v[0-9]+/.*"}
    route:
    - destination: {host: reviews, subset: v2}
  - name: stable
    route:
    - destination: {host: reviews, subset: v1}`},
	held: map[string][]int{"NS/reviews": {0, 1}},
}, {
	name: "several services in one VirtualService keep their order",
	virtualServices: []string{`
metadata: {name: shop, namespace: NS}
spec:
  hosts: [shop.example.com, reviews]
  http:
  - name: ratings
    match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: ratings}}]
  - name: reviews
    match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /details}}]
    route: [{destination: {host: details}}]
  - name: fallback
    route: [{destination: {host: reviews}}]`},
	held: map[string][]int{"NS/shop": {1, 3}},
}, {
	name: "retries, timeout, headers, fault and CORS untouched",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - name: tuned
    timeout: 7s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    headers:
      request:
        set: {x-tier: gold}
      response:
        remove: [x-debug]
    fault:
      delay: {percentage: {value: 0.5}, fixedDelay: 1s}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET]
    mirror: {host: shadow}
    route:
    - destination: {host: reviews}`},
	held: map[string][]int{"NS/reviews": {0}},
}, {
	name: "gateway-bound ingress route",
	virtualServices: []string{`
metadata: {name: ingress, namespace: OTHER}
spec:
  hosts: [reviews.example.com]
  gateways: [OTHER/public]
  http:
  - name: web
    route:
    - destination: {host: reviews.NS.svc.cluster.local, port: {number: 80}}`},
	held:  map[string][]int{"OTHER/ingress": {0}},
	owned: true,
}, {
	name: "bound to a gateway and the mesh",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews, reviews.example.com]
  gateways: [mesh, public]
  http:
  - match: [{gateways: [public], uri: {prefix: /}}]
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]`},
	held: map[string][]int{"NS/reviews": {0, 1}},
}, {
	name: "other namespace: FQDN is the service, short name is not",
	virtualServices: []string{`
metadata: {name: callers, namespace: OTHER}
spec:
  hosts: [frontend]
  http:
  - name: local-reviews
    match: [{uri: {prefix: /local}}]
    route: [{destination: {host: reviews}}]
  - name: remote-reviews
    route: [{destination: {host: reviews.NS.svc.cluster.local}}]`},
	held:  map[string][]int{"OTHER/callers": {1}},
	owned: true,
}, {
	name:  "no VirtualService at all",
	held:  map[string][]int{},
	owned: true,
}, {
	name: "host covered but routed elsewhere",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews-v2}}]`},
	held: map[string][]int{"NS/reviews": nil},
}, {
	name: "wildcard host",
	virtualServices: []string{`
metadata: {name: all, namespace: NS}
spec:
  hosts: ["*.NS.svc.cluster.local"]
  http:
  - route: [{destination: {host: reviews.NS.svc.cluster.local}}]`},
	held: map[string][]int{"NS/all": {0}},
}, {
	name: "user route already named like the hold route",
	virtualServices: []string{`
metadata: {name: reviews, namespace: NS}
spec:
  hosts: [reviews]
  http:
  - name: elasti-hold
    match: [{uri: {prefix: /odd}}]
    route: [{destination: {host: ratings}}]
  - name: main
    route: [{destination: {host: reviews}}]`},
	held: map[string][]int{"NS/reviews": {0, 1}},
}, {
	name: "TCP routes, exportTo and annotations kept",
	virtualServices: []string{`
metadata:
  name: reviews
  namespace: NS
  annotations: {team: books}
spec:
  hosts: [reviews.NS.svc]
  exportTo: ["."]
  http:
  - name: http
    match: [{port: 9080}]
    route: [{destination: {host: reviews.NS.svc}}]
  tcp:
  - match: [{port: 9090}]
    route: [{destination: {host: reviews, port: {number: 9090}}}]`},
	held: map[string][]int{"NS/reviews": {0}},
}}

// TestHoldServeShapes runs every shape through a RouteSwitch that lists from the API
// server and through one that finds VirtualServices in a cache.
func TestHoldServeShapes(t *testing.T) {
	cached := startCachedSwitch(t, RouteSwitchOptions{})
	variants := []struct {
		name   string
		s      *RouteSwitch
		cached bool
	}{
		{"listed", NewRouteSwitch(testClient, RouteSwitchOptions{}), false},
		{"cached", cached.s, true},
	}
	for _, v := range variants {
		for i, sh := range shapes {
			t.Run(v.name+"/"+sh.name, func(t *testing.T) {
				ns := fmt.Sprintf("%s-shape-%d", v.name, i)
				originals, es := createShape(t, sh, ns)
				if v.cached {
					cached.waitFor(t, originals)
				}
				checkShape(t, v.s, sh, ns, originals, es)
			})
		}
	}
}

// createShape creates the VirtualServices of sh in ns and ns-other and returns
// them by namespace/name, with the ElastiService for "reviews".
func createShape(
	t *testing.T,
	sh shape,
	ns string,
) (map[string]*unstructured.Unstructured, *v1alpha1.ElastiService) {
	t.Helper()
	createNamespace(t, ns)
	createNamespace(t, ns+"-other")
	replace := strings.NewReplacer("OTHER", ns+"-other", "NS", ns)
	originals := map[string]*unstructured.Unstructured{}
	for _, doc := range sh.virtualServices {
		vs := createVirtualService(t, replace.Replace(doc))
		originals[vs.GetNamespace()+"/"+vs.GetName()] = vs
	}
	return originals, elastiService(ns, "reviews")
}

// checkShape holds and serves es twice each through s and checks the objects
// after each step.
func checkShape(
	t *testing.T,
	s *RouteSwitch,
	sh shape,
	ns string,
	originals map[string]*unstructured.Unstructured,
	es *v1alpha1.ElastiService,
) {
	t.Helper()
	ctx := context.Background()
	replace := strings.NewReplacer("OTHER", ns+"-other", "NS", ns)

	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("Hold() = %v, want nil", err)
	}
	held := map[string][]int{}
	for key, idx := range sh.held {
		held[replace.Replace(key)] = idx
	}
	for key, orig := range originals {
		checkHeld(t, getVirtualService(t, key), orig, held[key])
	}
	checkOwned(t, ns, "reviews", sh.owned)

	versions := resourceVersions(t, originals)
	if err := s.Hold(ctx, es); err != nil {
		t.Fatalf("second Hold() = %v, want nil", err)
	}
	if got := resourceVersions(t, originals); !reflect.DeepEqual(got, versions) {
		t.Errorf("second Hold() rewrote objects: resourceVersions %v, want %v", got, versions)
	}

	if err := s.Serve(ctx, es); err != nil {
		t.Fatalf("Serve() = %v, want nil", err)
	}
	for key, orig := range originals {
		checkRestored(t, getVirtualService(t, key), orig)
	}
	checkOwned(t, ns, "reviews", false)

	versions = resourceVersions(t, originals)
	if err := s.Serve(ctx, es); err != nil {
		t.Fatalf("second Serve() = %v, want nil", err)
	}
	if got := resourceVersions(t, originals); !reflect.DeepEqual(got, versions) {
		t.Errorf("second Serve() rewrote objects: resourceVersions %v, want %v", got, versions)
	}
}

// checkHeld fails unless got is orig with exactly the routes at indexes renamed to
// the hold route, their match names removed, and the bookkeeping annotation added.
func checkHeld(t *testing.T, got, orig *unstructured.Unstructured, indexes []int) {
	t.Helper()
	want := orig.DeepCopy()
	routes, _, _ := unstructured.NestedSlice(want.Object, "spec", "http")
	for _, i := range indexes {
		route := routes[i].(map[string]any)
		route["name"] = HoldRouteName
		matches, _ := route["match"].([]any)
		for _, m := range matches {
			delete(m.(map[string]any), "name")
		}
	}
	if routes != nil {
		_ = unstructured.SetNestedSlice(want.Object, routes, "spec", "http")
	}
	if !reflect.DeepEqual(got.Object["spec"], want.Object["spec"]) {
		t.Errorf("held spec of %q =\n%s\nwant\n%s", got.GetName(), toYAML(got.Object["spec"]), toYAML(want.Object["spec"]))
	}

	_, annotated := got.GetAnnotations()[HeldRoutesAnnotation]
	if annotated != (len(indexes) > 0) {
		t.Errorf("held %q has annotation %q: %v, want %v", got.GetName(), HeldRoutesAnnotation, annotated, len(indexes) > 0)
	}
	for k, v := range orig.GetAnnotations() {
		if got.GetAnnotations()[k] != v {
			t.Errorf("held %q annotation %q = %q, want %q", got.GetName(), k, got.GetAnnotations()[k], v)
		}
	}
}

// checkRestored fails unless got has orig's spec, labels and annotations exactly.
func checkRestored(t *testing.T, got, orig *unstructured.Unstructured) {
	t.Helper()
	if !reflect.DeepEqual(got.Object["spec"], orig.Object["spec"]) {
		t.Errorf("served spec of %q =\n%s\nwant\n%s", got.GetName(), toYAML(got.Object["spec"]), toYAML(orig.Object["spec"]))
	}
	if !reflect.DeepEqual(got.GetAnnotations(), orig.GetAnnotations()) {
		t.Errorf("served annotations of %q = %v, want %v", got.GetName(), got.GetAnnotations(), orig.GetAnnotations())
	}
	if !reflect.DeepEqual(got.GetLabels(), orig.GetLabels()) {
		t.Errorf("served labels of %q = %v, want %v", got.GetName(), got.GetLabels(), orig.GetLabels())
	}
}

// checkOwned fails unless the switch's own VirtualService for service exists exactly
// when want says so, with one hold route and an owner reference.
func checkOwned(t *testing.T, namespace, service string, want bool) {
	t.Helper()
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	err := testClient.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: ownedName(service)}, vs)
	if got := err == nil; got != want {
		t.Fatalf("owned VirtualService exists = %v (%v), want %v", got, err, want)
	}
	if !want {
		return
	}
	if refs := vs.GetOwnerReferences(); len(refs) != 1 || refs[0].Kind != "ElastiService" || refs[0].Name != service {
		t.Errorf("owned VirtualService owner references = %v, want the ElastiService %q", refs, service)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) != 1 || routeName(routes[0]) == nil || *routeName(routes[0]) != HoldRouteName {
		t.Errorf("owned VirtualService routes = %v, want one route named %q", routes, HoldRouteName)
	}
}

// createVirtualService creates the VirtualService doc describes and returns it as
// the API server stored it.
func createVirtualService(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	vs := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &vs.Object); err != nil {
		t.Fatalf("failed to decode VirtualService: %v\n%s", err, doc)
	}
	vs.SetGroupVersionKind(virtualServiceGVK)
	if err := testClient.Create(context.Background(), vs); err != nil {
		t.Fatalf("failed to create VirtualService %q: %v", vs.GetName(), err)
	}
	return getVirtualService(t, vs.GetNamespace()+"/"+vs.GetName())
}

// getVirtualService reads the VirtualService namespace/name from the API server.
func getVirtualService(t *testing.T, key string) *unstructured.Unstructured {
	t.Helper()
	ns, name, _ := strings.Cut(key, "/")
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	if err := testClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, vs); err != nil {
		t.Fatalf("failed to get VirtualService %q: %v", key, err)
	}
	return vs
}

// resourceVersions returns the current resourceVersion of each object in objs.
func resourceVersions(t *testing.T, objs map[string]*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for key := range objs {
		out[key] = getVirtualService(t, key).GetResourceVersion()
	}
	return out
}

// elastiService returns an ElastiService for service in namespace, as the scaler
// would pass it; its UID is made up since it is only used in owner references.
func elastiService(namespace, service string) *v1alpha1.ElastiService {
	return &v1alpha1.ElastiService{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: service, UID: types.UID("uid-" + namespace + "-" + service)},
		Spec: v1alpha1.ElastiServiceSpec{
			Service:        service,
			ScaleTargetRef: v1alpha1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: service},
		},
	}
}

func toYAML(v any) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(out)
}
