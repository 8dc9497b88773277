package istio

import "time"

// Facts about the EnvoyFilter shipped in manifests/istio/envoyfilter.yaml that other
// parts of the project depend on. The package's tests check the file against them.
const (
	// ExtProcFilterName is the name of Envoy's ext_proc HTTP filter, and the key of
	// its per-route configuration.
	ExtProcFilterName = "envoy.filters.http.ext_proc"

	// ExtProcCluster is the Envoy cluster Istio creates for elasti-extproc's gRPC
	// port, which the filter's grpc_service points at.
	ExtProcCluster = "outbound|9002||elasti-extproc.elasti-system.svc.cluster.local"

	// ExtProcMessageTimeout is the filter's message_timeout: how long Envoy waits for
	// any answer from elasti-extproc before it gives up on it. It only ever applies
	// on hold routes, where giving up sends the request to a Service that is most
	// likely still at zero, so it is generous enough for a starved elasti-extproc
	// to answer (see the manifest).
	ExtProcMessageTimeout = 5 * time.Second

	// ExtProcMaxMessageTimeout is the filter's max_message_timeout, the largest
	// override_message_timeout Envoy honours: the longest holdTimeout (5m) plus a
	// margin so that elasti-extproc's own 504 arrives first.
	ExtProcMaxMessageTimeout = 5*time.Minute + 10*time.Second

	// ExtProcFailureModeAllow is the filter's failure_mode_allow: when elasti-extproc
	// fails, requests continue as if it were not there (see the manifest for why).
	ExtProcFailureModeAllow = true
)

// ExtProcRequestAttributes are the Envoy attributes the filter sends with each
// request, in ProcessingRequest.attributes[ExtProcFilterName]: the upstream cluster
// (outbound|PORT|SUBSET|HOST) and the route name.
func ExtProcRequestAttributes() []string {
	return []string{"xds.cluster_name", "xds.route_name"}
}
