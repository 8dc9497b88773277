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
// to zero. Coming back: resume KEDA, scale up while recording lastScaledUpTime, and
// switch the routes back to serve once the Service has a ready endpoint. An
// activation of a workload known to be at zero sends the record and the scale
// write together, one round trip to the API server; the switch to serve records
// the scale-up if that record did not land, so the cooldown is never cut short.
package scaler
