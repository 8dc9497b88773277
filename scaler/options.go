package scaler

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Defaults of Options.
const (
	DefaultPollingInterval        = 30 * time.Second
	DefaultPropagationDelay       = 2 * time.Second
	DefaultQueryTimeout           = 5 * time.Second
	DefaultMaxConcurrentQueries   = 16
	DefaultMaxConcurrentReconcile = 8
	DefaultActivationRetryAfter   = time.Second
	DefaultResyncPeriod           = 5 * time.Minute
	DefaultActivationQPS          = 200
	DefaultActivationBurst        = 400
)

// Options configure the scaler. The zero value of every field but Router works:
// the documented default applies.
type Options struct {
	// Router switches a service's routes between hold and serve. Required by
	// Setup; NewManager builds it.
	Router Router

	// PollingInterval is how often every service's triggers are evaluated.
	// Defaults to 30s.
	PollingInterval time.Duration

	// PropagationDelay is how long the scaler waits after switching a service's
	// routes to hold before it scales the workload to zero, so that every proxy has
	// the hold route first. A cluster gives no signal that a route reached every
	// proxy without asking istiod, so this is a fixed delay; set it above the
	// mesh's usual configuration push time. Defaults to 2s.
	PropagationDelay time.Duration

	// PrometheusAddress is the Prometheus base URL used by triggers that name no
	// serverAddress. Defaults to none: such triggers then cannot be evaluated.
	PrometheusAddress string

	// UptimeFilter is the label selector of the up series that must read 1 before
	// an idle value is trusted, for triggers that name no uptimeFilter. Defaults
	// to v1alpha1.DefaultUptimeFilter.
	UptimeFilter string

	// QueryTimeout bounds each Prometheus query. Defaults to 5s.
	QueryTimeout time.Duration

	// MaxConcurrentQueries bounds the Prometheus queries in flight at once across
	// all services. Defaults to 16.
	MaxConcurrentQueries int

	// MaxConcurrentReconciles is the number of services reconciled at once.
	// Defaults to 8.
	MaxConcurrentReconciles int

	// ActivationRetryAfter is the wait the activation API suggests to callers
	// while a workload is scaling up. Defaults to 1s.
	ActivationRetryAfter time.Duration

	// ResyncPeriod is how often a service is reconciled when nothing changed, so
	// that a target created or fixed later is noticed. Defaults to 5m.
	ResyncPeriod time.Duration

	// ActivationQPS and ActivationBurst bound the API requests of activations,
	// which have a client, and so a budget, of their own: an activation never
	// waits behind reconciles. An activation from zero makes two requests.
	// Default to 200 and 400.
	ActivationQPS   float32
	ActivationBurst int
}

// Validate reports options that cannot work, saying which field to fix.
func (o *Options) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"polling interval":       o.PollingInterval,
		"propagation delay":      o.PropagationDelay,
		"query timeout":          o.QueryTimeout,
		"activation retry-after": o.ActivationRetryAfter,
		"resync period":          o.ResyncPeriod,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	if o.MaxConcurrentQueries < 0 || o.MaxConcurrentReconciles < 0 {
		errs = append(errs, errors.New("concurrency limits must not be negative"))
	}
	if o.ActivationQPS < 0 || o.ActivationBurst < 0 {
		errs = append(errs, fmt.Errorf("activation API rate limits must not be negative, got qps %v burst %d",
			o.ActivationQPS, o.ActivationBurst))
	}
	if o.PrometheusAddress != "" {
		u, err := url.Parse(o.PrometheusAddress)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("prometheus address %q must be an http or https URL",
				o.PrometheusAddress))
		}
	}
	if o.PollingInterval > 0 && o.QueryTimeout > o.PollingInterval {
		errs = append(errs, fmt.Errorf("query timeout %s must not exceed the polling interval %s",
			o.QueryTimeout, o.PollingInterval))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of o with every unset field at its default.
func (o Options) withDefaults() Options {
	setDuration(&o.PollingInterval, DefaultPollingInterval)
	setDuration(&o.PropagationDelay, DefaultPropagationDelay)
	setDuration(&o.QueryTimeout, DefaultQueryTimeout)
	setDuration(&o.ActivationRetryAfter, DefaultActivationRetryAfter)
	setDuration(&o.ResyncPeriod, DefaultResyncPeriod)
	if o.MaxConcurrentQueries == 0 {
		o.MaxConcurrentQueries = DefaultMaxConcurrentQueries
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = DefaultMaxConcurrentReconcile
	}
	if o.ActivationQPS == 0 {
		o.ActivationQPS = DefaultActivationQPS
	}
	if o.ActivationBurst == 0 {
		o.ActivationBurst = DefaultActivationBurst
	}
	if o.UptimeFilter == "" {
		o.UptimeFilter = v1alpha1.DefaultUptimeFilter
	}
	return o
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
