package extproc

import (
	"time"

	"github.com/go-logr/logr"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Action is what to do with a request.
type Action int

const (
	// ActionContinue lets the request through unchanged.
	ActionContinue Action = iota
	// ActionRespond answers the request locally with Decision.Response.
	ActionRespond
	// ActionHold holds the request until the service is ready.
	ActionHold
)

// String returns the action's name, for logs and test messages.
func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "continue"
	case ActionRespond:
		return "respond"
	case ActionHold:
		return "hold"
	}
	return "unknown"
}

// Target is what the request path needs of one ElastiService. It is immutable
// once built and safe to share between goroutines.
type Target struct {
	// Service is the Service whose traffic the ElastiService governs.
	Service ServiceKey
	// Name is the ElastiService's name, in Service.Namespace.
	Name string
	// HoldTimeout is how long a request is held before it is answered 504.
	HoldTimeout time.Duration
	// HeldCap is how many requests this replica holds at once for the service.
	HeldCap int
	probes  []probeRule
}

// NewTarget builds the Target of an ElastiService, applying the API's defaults.
// Invalid probe rules are dropped and logged through log.
func NewTarget(log logr.Logger, es *v1alpha1.ElastiService) *Target {
	return &Target{
		Service:     ServiceKey{Namespace: es.Namespace, Name: es.Spec.Service},
		Name:        es.Name,
		HoldTimeout: es.Spec.HoldTimeoutDuration(),
		HeldCap:     int(es.Spec.HeldRequestsCap()),
		probes:      compileProbeRules(log, es.Spec.ProbeResponse),
	}
}

// Snapshot is the state of one Service as the decision sees it.
type Snapshot struct {
	// Target is the ElastiService governing the Service; nil when there is none.
	Target *Target
	// Ready is true when the Service has ready endpoints and the propagation
	// delay has passed: requests may go through.
	Ready bool
}

// LocalResponse is an HTTP response elasti-extproc answers itself.
type LocalResponse struct {
	Status  int
	Body    string
	Headers []Header
	// Details is Envoy's response code details, shown in its access log.
	Details string
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Target is set for ActionHold and for a probe answer.
	Target *Target
	// Response is set for ActionRespond.
	Response *LocalResponse
}

// Decide says what to do with a request, given a way to look up the state of
// its target. It is pure: it reads req and what lookup returns, and nothing else.
// Unknown targets and ready services continue at once; a matching probe rule is
// answered locally without waking the service; anything else is held.
func Decide(req *Request, lookup func(ServiceKey) Snapshot) Decision {
	if req.Target.IsZero() {
		return Decision{Action: ActionContinue}
	}
	snap := lookup(req.Target)
	if snap.Target == nil || snap.Ready {
		return Decision{Action: ActionContinue}
	}

	for i := range snap.Target.probes {
		p := &snap.Target.probes[i]
		if p.matches(req) {
			return Decision{Action: ActionRespond, Target: snap.Target, Response: &LocalResponse{
				Status:  int(p.status),
				Body:    p.body,
				Headers: []Header{{Name: "content-type", Value: "application/json"}},
				Details: "elasti_probe_response",
			}}
		}
	}
	return Decision{Action: ActionHold, Target: snap.Target}
}
