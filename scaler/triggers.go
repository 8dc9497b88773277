package scaler

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// verdict is what one evaluation of a service's triggers found.
type verdict struct {
	// At is when the evaluation began: traffic after it may be missing from it.
	At time.Time
	// Values holds each trigger's value; NaN where it could not be read.
	Values []float64
	// Active is true when some trigger read at or above its threshold: the
	// service is in use.
	Active bool
	// Idle is true when every trigger read below its threshold and Prometheus
	// vouched for its own health: the service may go to zero.
	Idle bool
	// Err says why the triggers could not all be evaluated; nil when they were.
	Err error
	// ErrKind is errorKind(Err), or empty.
	ErrKind string
}

// evaluator runs services' triggers against Prometheus.
type evaluator struct {
	prom          *prometheus
	defaultServer string
	defaultFilter string
}

// uptimeChecks remembers, for one evaluation round, whether each Prometheus
// server's up series read 1, so a thousand services on one server cost one check.
// It is safe for concurrent use.
type uptimeChecks struct {
	// mu guards results.
	mu      sync.Mutex
	results map[string]*uptimeResult
}

type uptimeResult struct {
	once sync.Once
	err  error
}

func newUptimeChecks() *uptimeChecks {
	return &uptimeChecks{results: map[string]*uptimeResult{}}
}

// evaluate reads every trigger of es and judges them together.
func (e *evaluator) evaluate(
	ctx context.Context,
	es *v1alpha1.ElastiService,
	uptime *uptimeChecks,
) verdict {
	// The verdict is as old as its first query: traffic after that may be missing.
	v := verdict{Values: make([]float64, len(es.Spec.Triggers)), At: time.Now()}
	allBelow := len(es.Spec.Triggers) > 0
	for i, tr := range es.Spec.Triggers {
		value, below, err := e.evaluateOne(ctx, tr, uptime)
		v.Values[i] = value
		switch {
		case err != nil:
			allBelow = false
			if v.Err == nil {
				v.Err = fmt.Errorf("trigger %d: %w", i, err)
				v.ErrKind = errorKind(err)
			}
		case !below:
			allBelow = false
			v.Active = true
		}
	}
	v.Idle = allBelow && v.Err == nil
	return v
}

// evaluateOne returns a trigger's value and whether it is below the threshold
// with Prometheus healthy.
func (e *evaluator) evaluateOne(
	ctx context.Context,
	tr v1alpha1.ScaleTrigger,
	uptime *uptimeChecks,
) (float64, bool, error) {
	nan := math.NaN()
	if tr.Type != v1alpha1.TriggerPrometheus {
		return nan, false, &queryError{kind: queryErrConfig,
			msg: fmt.Sprintf("trigger type %q is not supported: use prometheus", tr.Type)}
	}
	md := tr.Metadata
	threshold, err := strconv.ParseFloat(strings.TrimSpace(md.Threshold), 64)
	if err != nil {
		return nan, false, &queryError{kind: queryErrConfig, err: err,
			msg: fmt.Sprintf("threshold %q is not a number", md.Threshold)}
	}
	server := cmpOr(md.ServerAddress, e.defaultServer)
	if server == "" {
		return nan, false, &queryError{kind: queryErrConfig,
			msg: "the trigger names no serverAddress and the scaler has no default Prometheus address"}
	}

	values, err := e.prom.query(ctx, server, md.Query, md.Headers)
	if err != nil {
		return nan, false, err
	}
	value, err := single(values)
	if err != nil {
		return nan, false, err
	}
	if value >= threshold {
		return value, false, nil
	}

	// A low value is only trusted when Prometheus itself is healthy: a restarted
	// or partly scraping Prometheus reads rates of zero.
	filter := cmpOr(md.UptimeFilter, e.defaultFilter)
	if err := uptime.check(ctx, e.prom, server, filter, md.Headers); err != nil {
		return value, false, err
	}
	return value, true, nil
}

// check returns nil when min(up{filter}) on server reads 1, running the query at
// most once per server, filter and headers.
func (u *uptimeChecks) check(
	ctx context.Context,
	prom *prometheus,
	server, filter string,
	headers map[string]string,
) error {
	key := server + "\x00" + filter
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		key += "\x00" + k + "=" + headers[k]
	}
	u.mu.Lock()
	r, ok := u.results[key]
	if !ok {
		r = &uptimeResult{}
		u.results[key] = r
	}
	u.mu.Unlock()

	r.once.Do(func() { r.err = queryUptime(ctx, prom, server, filter, headers) })
	return r.err
}

func queryUptime(
	ctx context.Context,
	prom *prometheus,
	server, filter string,
	headers map[string]string,
) error {
	values, err := prom.query(ctx, server, "min(up{"+filter+"})", headers)
	if err != nil {
		return &queryError{kind: queryErrUptime, err: err,
			msg: fmt.Sprintf("failed to check Prometheus health with up{%s}: %v", filter, err)}
	}
	if len(values) == 0 {
		return &queryError{kind: queryErrUptime, msg: fmt.Sprintf(
			"no up series matches {%s}, so an idle value cannot be trusted: set uptimeFilter to "+
				"a selector of the Prometheus scrape targets that feed the query", filter)}
	}
	if values[0] != 1 {
		return &queryError{kind: queryErrUptime, msg: fmt.Sprintf(
			"up{%s} reads %v: a scrape target is down, so an idle value cannot be trusted", filter, values[0])}
	}
	return nil
}
