package extproc

import (
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// Attribute names and the attributes map key under which Envoy sends them. The
// ext_proc filter puts the request attributes it was configured to send into
// ProcessingRequest.attributes under the filter's name.
const (
	// FilterAttributesKey is the key of ProcessingRequest.attributes that holds
	// the request attributes.
	FilterAttributesKey = "envoy.filters.http.ext_proc"
	// ClusterNameAttribute is the upstream cluster Envoy routed the request to:
	// Istio's outbound|PORT|SUBSET|HOST.
	ClusterNameAttribute = "xds.cluster_name"
	// RouteNameAttribute is the name of the route Envoy matched.
	RouteNameAttribute = "xds.route_name"
)

// HoldRouteName is the name of the route on which the mesh sends request headers
// to elasti-extproc. It mirrors the istio package's constant; extproc does not
// import istio so that the request path depends on nothing that talks to Istio.
const HoldRouteName = "elasti-hold"

// ServiceKey names a Kubernetes Service. The zero value names nothing.
type ServiceKey struct {
	Namespace string
	Name      string
}

// String returns namespace/name.
func (k ServiceKey) String() string {
	return k.Namespace + "/" + k.Name
}

// IsZero reports whether k names nothing.
func (k ServiceKey) IsZero() bool {
	return k.Namespace == "" || k.Name == ""
}

// TargetFromAttributes works out the Service a request is routed to from the
// attributes Envoy sent. The upstream cluster name is authoritative because it is
// where Envoy will send the request once released; the route name is used only
// when the cluster name is missing or is not a Service cluster. Client headers are
// never consulted. The second result is false when neither names a Service.
func TargetFromAttributes(attrs map[string]*structpb.Struct) (ServiceKey, bool) {
	cluster, route := attributeStrings(attrs)
	if key, ok := ParseClusterName(cluster); ok {
		return key, true
	}
	return ParseRouteName(route)
}

// attributeStrings returns the cluster and route name attributes. The filter's
// own key is read first; any other entry is a fallback for a filter installed
// under another name. Every entry comes from Envoy, never from the client.
func attributeStrings(attrs map[string]*structpb.Struct) (cluster, route string) {
	read := func(s *structpb.Struct) {
		if cluster == "" {
			cluster = s.GetFields()[ClusterNameAttribute].GetStringValue()
		}
		if route == "" {
			route = s.GetFields()[RouteNameAttribute].GetStringValue()
		}
	}
	read(attrs[FilterAttributesKey])
	for name, s := range attrs {
		if name != FilterAttributesKey {
			read(s)
		}
	}
	return cluster, route
}

// ParseClusterName parses Istio's outbound cluster name
// outbound|PORT|SUBSET|NAME.NAMESPACE.svc.DOMAIN. Other clusters (inbound,
// passthrough, ServiceEntry hosts) name no Service.
func ParseClusterName(cluster string) (ServiceKey, bool) {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 || parts[0] != "outbound" || parts[1] == "" {
		return ServiceKey{}, false
	}
	return parseServiceHost(parts[3])
}

// ParseRouteName reads a Service from a route named elasti-hold.NAMESPACE.NAME.
// The hold route the mesh installs today is named plainly elasti-hold, which
// names no Service, so in practice the cluster name decides; this form exists so
// that a hold route carrying its Service in its name is understood as well.
func ParseRouteName(route string) (ServiceKey, bool) {
	rest, ok := strings.CutPrefix(route, HoldRouteName+".")
	if !ok {
		return ServiceKey{}, false
	}
	ns, name, ok := strings.Cut(rest, ".")
	if !ok || !isDNSLabel(ns) || !isDNSLabel(name) {
		return ServiceKey{}, false
	}
	return ServiceKey{Namespace: ns, Name: name}, true
}

// parseServiceHost parses NAME.NAMESPACE.svc[.DOMAIN].
func parseServiceHost(host string) (ServiceKey, bool) {
	labels := strings.SplitN(host, ".", 4)
	if len(labels) < 3 || labels[2] != "svc" {
		return ServiceKey{}, false
	}
	if !isDNSLabel(labels[0]) || !isDNSLabel(labels[1]) {
		return ServiceKey{}, false
	}
	return ServiceKey{Namespace: labels[1], Name: labels[0]}, true
}

// isDNSLabel reports whether s is an RFC 1123 label, as Service and namespace
// names are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
