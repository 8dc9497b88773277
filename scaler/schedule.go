package scaler

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Defaults of EnabledPeriod, the same the CRD applies at admission.
const (
	defaultSchedule       = "0 0 * * *"
	defaultWindowDuration = 24 * time.Hour
)

// zeroAllowed reports whether scale-to-zero is allowed at now by the service's
// enabledPeriod: always without one, inside a window with one.
//
// A schedule or duration that cannot be parsed returns an error, and the caller
// treats it as outside every window: the workload is kept up. The API's
// validation lets through only schedules of five well-formed fields, so this
// takes a value such as minute 99; keeping the service up when its owner's
// intent cannot be read is the choice that never loses a request.
func zeroAllowed(p *v1alpha1.EnabledPeriod, now time.Time) (bool, error) {
	if p == nil {
		return true, nil
	}
	spec := strings.TrimSpace(p.Schedule)
	if spec == "" {
		spec = defaultSchedule
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return false, fmt.Errorf("failed to parse enabledPeriod schedule %q: %w", spec, err)
	}
	d := defaultWindowDuration
	if p.Duration != "" {
		if d, err = time.ParseDuration(p.Duration); err != nil || d <= 0 {
			return false, fmt.Errorf("failed to parse enabledPeriod duration %q: want a positive duration",
				p.Duration)
		}
	}

	// A window is open at now when one started in (now-d, now]: the first start
	// after now-d must not be later than now.
	now = now.UTC()
	start := sched.Next(now.Add(-d))
	return !start.After(now), nil
}

// nextWindowChange returns when zeroAllowed may next change its answer, so the
// reconciler can come back then; zero when there is no window.
func nextWindowChange(p *v1alpha1.EnabledPeriod, now time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	sched, err := cron.ParseStandard(cmpOr(strings.TrimSpace(p.Schedule), defaultSchedule))
	if err != nil {
		return time.Time{}
	}
	d, err := time.ParseDuration(cmpOr(p.Duration, defaultWindowDuration.String()))
	if err != nil || d <= 0 {
		return time.Time{}
	}
	now = now.UTC()
	next := sched.Next(now)
	if start := sched.Next(now.Add(-d)); !start.After(now) && start.Add(d).Before(next) {
		next = start.Add(d)
	}
	return next
}
