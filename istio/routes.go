package istio

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// holdRoutes puts every http route of vs that sends to t into hold: it renames the
// route to HoldRouteName, removes its match names (Istio would append them to the
// Envoy route name) and records the originals in HeldRoutesAnnotation. It returns how
// many routes it newly held for t, and whether vs changed at all.
func holdRoutes(vs *unstructured.Unstructured, t target) (int, bool, error) {
	routes, err := httpRoutes(vs)
	if err != nil || len(routes) == 0 {
		return 0, false, err
	}
	b, err := readBook(vs, routes)
	if err != nil {
		return 0, false, err
	}

	newly, changed := 0, false
	for i, r := range routes {
		route, ok := r.(map[string]any)
		if !ok || !sendsTo(route, t, vs.GetNamespace()) {
			continue
		}
		if !b[i].held() {
			b[i] = &heldRoute{Name: routeName(route), MatchNames: matchNames(route)}
			rename(route)
			newly++
		}
		if b[i].addService(t.key) {
			changed = true
		}
	}
	if !changed {
		return 0, false, nil
	}
	return newly, true, store(vs, routes, b)
}

// serveRoutes takes t off every route of vs held for it. A route held for no other
// Service gets its original names back. It returns how many routes it restored, and
// whether vs changed at all.
func serveRoutes(vs *unstructured.Unstructured, t target) (int, bool, error) {
	routes, err := httpRoutes(vs)
	if err != nil || len(routes) == 0 {
		return 0, false, err
	}
	b, err := readBook(vs, routes)
	if err != nil {
		return 0, false, err
	}

	restored, changed := 0, false
	for i, r := range routes {
		route, ok := r.(map[string]any)
		if !ok || b[i] == nil || !b[i].removeService(t.key) {
			continue
		}
		changed = true
		if !b[i].held() {
			restore(route, b[i])
			b[i] = nil
			restored++
		}
	}
	if !changed {
		return 0, false, nil
	}
	return restored, true, store(vs, routes, b)
}

// store writes routes and the bookkeeping back into vs.
func store(vs *unstructured.Unstructured, routes []any, b book) error {
	if err := unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"); err != nil {
		return fmt.Errorf("failed to set http routes of VirtualService %q: %w", vs.GetName(), err)
	}
	return writeBook(vs, routes, b)
}

// httpRoutes returns a copy of spec.http of vs.
func httpRoutes(vs *unstructured.Unstructured) ([]any, error) {
	routes, _, err := unstructured.NestedSlice(vs.Object, "spec", "http")
	if err != nil {
		return nil, fmt.Errorf("failed to read http routes of VirtualService %q: %w",
			vs.GetNamespace()+"/"+vs.GetName(), err)
	}
	return routes, nil
}

// sendsTo reports whether any destination of route is the Service t.
func sendsTo(route map[string]any, t target, vsNamespace string) bool {
	destinations, _ := route["route"].([]any)
	for _, d := range destinations {
		dest, _ := d.(map[string]any)
		destination, _ := dest["destination"].(map[string]any)
		host, _ := destination["host"].(string)
		if host != "" && t.isHost(host, vsNamespace) {
			return true
		}
	}
	return false
}

// routeName returns a route's name, or nil when it has none.
func routeName(r any) *string {
	route, _ := r.(map[string]any)
	name, ok := route["name"].(string)
	if !ok {
		return nil
	}
	return &name
}

// matchNames returns the match names of route by index, or nil when no match has
// a name.
func matchNames(route map[string]any) []*string {
	matches, _ := route["match"].([]any)
	names := make([]*string, len(matches))
	named := false
	for i, m := range matches {
		match, _ := m.(map[string]any)
		if name, ok := match["name"].(string); ok {
			names[i] = &name
			named = true
		}
	}
	if !named {
		return nil
	}
	return names
}

// rename gives route the hold name and removes its match names.
func rename(route map[string]any) {
	route["name"] = HoldRouteName
	matches, _ := route["match"].([]any)
	for _, m := range matches {
		if match, ok := m.(map[string]any); ok {
			delete(match, "name")
		}
	}
}

// restore gives route back the names recorded in h. Matches added during the hold
// have no recorded name and keep none.
func restore(route map[string]any, h *heldRoute) {
	if h.Name == nil {
		delete(route, "name")
	} else {
		route["name"] = *h.Name
	}
	matches, _ := route["match"].([]any)
	for i, m := range matches {
		match, ok := m.(map[string]any)
		if ok && i < len(h.MatchNames) && h.MatchNames[i] != nil {
			match["name"] = *h.MatchNames[i]
		}
	}
}
