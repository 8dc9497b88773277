// Package istio switches a Service's traffic between Istio routes that pass through
// elasti-extproc (hold) and routes that go straight to the pods (serve), and holds the
// facts about the shipped EnvoyFilter that the rest of the project relies on.
//
// # The hold state
//
// The shipped EnvoyFilter inserts ext_proc before the router on every sidecar outbound
// and gateway listener with every processing mode off, so it does nothing, and turns
// request-header processing on for routes whose Envoy name is HoldRouteName. Istio
// names an Envoy route after the VirtualService's http[].name, with "." and the match
// name appended when the matching http[].match[] entry has a name. So a Service is in
// hold when every VirtualService http route that sends to it is named HoldRouteName and
// carries no match names, and in serve when none of its routes is renamed.
//
// # Why rename rather than insert
//
// Hold renames the user's own routes in place instead of inserting a hold copy in
// front of each. Renaming keeps every match, weight, retry policy, timeout, header
// rule, mirror and the route order exactly as written; only http[].name and
// http[].match[].name change. A copy would leave the original route unreachable (a
// warning from Istio's validation and from istioctl analyze) and would freeze the
// user's settings at the time of the copy, so an edit made during the hold would be
// silently ignored until serve. A route that sends to several Services (a weighted
// split) is renamed once; ext_proc then also sees the requests for the other
// destinations, answers them CONTINUE at once because Envoy reports their own cluster,
// and the cost is one ext_proc round trip for them while the hold lasts.
//
// The original names are kept on the VirtualService in the annotation
// HeldRoutesAnnotation: one entry per route named HoldRouteName, in route order, with
// the route's original name, its match names and the Services (namespace/name) it is
// held for. Serve for a Service removes it from each entry; a route whose entry has no
// Service left gets its names back, and when no entry is left the annotation goes too,
// so serve after hold gives back the object exactly as the user wrote it. Routes named
// HoldRouteName by the user themselves get placeholder entries and are never renamed.
//
// Where no VirtualService bound to the mesh covers the Service's host names, mesh
// callers use Istio's default route, which cannot be renamed. Hold then creates a
// VirtualService of its own for the Service (label ManagedByLabel, owner reference to
// the ElastiService, so it is garbage collected with it) whose single route is the
// hold route, and Serve deletes it. It is deleted as well when a user VirtualService
// starts covering the host, since two VirtualServices for one host conflict in Istio.
//
// # Writes
//
// VirtualServices are read and written as unstructured objects, so that fields this
// build's Istio types do not know survive the round trip. A switch built with
// NewCachedRouteSwitch finds the VirtualServices of a Service through an index in an
// informer cache (by the Services their routes send to, are held for, or their mesh
// hosts name), then reads each one it found from the API server before deciding;
// NewRouteSwitch lists them all from the API server on every call. Every write is an
// Update carrying the resourceVersion that was read; on a conflict the object is read
// again and the change recomputed, so a concurrent edit by a user is never
// overwritten.
//
// # Limits
//
//   - A VirtualService whose exportTo hides it from some namespaces covers only the
//     namespaces it is exported to; callers elsewhere reach the Service through
//     Istio's default route and are not held (they get 503 while it is at zero).
//   - Delegate VirtualServices (http[].delegate) are not followed: Istio names their
//     routes "root-delegate", which the EnvoyFilter cannot match.
//   - With a cache, a VirtualService that a user points at a Service is found once
//     the cache has it; a Hold or Serve in the moment between leaves it as it was
//     until the Service's next reconcile.
//   - Adding or removing a route named HoldRouteName by hand while a Service is held
//     shifts the bookkeeping by one route; routes are matched to entries by order.
package istio
