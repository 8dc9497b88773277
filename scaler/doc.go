// Package scaler is the elasti-scaler controller. For every ElastiService it keeps
// the workload, the routes and the status in step:
//
//   - a reconciler checks that the scale target and the Service exist, writes
//     conditions and events, and moves the service between serve and hold;
//   - an evaluator runs each service's Prometheus triggers every polling interval
//     and hands the verdict to the reconciler;
//   - an activation gRPC server, answering on the elected leader only, brings a
//     workload up from zero when elasti-extproc holds a request for it.
//
// Going to zero always follows the same order: pause KEDA, switch routes to hold,
// wait for the change to reach the proxies, check that no activation arrived, scale
// to zero. Coming back: record the scale-up, resume KEDA, scale up, and switch the
// routes back to serve once the Service has a ready endpoint.
package scaler
