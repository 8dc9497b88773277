package envoyemu

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the standard Istio request metrics, with Istio's label names, so
// that queries written for a mesh run unchanged against the emulator.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var istioLabels = []string{
	"reporter", "source_workload", "source_workload_namespace",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"destination_workload", "request_protocol", "response_code", "response_flags",
	"connection_security_policy",
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests handled by the proxy.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Request duration in milliseconds.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000},
		}, istioLabels),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe records one finished request.
func (m *metrics) observe(opts Options, st *exchangeState, status int, r *http.Request, d time.Duration) {
	host := st.dest.cluster.host
	name, namespace := "unknown", "unknown"
	if host == "" {
		host = "unknown"
	} else if n, rest, ok := strings.Cut(host, "."); ok {
		name = n
		namespace, _, _ = strings.Cut(rest, ".")
	}
	protocol := "http"
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		protocol = "grpc"
	}
	flags := st.flags
	if flags == "" {
		flags = "-"
	}
	labels := prometheus.Labels{
		"reporter":                      "source",
		"source_workload":               opts.SourceWorkload,
		"source_workload_namespace":     opts.SourceNamespace,
		"destination_service":           host,
		"destination_service_name":      name,
		"destination_service_namespace": namespace,
		"destination_workload":          name,
		"request_protocol":              protocol,
		"response_code":                 strconv.Itoa(status),
		"response_flags":                flags,
		"connection_security_policy":    "unknown",
	}
	m.requests.With(labels).Inc()
	m.duration.With(labels).Observe(float64(d.Milliseconds()))
}
