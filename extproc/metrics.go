package extproc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are elasti-extproc's Prometheus metrics. Labels are the namespace and
// name of the held Service, plus a small fixed result enum where noted, so their
// number is bounded by the number of ElastiServices. Safe for concurrent use.
type Metrics struct {
	streams     prometheus.Counter
	held        *prometheus.GaugeVec
	holdSeconds *prometheus.HistogramVec
	releases    *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	sheds       *prometheus.CounterVec
	activations *prometheus.CounterVec
}

// Hold results, the values of elasti_extproc_hold_duration_seconds' result label.
const (
	resultReleased = "released"
	resultTimeout  = "timeout"
	resultCanceled = "canceled"
	resultDrained  = "drained"
)

// NewMetrics creates the metrics and registers them with reg; a nil reg leaves
// them unregistered, which tests use.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	svc := []string{"namespace", "service"}
	m := &Metrics{
		streams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "elasti_extproc_streams_total",
			Help: "ext_proc streams Envoy opened, one per request on a hold route.",
		}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "elasti_extproc_held_requests",
			Help: "Requests held right now, waiting for their service to become ready.",
		}, svc),
		holdSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elasti_extproc_hold_duration_seconds",
			Help:    "How long requests were held, by how the hold ended.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, append(svc, "result")),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elasti_extproc_releases_total",
			Help: "Held requests released to their ready service.",
		}, svc),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elasti_extproc_timeouts_total",
			Help: "Held requests answered 504 because the hold timeout passed.",
		}, svc),
		sheds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elasti_extproc_sheds_total",
			Help: "Requests answered 503 because too many were held for the service.",
		}, svc),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elasti_extproc_activations_total",
			Help: "Activation calls made to elasti-scaler, by result (ok or error).",
		}, append(svc, "result")),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.held, m.holdSeconds, m.releases, m.timeouts, m.sheds, m.activations)
	}
	return m
}

// streamOpened counts one ext_proc stream.
func (m *Metrics) streamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}
