// Package envoyemu is a test double of an Istio sidecar or gateway Envoy, for the
// parts of Envoy's behaviour the project depends on. Neither Envoy nor Istio can
// run on the machines the tests run on, so this proxy stands in for them. It is
// never shipped.
//
// What it emulates, and where Envoy's documented behaviour is the reference:
//
//   - Routing as Istio programs it: one virtual host per service host and port,
//     built from the VirtualServices and Services in the API server; the first
//     HTTP route whose match applies wins; weighted destinations; a default route
//     named "default" for a Service no VirtualService covers. A request is routed
//     against the table as it was when the request arrived, as Envoy does: a
//     VirtualService change during a request never re-routes it.
//   - Endpoints from EndpointSlices (ready and not terminating), applied after a
//     configurable lag that stands for the time xDS takes to reach a proxy. A
//     cluster without endpoints answers 503 "no healthy upstream" at once.
//   - The ext_proc filter as the project's EnvoyFilter configures it: processing
//     modes, per-route overrides by route name, request attributes, the message
//     timeout (200 ms by default) and max_message_timeout with
//     override_message_timeout honoured once per processing state, 504 on a
//     message timeout and 500 on a stream error unless failure_mode_allow, a
//     stream the server ends with OK taken as the end of processing (the
//     request goes on unmodified and nothing more is sent for it), immediate
//     responses, header mutations, and clear_route_cache acting only when the
//     same response mutates headers.
//   - istio_requests_total with Istio's label names, for Prometheus to scrape.
//
// What it does not do: TLS, retries, outlier detection, circuit breaking, body
// processing by ext_proc, and the many Envoy features the project never relies on.
package envoyemu
