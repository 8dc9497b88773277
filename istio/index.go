package istio

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// virtualServiceIndex is the cache index by which a cached RouteSwitch finds the
// VirtualServices of a Service. Its values are serviceIndexValue(namespace/name)
// for every Service a VirtualService sends to, is held for or names among its mesh
// hosts, and wildcardIndexValue when it has a wildcard host for the mesh.
const virtualServiceIndex = apiGroup + "/services"

// wildcardIndexValue marks VirtualServices with a wildcard mesh host: whether one
// covers a Service takes a suffix match, so they are checked one by one.
const wildcardIndexValue = "*"

// serviceIndexValue is the index value of the Service key (namespace/name).
func serviceIndexValue(key string) string {
	return "service:" + key
}

// VirtualServiceCache is what a cached RouteSwitch needs of an informer cache, such
// as a controller-runtime manager's: reads, and an index it registers.
type VirtualServiceCache interface {
	client.Reader
	client.FieldIndexer
}

// NewCachedRouteSwitch returns a RouteSwitch that finds the VirtualServices of a
// Service through an index it registers in cache, instead of listing every
// VirtualService from the API server on each call. It still reads each one it found
// from the API server through c before it decides and writes, so a cache that lags
// behind the switch's own last write never turns a needed change into a no-op. A
// VirtualService that starts sending to a Service is found once the cache has it,
// usually within a fraction of a second. Register before cache starts.
func NewCachedRouteSwitch(
	ctx context.Context,
	c client.Client,
	cache VirtualServiceCache,
	opts RouteSwitchOptions,
) (*RouteSwitch, error) {
	s := NewRouteSwitch(c, opts)
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	domain := s.opts.ClusterDomain
	err := cache.IndexField(ctx, vs, virtualServiceIndex, func(o client.Object) []string {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return nil
		}
		return indexValues(u, domain)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to index VirtualServices by Service: %w", err)
	}
	s.cache = cache
	return s, nil
}

// indexValues returns the index values of vs: the Services its http routes send
// to, the Services it is held for, the Services its mesh hosts name, and
// wildcardIndexValue for a wildcard mesh host. VirtualServices the switch created
// are not indexed: it handles them by name.
func indexValues(vs *unstructured.Unstructured, domain string) []string {
	if isOwned(vs) {
		return nil
	}
	var keys []string
	add := func(host string) {
		if key := serviceKey(host, vs.GetNamespace(), domain); key != "" {
			keys = append(keys, serviceIndexValue(key))
		}
	}

	if boundToMesh(vs) {
		hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
		for _, h := range hosts {
			if strings.HasPrefix(h, "*") {
				keys = append(keys, wildcardIndexValue)
			} else {
				add(h)
			}
		}
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range routes {
		route, _ := r.(map[string]any)
		destinations, _ := route["route"].([]any)
		for _, d := range destinations {
			dest, _ := d.(map[string]any)
			destination, _ := dest["destination"].(map[string]any)
			host, _ := destination["host"].(string)
			add(host)
		}
	}
	// A Service's entry stays findable even when a user changed the route's
	// destination during the hold.
	if raw, ok := vs.GetAnnotations()[HeldRoutesAnnotation]; ok {
		var entries []*heldRoute
		if json.Unmarshal([]byte(raw), &entries) == nil {
			for _, e := range entries {
				for _, key := range e.servicesOrNil() {
					keys = append(keys, serviceIndexValue(key))
				}
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// servicesOrNil returns the Services of a possibly nil entry.
func (h *heldRoute) servicesOrNil() []string {
	if h == nil {
		return nil
	}
	return h.Services
}

// serviceKey returns namespace/name of the Service a host names, written in a
// VirtualService of vsNamespace, or "" for a host that names no Service of this
// cluster. It accepts exactly the names target.isHost accepts.
func serviceKey(host, vsNamespace, domain string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "" {
		return ""
	}
	parts := strings.Split(h, ".")
	switch {
	case len(parts) == 1:
		return vsNamespace + "/" + h
	case len(parts) == 2,
		len(parts) == 3 && parts[2] == "svc",
		len(parts) > 3 && parts[2] == "svc" && strings.Join(parts[3:], ".") == domain:
		return parts[1] + "/" + parts[0]
	}
	return ""
}

// boundToMesh reports whether vs applies to sidecars: no gateways, or the mesh
// gateway among them.
func boundToMesh(vs *unstructured.Unstructured) bool {
	gateways, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
	return len(gateways) == 0 || slices.Contains(gateways, meshGateway)
}

// findCached returns the VirtualServices in namespace ns ("" for all) that the
// index ties to t, read again from the API server. VirtualServices with a wildcard
// mesh host are read again only when the cached copy covers t.
func (s *RouteSwitch) findCached(ctx context.Context, ns string, t target) ([]unstructured.Unstructured, error) {
	var found []unstructured.Unstructured
	for _, value := range []string{serviceIndexValue(t.key), wildcardIndexValue} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(virtualServiceListGVK)
		err := s.cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{virtualServiceIndex: value})
		if err != nil {
			return nil, fmt.Errorf("failed to list cached VirtualServices in namespace %q: %w", ns, err)
		}
		for i := range list.Items {
			vs := &list.Items[i]
			if value == wildcardIndexValue && !coversMesh(vs, t) {
				continue
			}
			if !slices.ContainsFunc(found, func(f unstructured.Unstructured) bool {
				return f.GetNamespace() == vs.GetNamespace() && f.GetName() == vs.GetName()
			}) {
				found = append(found, *vs)
			}
		}
	}
	return s.reread(ctx, found)
}

// reread replaces each VirtualService with its current version from the API
// server, dropping those deleted meanwhile.
func (s *RouteSwitch) reread(ctx context.Context, cached []unstructured.Unstructured) ([]unstructured.Unstructured, error) {
	out := make([]unstructured.Unstructured, 0, len(cached))
	for i := range cached {
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(virtualServiceGVK)
		err := s.client.Get(ctx, client.ObjectKeyFromObject(&cached[i]), vs)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("failed to get VirtualService %q: %w",
				cached[i].GetNamespace()+"/"+cached[i].GetName(), err)
		}
		out = append(out, *vs)
	}
	return out, nil
}

// ServicesOf returns the Services whose routes o, a VirtualService, may carry: the
// Service an owned VirtualService was created for, and for any other the Services
// its http routes send to, is held for or its mesh hosts name. Wildcard hosts are
// left out. A controller that watches VirtualServices maps a change to the
// Services to look at again with it, so that an edit that undoes a hold (a
// re-applied manifest, say) is put right at once.
func (s *RouteSwitch) ServicesOf(o client.Object) []types.NamespacedName {
	vs, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	if isOwned(vs) {
		return []types.NamespacedName{{Namespace: vs.GetNamespace(), Name: vs.GetLabels()[ServiceLabel]}}
	}
	var out []types.NamespacedName
	for _, v := range indexValues(vs, s.opts.ClusterDomain) {
		key, ok := strings.CutPrefix(v, serviceIndexValue(""))
		if !ok {
			continue
		}
		if ns, name, ok := strings.Cut(key, "/"); ok {
			out = append(out, types.NamespacedName{Namespace: ns, Name: name})
		}
	}
	return out
}

// RouteObject returns an empty VirtualService, the kind ServicesOf maps.
func (s *RouteSwitch) RouteObject() client.Object {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	return vs
}
