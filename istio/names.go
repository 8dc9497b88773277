package istio

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// HoldRouteName is the name every route in hold carries. The shipped EnvoyFilter
// enables ext_proc request-header processing on Envoy routes of exactly this name.
const HoldRouteName = "elasti-hold"

// HeldRoutesAnnotation is the VirtualService annotation that records, for each route
// named HoldRouteName, its original names and the Services it is held for. It exists
// only while at least one route is held.
const HeldRoutesAnnotation = apiGroup + "/held-routes"

// ManagedByLabel marks VirtualServices created by the route switch, with the value
// ManagedByValue.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// ManagedByValue is the value of ManagedByLabel on VirtualServices the route switch
// creates. It is also the default field manager.
const ManagedByValue = "elasti-scaler"

// ServiceLabel names, on a VirtualService the route switch created, the Service it
// holds traffic for.
const ServiceLabel = apiGroup + "/service"

// apiGroup is the ElastiService API group, the prefix of the project's annotations
// and labels. It equals v1alpha1.GroupVersion.Group.
const apiGroup = "elasti.truefoundry.com"

// meshGateway is the reserved gateway name that binds a VirtualService to sidecars.
const meshGateway = "mesh"

// VirtualService group, version and kinds, as the route switch reads and writes them.
var (
	virtualServiceGVK     = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}
	virtualServiceListGVK = virtualServiceGVK.GroupVersion().WithKind("VirtualServiceList")
)

// ownedName is the name of the VirtualService the route switch creates for service.
func ownedName(service string) string {
	return HoldRouteName + "-" + service
}

// target is the Service whose routes are switched.
type target struct {
	namespace string
	name      string
	// key identifies the Service in HeldRoutesAnnotation: namespace/name.
	key string
	// fqdn is name.namespace.svc.<cluster domain>.
	fqdn string
	// hosts are the lower-case names with at least one dot that reach the Service.
	hosts map[string]bool
}

// newTarget returns the target for the Service name in namespace.
func newTarget(namespace, name, clusterDomain string) target {
	fqdn := name + "." + namespace + ".svc." + clusterDomain
	return target{
		namespace: namespace,
		name:      name,
		key:       namespace + "/" + name,
		fqdn:      fqdn,
		hosts: map[string]bool{
			name + "." + namespace:          true,
			name + "." + namespace + ".svc": true,
			fqdn:                            true,
		},
	}
}

// isHost reports whether host, written in a VirtualService of namespace vsNamespace,
// names the Service. Istio reads a name without dots relative to the
// VirtualService's own namespace.
func (t target) isHost(host, vsNamespace string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if !strings.Contains(h, ".") {
		return vsNamespace == t.namespace && h == t.name
	}
	return t.hosts[h]
}

// coveredBy reports whether a VirtualService host, exact or wildcard, matches the
// Service's host names.
func (t target) coveredBy(host, vsNamespace string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(h, "*"); ok {
		for name := range t.hosts {
			if strings.HasSuffix(name, suffix) {
				return true
			}
		}
		return false
	}
	return t.isHost(h, vsNamespace)
}
