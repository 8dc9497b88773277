package scaler

import (
	"errors"
	"strconv"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// metrics are the scaler's Prometheus metrics. Labels are the ElastiService's
// namespace and name plus small fixed sets, never hosts or paths.
type metrics struct {
	scaleEvents     *promclient.CounterVec
	triggerValue    *promclient.GaugeVec
	triggerErrors   *promclient.CounterVec
	mode            *promclient.GaugeVec
	activations     *promclient.CounterVec
	activationDelay *promclient.HistogramVec
	roundDuration   promclient.Histogram
}

func newMetrics(reg promclient.Registerer) (*metrics, error) {
	m := &metrics{
		scaleEvents: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "elasti_scaler_scale_events_total",
			Help: "Scale writes by direction (up, down) and result (success, error).",
		}, []string{"namespace", "service", "direction", "result"}),
		triggerValue: promclient.NewGaugeVec(promclient.GaugeOpts{
			Name: "elasti_scaler_trigger_value",
			Help: "Latest value of each trigger (by index in spec.triggers); NaN when unreadable.",
		}, []string{"namespace", "service", "trigger"}),
		triggerErrors: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "elasti_scaler_trigger_errors_total",
			Help: "Trigger evaluations that gave no usable value, by reason.",
		}, []string{"namespace", "service", "reason"}),
		mode: promclient.NewGaugeVec(promclient.GaugeOpts{
			Name: "elasti_scaler_mode",
			Help: "1 for the mode (serve or hold) a service is in, 0 for the other.",
		}, []string{"namespace", "service", "mode"}),
		activations: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "elasti_scaler_activations_total",
			Help: "Activation calls by result (scaled, noop, error, rejected).",
		}, []string{"namespace", "service", "result"}),
		activationDelay: promclient.NewHistogramVec(promclient.HistogramOpts{
			Name:    "elasti_scaler_activation_duration_seconds",
			Help:    "Time from an activation call to its answer, scale write included, by result.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"result"}),
		roundDuration: promclient.NewHistogram(promclient.HistogramOpts{
			Name:    "elasti_scaler_evaluation_round_duration_seconds",
			Help:    "Time to evaluate every service's triggers once.",
			Buckets: promclient.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	var err error
	m.scaleEvents = register(reg, m.scaleEvents, &err)
	m.triggerValue = register(reg, m.triggerValue, &err)
	m.triggerErrors = register(reg, m.triggerErrors, &err)
	m.mode = register(reg, m.mode, &err)
	m.activations = register(reg, m.activations, &err)
	m.activationDelay = register(reg, m.activationDelay, &err)
	m.roundDuration = register(reg, m.roundDuration, &err)
	return m, err
}

// register registers c, or returns the collector already registered under its
// name, so that two scalers in one process (as in tests) share their metrics.
func register[C promclient.Collector](reg promclient.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	var are promclient.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil && *errp == nil {
		*errp = err
	}
	return c
}

func (m *metrics) observeVerdict(es *v1alpha1.ElastiService, v verdict) {
	for i, value := range v.Values {
		m.triggerValue.WithLabelValues(es.Namespace, es.Name, strconv.Itoa(i)).Set(value)
	}
	if v.Err != nil {
		m.triggerErrors.WithLabelValues(es.Namespace, es.Name, v.ErrKind).Inc()
	}
}

func (m *metrics) setMode(es *v1alpha1.ElastiService, mode v1alpha1.Mode) {
	serve, hold := 1.0, 0.0
	if mode == v1alpha1.ModeHold {
		serve, hold = 0, 1
	}
	m.mode.WithLabelValues(es.Namespace, es.Name, string(v1alpha1.ModeServe)).Set(serve)
	m.mode.WithLabelValues(es.Namespace, es.Name, string(v1alpha1.ModeHold)).Set(hold)
}

func (m *metrics) scaled(es *v1alpha1.ElastiService, direction string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.scaleEvents.WithLabelValues(es.Namespace, es.Name, direction, result).Inc()
}

// forget drops every series of a deleted service.
func (m *metrics) forget(namespace, name string) {
	labels := promclient.Labels{"namespace": namespace, "service": name}
	m.scaleEvents.DeletePartialMatch(labels)
	m.triggerValue.DeletePartialMatch(labels)
	m.triggerErrors.DeletePartialMatch(labels)
	m.mode.DeletePartialMatch(labels)
	m.activations.DeletePartialMatch(labels)
}
