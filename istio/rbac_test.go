package istio

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// access is one API request a component may or may not make.
type access struct {
	verb, group, resource, subresource, namespace string
}

func serviceAccount(name string) string {
	return "system:serviceaccount:elasti-system:" + name
}

// allowed asks the API server's authorizer whether the ServiceAccount name may make
// the request.
func allowed(t *testing.T, name string, a access) bool {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   serviceAccount(name),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:elasti-system", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace,
		},
	}}
	if err := testClient.Create(context.Background(), review); err != nil {
		t.Fatalf("failed to review access %+v: %v", a, err)
	}
	return review.Status.Allowed
}

func TestRBAC(t *testing.T) {
	install(t)
	scalerAllowed := []access{
		{"watch", "elasti.truefoundry.com", "elastiservices", "", ""},
		{"update", "elasti.truefoundry.com", "elastiservices", "", "shop"},
		{"patch", "elasti.truefoundry.com", "elastiservices", "status", "shop"},
		{"update", "elasti.truefoundry.com", "elastiservices", "finalizers", "shop"},
		{"list", "apps", "deployments", "", ""},
		{"get", "apps", "statefulsets", "", "shop"},
		{"update", "apps", "deployments", "scale", "shop"},
		{"patch", "apps", "statefulsets", "scale", "shop"},
		{"watch", "argoproj.io", "rollouts", "", ""},
		{"update", "argoproj.io", "rollouts", "scale", "shop"},
		{"list", "", "services", "", ""},
		{"watch", "discovery.k8s.io", "endpointslices", "", ""},
		{"list", "networking.istio.io", "virtualservices", "", ""},
		{"watch", "networking.istio.io", "virtualservices", "", ""},
		{"create", "networking.istio.io", "virtualservices", "", "shop"},
		{"update", "networking.istio.io", "virtualservices", "", "shop"},
		{"delete", "networking.istio.io", "virtualservices", "", "shop"},
		{"patch", "keda.sh", "scaledobjects", "", "shop"},
		{"watch", "keda.sh", "scaledobjects", "", ""},
		{"list", "autoscaling", "horizontalpodautoscalers", "", ""},
		{"create", "", "events", "", "shop"},
		{"patch", "events.k8s.io", "events", "", "shop"},
		{"create", "coordination.k8s.io", "leases", "", "elasti-system"},
		{"update", "coordination.k8s.io", "leases", "", "elasti-system"},
	}
	scalerDenied := []access{
		{"get", "", "secrets", "", "elasti-system"},
		{"list", "", "secrets", "", ""},
		{"create", "", "pods", "exec", "shop"},
		{"list", "", "pods", "", ""},
		{"get", "", "configmaps", "", "shop"},
		{"create", "coordination.k8s.io", "leases", "", "kube-system"},
		{"update", "coordination.k8s.io", "leases", "", "shop"},
		{"delete", "apps", "deployments", "", "shop"},
		{"update", "apps", "deployments", "", "shop"},
		{"create", "elasti.truefoundry.com", "elastiservices", "", "shop"},
		{"delete", "keda.sh", "scaledobjects", "", "shop"},
		{"update", "networking.istio.io", "envoyfilters", "", "istio-system"},
		{"update", "", "services", "", "shop"},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""},
	}
	extprocAllowed := []access{
		{"list", "elasti.truefoundry.com", "elastiservices", "", ""},
		{"watch", "elasti.truefoundry.com", "elastiservices", "", ""},
		{"get", "elasti.truefoundry.com", "elastiservices", "", "shop"},
		{"list", "discovery.k8s.io", "endpointslices", "", ""},
		{"watch", "discovery.k8s.io", "endpointslices", "", ""},
	}
	extprocDenied := []access{
		{"get", "", "secrets", "", "elasti-system"},
		{"create", "", "pods", "exec", "elasti-system"},
		{"update", "elasti.truefoundry.com", "elastiservices", "", "shop"},
		{"patch", "elasti.truefoundry.com", "elastiservices", "status", "shop"},
		{"update", "apps", "deployments", "scale", "shop"},
		{"update", "networking.istio.io", "virtualservices", "", "shop"},
		{"create", "coordination.k8s.io", "leases", "", "elasti-system"},
		{"list", "", "services", "", ""},
		{"create", "", "events", "", "shop"},
	}

	for _, tt := range []struct {
		account string
		want    bool
		checks  []access
	}{
		{"elasti-scaler", true, scalerAllowed},
		{"elasti-scaler", false, scalerDenied},
		{"elasti-extproc", true, extprocAllowed},
		{"elasti-extproc", false, extprocDenied},
	} {
		for _, a := range tt.checks {
			if got := allowed(t, tt.account, a); got != tt.want {
				t.Errorf("%s may %s %s/%s/%s in %q = %v, want %v",
					tt.account, a.verb, a.group, a.resource, a.subresource, a.namespace, got, tt.want)
			}
		}
	}
}

// impersonate returns a client that acts as the ServiceAccount name.
func impersonate(t *testing.T, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(testConfig)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: serviceAccount(name),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:elasti-system", "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatalf("failed to build a client for %s: %v", name, err)
	}
	return c
}

// Every call the route switch makes is allowed to elasti-scaler: hold and serve run
// to completion as that ServiceAccount, creating and deleting the owned
// VirtualService (with an owner reference that blocks owner deletion) and updating
// a user's.
func TestRouteSwitchAsScaler(t *testing.T) {
	install(t)
	createNamespace(t, "rbac-switch")
	ctx := context.Background()
	orig := createVirtualService(t, `
metadata: {name: ingress, namespace: rbac-switch}
spec:
  hosts: [reviews.example.com]
  gateways: [public]
  http:
  - route: [{destination: {host: reviews}}]`)
	es := elastiService("rbac-switch", "reviews")
	if err := testClient.Create(ctx, es.DeepCopy()); err != nil {
		t.Fatalf("failed to create ElastiService: %v", err)
	}
	stored := &v1alpha1.ElastiService{}
	if err := testClient.Get(ctx, client.ObjectKeyFromObject(es), stored); err != nil {
		t.Fatalf("failed to get ElastiService: %v", err)
	}

	s := NewRouteSwitch(impersonate(t, "elasti-scaler"), RouteSwitchOptions{})
	if err := s.Hold(ctx, stored); err != nil {
		t.Fatalf("Hold() as elasti-scaler = %v, want nil", err)
	}
	checkOwned(t, "rbac-switch", "reviews", true)
	checkHeld(t, getVirtualService(t, "rbac-switch/ingress"), orig, []int{0})
	if err := s.Serve(ctx, stored); err != nil {
		t.Fatalf("Serve() as elasti-scaler = %v, want nil", err)
	}
	checkOwned(t, "rbac-switch", "reviews", false)
	checkRestored(t, getVirtualService(t, "rbac-switch/ingress"), orig)
}

// elasti-extproc can read what it watches and nothing secret.
func TestExtProcCalls(t *testing.T) {
	install(t)
	ctx := context.Background()
	c := impersonate(t, "elasti-extproc")

	if err := c.List(ctx, &v1alpha1.ElastiServiceList{}); err != nil {
		t.Errorf("list ElastiServices as elasti-extproc = %v, want nil", err)
	}
	if err := c.List(ctx, &discoveryv1.EndpointSliceList{}); err != nil {
		t.Errorf("list EndpointSlices as elasti-extproc = %v, want nil", err)
	}
	err := c.List(ctx, &corev1.SecretList{}, client.InNamespace("elasti-system"))
	if !apierrors.IsForbidden(err) {
		t.Errorf("list Secrets as elasti-extproc = %v, want Forbidden", err)
	}
}
