// Package extproc is elasti-extproc: an Envoy ext_proc gRPC server that holds
// requests for a service whose workload is at zero, asks elasti-scaler to bring it
// up, and releases every held request together once the service has ready
// endpoints and the change has had time to reach Envoy.
//
// The package has four parts: the decision (a pure function from what Envoy sent
// and a snapshot of the ElastiService and its readiness to CONTINUE, a local
// answer or a hold), the state it reads (a Directory of ElastiServices and a
// Readiness tracker fed by EndpointSlices), the hold machinery (waiter counts,
// coalesced activation calls, the release broadcast) and the gRPC edge (Server).
package extproc
