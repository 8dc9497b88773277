package scaler

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// pollLoop evaluates every service's triggers once per interval on the leader, and
// wakes the reconciler for services whose verdict changed.
type pollLoop struct {
	interval time.Duration
	reader   client.Reader
	eval     *evaluator
	store    *verdicts
	metrics  *metrics
	notify   chan<- event.GenericEvent
	log      logr.Logger

	// done counts finished rounds.
	done atomic.Uint64

	// roundsMu guards rounds.
	roundsMu sync.Mutex
	rounds   []RoundStats
}

// NeedLeaderElection makes the loop run on the leader only.
func (p *pollLoop) NeedLeaderElection() bool { return true }

// Start runs rounds until ctx ends. A round that takes longer than the interval
// delays the next one rather than overlapping it.
func (p *pollLoop) Start(ctx context.Context) error {
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// round evaluates every service once, each service in its own goroutine; the
// Prometheus client's semaphore bounds the queries in flight.
func (p *pollLoop) round(ctx context.Context) {
	began := time.Now()
	var list v1alpha1.ElastiServiceList
	if err := p.reader.List(ctx, &list); err != nil {
		if ctx.Err() == nil {
			p.log.Error(err, "failed to list ElastiServices for trigger evaluation")
		}
		return
	}

	// A round may use the whole interval but no more, so rounds never pile up.
	roundCtx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	uptime := newUptimeChecks()
	var wg sync.WaitGroup
	for i := range list.Items {
		es := &list.Items[i]
		if es.DeletionTimestamp != nil || len(es.Spec.Triggers) == 0 {
			continue
		}
		wg.Go(func() { p.evaluate(roundCtx, ctx, es, uptime) })
	}
	wg.Wait()

	elapsed := time.Since(began)
	p.metrics.roundDuration.Observe(elapsed.Seconds())
	p.roundsMu.Lock()
	p.rounds = append(p.rounds, RoundStats{Services: len(list.Items), Duration: elapsed})
	if len(p.rounds) > 64 {
		p.rounds = p.rounds[1:]
	}
	p.roundsMu.Unlock()
	p.done.Add(1)
}

func (p *pollLoop) evaluate(
	roundCtx, ctx context.Context,
	es *v1alpha1.ElastiService,
	uptime *uptimeChecks,
) {
	v := p.eval.evaluate(roundCtx, es, uptime)
	if ctx.Err() != nil {
		return
	}
	key := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	p.metrics.observeVerdict(es, v)
	if !p.store.set(key, v) {
		return
	}
	p.log.V(1).Info("trigger verdict changed", "elastiService", key.String(),
		"active", v.Active, "idle", v.Idle, "error", errString(v.Err))
	select {
	case p.notify <- event.GenericEvent{Object: es}:
	case <-ctx.Done():
	}
}

// lastRounds returns the statistics of the latest rounds, oldest first.
func (p *pollLoop) lastRounds() []RoundStats {
	p.roundsMu.Lock()
	defer p.roundsMu.Unlock()
	return append([]RoundStats(nil), p.rounds...)
}
