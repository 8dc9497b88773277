package extproc

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Options configure elasti-extproc. The zero value of every field means its
// documented default; Validate reports what a person must fix.
type Options struct {
	// Addr is where the ext_proc gRPC server and its gRPC health service
	// listen. Defaults to ":9002".
	Addr string
	// MetricsAddr is where /metrics, /healthz and /readyz are served over
	// HTTP. Defaults to ":8080".
	MetricsAddr string
	// TLSCertFile and TLSKeyFile, both set or both empty, make the gRPC server
	// speak TLS with that certificate. Empty means plaintext (inside the mesh
	// the sidecar adds mTLS).
	TLSCertFile string
	TLSKeyFile  string
	// ScalerAddress is the gRPC target of elasti-scaler's activation API.
	// Defaults to "dns:///elasti-scaler-activation.elasti-system.svc:9003",
	// dialled with round_robin so that retries reach the leader.
	ScalerAddress string
	// Namespaces limits the ElastiServices and EndpointSlices watched. Empty
	// means all namespaces.
	Namespaces []string
	// PropagationDelay is how long a Service must have had ready endpoints
	// before held requests are released, so that the proxies have received
	// the endpoints by then. Defaults to 1s: the mesh control plane batches
	// endpoint pushes for 100ms and a push reaches proxies in well under a
	// second on a healthy mesh; a request released too early fails with 503.
	PropagationDelay time.Duration
	// MaxMessageTimeout must equal the ext_proc filter's max_message_timeout:
	// Envoy ignores an override_message_timeout above it, so holds are capped
	// at MaxMessageTimeout minus TimeoutMargin. Defaults to 5m10s, which
	// allows the API's largest holdTimeout of 5m.
	MaxMessageTimeout time.Duration
	// TimeoutMargin is how much longer than the hold Envoy is told to wait, so
	// that elasti-extproc's own 504 always arrives before Envoy gives up.
	// Defaults to 5s.
	TimeoutMargin time.Duration
	// ShedRetryAfter is the Retry-After sent with a 503 when a service has too
	// many held requests or the replica shuts down. Defaults to 5s.
	ShedRetryAfter time.Duration
	// DrainTimeout bounds shutdown: held requests still waiting when it passes
	// are answered 503 and the server stops. Defaults to 75s; the pod's
	// termination grace period must be longer.
	DrainTimeout time.Duration
	// ActivationCallTimeout bounds one Activate call. Defaults to 5s.
	ActivationCallTimeout time.Duration
	// ActivationBackoffBase and ActivationBackoffMax bound the exponential
	// backoff between failed Activate calls. Default to 100ms and 5s.
	ActivationBackoffBase time.Duration
	ActivationBackoffMax  time.Duration
	// ActivationRetryInterval is how often Activate is repeated while requests
	// wait and the scaler gave no retry_after. Defaults to 1s.
	ActivationRetryInterval time.Duration
}

// Defaults of Options.
const (
	DefaultAddr              = ":9002"
	DefaultMetricsAddr       = ":8080"
	DefaultScalerAddress     = "dns:///elasti-scaler-activation.elasti-system.svc:9003"
	DefaultPropagationDelay  = time.Second
	DefaultMaxMessageTimeout = 5*time.Minute + 10*time.Second
	DefaultTimeoutMargin     = 5 * time.Second
	DefaultShedRetryAfter    = 5 * time.Second
	DefaultDrainTimeout      = 75 * time.Second
)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.ScalerAddress == "" {
		o.ScalerAddress = DefaultScalerAddress
	}
	def(&o.PropagationDelay, DefaultPropagationDelay)
	def(&o.MaxMessageTimeout, DefaultMaxMessageTimeout)
	def(&o.TimeoutMargin, DefaultTimeoutMargin)
	def(&o.ShedRetryAfter, DefaultShedRetryAfter)
	def(&o.DrainTimeout, DefaultDrainTimeout)
	def(&o.ActivationCallTimeout, 5*time.Second)
	def(&o.ActivationBackoffBase, 100*time.Millisecond)
	def(&o.ActivationBackoffMax, 5*time.Second)
	def(&o.ActivationRetryInterval, time.Second)
	return o
}

// Validate reports every problem with o (after WithDefaults) at once.
func (o Options) Validate() error {
	var errs []error
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"propagation delay", o.PropagationDelay},
		{"max message timeout", o.MaxMessageTimeout},
		{"timeout margin", o.TimeoutMargin},
		{"shed retry-after", o.ShedRetryAfter},
		{"drain timeout", o.DrainTimeout},
		{"activation call timeout", o.ActivationCallTimeout},
		{"activation backoff base", o.ActivationBackoffBase},
		{"activation backoff max", o.ActivationBackoffMax},
		{"activation retry interval", o.ActivationRetryInterval},
	} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s is %s: it must not be negative", d.name, d.value))
		}
	}
	if o.MaxMessageTimeout < o.TimeoutMargin+time.Second {
		errs = append(errs, fmt.Errorf(
			"max message timeout %s leaves less than 1s of hold after the %s margin: "+
				"set it to the ext_proc filter's max_message_timeout", o.MaxMessageTimeout,
			o.TimeoutMargin))
	}
	if o.ActivationBackoffBase > o.ActivationBackoffMax {
		errs = append(errs, fmt.Errorf("activation backoff base %s is above its max %s",
			o.ActivationBackoffBase, o.ActivationBackoffMax))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS needs both a certificate file and a key file, or neither"))
	}
	for _, f := range []string{o.TLSCertFile, o.TLSKeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("failed to read TLS file %q: %w", f, err))
		}
	}
	for _, ns := range o.Namespaces {
		if !isDNSLabel(ns) {
			errs = append(errs, fmt.Errorf("namespace %q is not a valid namespace name", ns))
		}
	}
	if o.ScalerAddress == "" {
		errs = append(errs, errors.New("scaler address is empty"))
	}
	return errors.Join(errs...)
}

// holdTimeouts returns how long to hold a request for t and the message timeout
// to ask Envoy for. Envoy ignores an override above its max_message_timeout, so
// the override is capped there and the hold shortened to fit under it.
func (o Options) holdTimeouts(t *Target) (hold, override time.Duration) {
	hold = t.HoldTimeout
	override = hold + o.TimeoutMargin
	if override > o.MaxMessageTimeout {
		override = o.MaxMessageTimeout
		hold = override - o.TimeoutMargin
	}
	return hold, override
}

func (o Options) holdsOptions() holdsOptions {
	return holdsOptions{
		ActivationCallTimeout:   o.ActivationCallTimeout,
		ActivationBackoffBase:   o.ActivationBackoffBase,
		ActivationBackoffMax:    o.ActivationBackoffMax,
		ActivationRetryInterval: o.ActivationRetryInterval,
	}
}
