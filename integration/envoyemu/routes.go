package envoyemu

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
)

// meshGateway is the gateway name Istio gives to sidecars.
const meshGateway = "mesh"

// cluster names an upstream cluster as Istio does: outbound|PORT|SUBSET|HOST.
type cluster struct {
	host   string // service FQDN, e.g. web.demo.svc.cluster.local
	port   uint32
	subset string
}

func (c cluster) String() string {
	return fmt.Sprintf("outbound|%d|%s|%s", c.port, c.subset, c.host)
}

// destination is one weighted upstream of a route.
type destination struct {
	cluster cluster
	weight  int32
}

// route is one HTTP route of a virtual host.
type route struct {
	name    string
	matches []*networkingv1alpha3.HTTPMatchRequest // none: matches every request
	dests   []destination
	// direct is set for a route that answers itself (directResponse).
	direct *networkingv1alpha3.HTTPDirectResponse
}

// vhostKey is a virtual host: a host name and the listener port.
type vhostKey struct {
	host string
	port uint32
}

// routeTable is an immutable snapshot of every virtual host a proxy knows.
type routeTable struct {
	vhosts map[vhostKey][]*route
	// wildcards holds gateway hosts such as *.example.com, longest suffix first.
	wildcards []wildcardHost
}

type wildcardHost struct {
	suffix string // ".example.com"
	port   uint32
	routes []*route
}

// tableBuilder turns API objects into a routeTable for one proxy.
type tableBuilder struct {
	domain string
	// gateway is "namespace/name" of the Gateway this proxy is, or "" for a sidecar.
	gateway string
	// ports are the gateway's listener ports; a sidecar serves every service port.
	ports []uint32
}

// build makes the table from VirtualServices (oldest first, as Istio orders
// them) and Services.
func (b tableBuilder) build(
	vss []*istionetworking.VirtualService,
	services []*corev1.Service,
) *routeTable {
	t := &routeTable{vhosts: map[vhostKey][]*route{}}
	servicePorts := map[string][]uint32{}
	for _, svc := range services {
		host := b.fqdn(svc.Name, svc.Namespace)
		for _, p := range svc.Spec.Ports {
			servicePorts[host] = append(servicePorts[host], uint32(p.Port))
		}
	}

	slices.SortStableFunc(vss, func(a, c *istionetworking.VirtualService) int {
		return a.CreationTimestamp.Compare(c.CreationTimestamp.Time)
	})
	for _, vs := range vss {
		if !b.bound(vs) {
			continue
		}
		for _, host := range vs.Spec.Hosts {
			full := b.resolveHost(host, vs.Namespace)
			for _, port := range b.listenerPorts(full, servicePorts) {
				routes := b.routes(vs, port, servicePorts)
				t.add(full, port, routes)
			}
		}
	}

	// A sidecar reaches every Service even without a VirtualService, through a
	// route Istio names "default".
	if b.gateway == "" {
		for host, ports := range servicePorts {
			for _, port := range ports {
				key := vhostKey{host, port}
				if _, ok := t.vhosts[key]; ok {
					continue
				}
				t.vhosts[key] = []*route{{
					name:  "default",
					dests: []destination{{cluster: cluster{host: host, port: port}, weight: 100}},
				}}
			}
		}
	}
	slices.SortFunc(t.wildcards, func(a, c wildcardHost) int { return len(c.suffix) - len(a.suffix) })
	return t
}

func (t *routeTable) add(host string, port uint32, routes []*route) {
	if suffix, ok := strings.CutPrefix(host, "*"); ok {
		t.wildcards = append(t.wildcards, wildcardHost{suffix: suffix, port: port, routes: routes})
		return
	}
	key := vhostKey{host, port}
	t.vhosts[key] = append(t.vhosts[key], routes...)
}

// bound reports whether the VirtualService applies to this proxy.
func (b tableBuilder) bound(vs *istionetworking.VirtualService) bool {
	gateways := vs.Spec.Gateways
	if b.gateway == "" {
		return len(gateways) == 0 || slices.Contains(gateways, meshGateway)
	}
	for _, g := range gateways {
		if b.gatewayMatches(g, vs.Namespace) {
			return true
		}
	}
	return false
}

// gatewayMatches reports whether a gateway reference (name or namespace/name,
// relative to the VirtualService's namespace) names this proxy's Gateway.
func (b tableBuilder) gatewayMatches(ref, vsNamespace string) bool {
	if ref == meshGateway {
		return false
	}
	if !strings.Contains(ref, "/") {
		ref = vsNamespace + "/" + ref
	}
	return ref == b.gateway
}

// listenerPorts returns the ports a VirtualService host is served on.
func (b tableBuilder) listenerPorts(host string, servicePorts map[string][]uint32) []uint32 {
	if b.gateway != "" {
		return b.ports
	}
	if ports, ok := servicePorts[host]; ok {
		return ports
	}
	return []uint32{80}
}

// routes converts a VirtualService's HTTP routes for one listener port.
func (b tableBuilder) routes(
	vs *istionetworking.VirtualService,
	port uint32,
	servicePorts map[string][]uint32,
) []*route {
	var out []*route
	for _, hr := range vs.Spec.Http {
		matches := b.applicableMatches(hr.Match, port, vs.Namespace)
		if len(hr.Match) > 0 && len(matches) == 0 {
			continue
		}
		r := &route{name: hr.Name, matches: matches, direct: hr.DirectResponse}
		for _, d := range hr.Route {
			host := b.resolveHost(d.Destination.GetHost(), vs.Namespace)
			p := d.Destination.GetPort().GetNumber()
			if p == 0 {
				p = defaultPort(servicePorts[host], port)
			}
			w := d.Weight
			if len(hr.Route) == 1 && w == 0 {
				w = 100
			}
			r.dests = append(r.dests, destination{
				cluster: cluster{host: host, port: p, subset: d.Destination.GetSubset()},
				weight:  w,
			})
		}
		out = append(out, r)
	}
	return out
}

// applicableMatches keeps the match clauses that can apply on this proxy and port.
func (b tableBuilder) applicableMatches(
	ms []*networkingv1alpha3.HTTPMatchRequest,
	port uint32,
	vsNamespace string,
) []*networkingv1alpha3.HTTPMatchRequest {
	var out []*networkingv1alpha3.HTTPMatchRequest
	for _, m := range ms {
		if m.Port != 0 && m.Port != port {
			continue
		}
		if len(m.Gateways) > 0 && !b.matchGatewayList(m.Gateways, vsNamespace) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func (b tableBuilder) matchGatewayList(gateways []string, vsNamespace string) bool {
	for _, g := range gateways {
		if (g == meshGateway && b.gateway == "") || b.gatewayMatches(g, vsNamespace) {
			return true
		}
	}
	return false
}

// defaultPort picks a destination port when the route names none: the
// service's only port, or else the port the request came in on.
func defaultPort(ports []uint32, listener uint32) uint32 {
	if len(ports) == 1 {
		return ports[0]
	}
	return listener
}

// fqdn is a service's cluster-local name.
func (b tableBuilder) fqdn(name, namespace string) string {
	return name + "." + namespace + ".svc." + b.domain
}

// resolveHost expands a short host name relative to a namespace, as Istio does
// for VirtualService hosts and destinations.
func (b tableBuilder) resolveHost(host, namespace string) string {
	if strings.HasPrefix(host, "*") || strings.HasSuffix(host, "."+b.domain) {
		return host
	}
	switch strings.Count(host, ".") {
	case 0:
		return b.fqdn(host, namespace)
	case 1:
		return host + ".svc." + b.domain
	}
	if strings.HasSuffix(host, ".svc") {
		return host + "." + b.domain
	}
	return host
}

// lookup finds the routes for a request's authority. A sidecar resolves short
// names relative to its own namespace, as the search path of its pod would.
func (t *routeTable) lookup(b tableBuilder, authority, sourceNamespace string, listener uint32) []*route {
	host, port := splitAuthority(authority, listener)
	if b.gateway == "" {
		host = b.resolveHost(host, sourceNamespace)
	}
	if routes, ok := t.vhosts[vhostKey{host, port}]; ok {
		return routes
	}
	for _, w := range t.wildcards {
		if w.port == port && strings.HasSuffix(host, w.suffix) {
			return w.routes
		}
	}
	return nil
}

// splitAuthority separates host and port, defaulting the port to the listener's.
func splitAuthority(authority string, listener uint32) (string, uint32) {
	host, portText, err := net.SplitHostPort(authority)
	if err != nil {
		return strings.ToLower(authority), listener
	}
	port, err := strconv.ParseUint(portText, 10, 32)
	if err != nil {
		return strings.ToLower(host), listener
	}
	return strings.ToLower(host), uint32(port)
}
