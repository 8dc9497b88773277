package istio

import (
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// heldRoute is one entry of HeldRoutesAnnotation: what a route named HoldRouteName
// was called before hold, and the Services it is held for. An entry with no Services
// is a placeholder for a route the user named HoldRouteName themselves.
type heldRoute struct {
	// Name is the route's original http[].name; nil when the route had none.
	Name *string `json:"name"`
	// MatchNames are the original http[].match[].name values, by index; nil where a
	// match had none. Empty when no match had a name.
	MatchNames []*string `json:"matchNames,omitempty"`
	// Services are the Services, as namespace/name, the route is held for.
	Services []string `json:"services"`
}

// held reports whether the entry holds the route for at least one Service.
func (h *heldRoute) held() bool {
	return h != nil && len(h.Services) > 0
}

// book is the bookkeeping of one VirtualService, one slot per http route: nil for a
// route that is not named HoldRouteName.
type book []*heldRoute

// readBook decodes HeldRoutesAnnotation of vs and lines its entries up with routes.
// Entries are matched to the routes named HoldRouteName in order; such routes beyond
// the entries get placeholders and entries beyond the routes are dropped.
func readBook(vs *unstructured.Unstructured, routes []any) (book, error) {
	var entries []*heldRoute
	if raw, ok := vs.GetAnnotations()[HeldRoutesAnnotation]; ok {
		if err := json.Unmarshal([]byte(raw), &entries); err != nil {
			return nil, fmt.Errorf("failed to decode annotation %q of VirtualService %q: %w",
				HeldRoutesAnnotation, vs.GetNamespace()+"/"+vs.GetName(), err)
		}
	}

	b := make(book, len(routes))
	next := 0
	for i, r := range routes {
		if routeName(r) == nil || *routeName(r) != HoldRouteName {
			continue
		}
		if next < len(entries) && entries[next] != nil {
			b[i] = entries[next]
		} else {
			b[i] = &heldRoute{}
		}
		next++
	}
	return b, nil
}

// writeBook stores b on vs as HeldRoutesAnnotation, one entry per route now named
// HoldRouteName, or removes the annotation when no route is held.
func writeBook(vs *unstructured.Unstructured, routes []any, b book) error {
	var entries []*heldRoute
	anyHeld := false
	for i, r := range routes {
		if n := routeName(r); n == nil || *n != HoldRouteName {
			continue
		}
		entry := b[i]
		if entry == nil {
			entry = &heldRoute{}
		}
		if entry.Services == nil {
			entry.Services = []string{}
		}
		anyHeld = anyHeld || entry.held()
		entries = append(entries, entry)
	}

	annotations := vs.GetAnnotations()
	if !anyHeld {
		delete(annotations, HeldRoutesAnnotation)
		if len(annotations) == 0 {
			annotations = nil
		}
		vs.SetAnnotations(annotations)
		return nil
	}

	raw, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("failed to encode annotation %q: %w", HeldRoutesAnnotation, err)
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[HeldRoutesAnnotation] = string(raw)
	vs.SetAnnotations(annotations)
	return nil
}

// addService records that the route is held for key; it reports whether it was new.
func (h *heldRoute) addService(key string) bool {
	if slices.Contains(h.Services, key) {
		return false
	}
	h.Services = append(h.Services, key)
	return true
}

// removeService drops key from the Services; it reports whether it was there.
func (h *heldRoute) removeService(key string) bool {
	i := slices.Index(h.Services, key)
	if i < 0 {
		return false
	}
	h.Services = slices.Delete(h.Services, i, i+1)
	return true
}
