package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// FieldManager is the field manager and event reporter of every write the scaler
// makes.
const FieldManager = "elasti-scaler"

// writers reach the API server directly, for the scaler's reads of /scale and
// ScaledObjects and its writes.
type writers struct {
	client  client.Client
	targets *targets
	keda    *keda
}

func newWriters(c client.Client) *writers {
	return &writers{client: c, targets: &targets{client: c}, keda: &keda{client: c}}
}

// serviceIndex indexes ElastiServices by spec.service.
const serviceIndex = "spec.service"

// eventRecorder is the part of the events API the scaler uses.
type eventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

var _ eventRecorder = events.EventRecorder(nil)

// Scaler is the elasti-scaler controller, registered with a manager by Setup. Its
// methods are safe for concurrent use.
type Scaler struct {
	opts     Options
	client   client.Client
	reader   client.Reader
	router   Router
	recorder eventRecorder
	log      logr.Logger

	// api is the path of the reconciler's writes; activationAPI has a rate
	// limit of its own, so an activation never queues behind a thousand
	// reconciles.
	api           *writers
	activationAPI *writers
	verdicts      *verdicts
	states        *states
	metrics       *metrics
	poll          *pollLoop
	elected       <-chan struct{}
	wake          chan event.GenericEvent

	activationAddr net.Addr
}

// Setup builds a Scaler and registers its reconciler and trigger loop with mgr.
// The activation server is not started: serve it with NewActivationServer.
func Setup(mgr manager.Manager, opts Options) (*Scaler, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scaler options: %w", err)
	}
	if opts.Router == nil {
		return nil, errors.New("invalid scaler options: a Router is required")
	}
	opts = opts.withDefaults()
	m, err := newMetrics(ctrlmetrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("failed to register metrics: %w", err)
	}
	s := &Scaler{
		opts:     opts,
		client:   mgr.GetClient(),
		reader:   mgr.GetCache(),
		router:   opts.Router,
		recorder: mgr.GetEventRecorder(FieldManager),
		log:      mgr.GetLogger().WithName("scaler"),
		api:      newWriters(mgr.GetClient()),
		verdicts: newVerdicts(),
		states:   newStates(),
		metrics:  m,
		elected:  mgr.Elected(),
	}

	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.QPS, cfg.Burst = opts.ActivationQPS, opts.ActivationBurst
	ac, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("failed to create the activation client: %w", err)
	}
	s.activationAPI = newWriters(ac)

	err = mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ElastiService{}, serviceIndex,
		func(o client.Object) []string { return []string{o.(*v1alpha1.ElastiService).Spec.Service} })
	if err != nil {
		return nil, fmt.Errorf("failed to index ElastiServices by service: %w", err)
	}

	wake := make(chan event.GenericEvent, 1024)
	s.wake = wake
	s.poll = &pollLoop{
		interval: opts.PollingInterval,
		reader:   mgr.GetCache(),
		eval: &evaluator{
			prom:          newPrometheus(&http.Client{Timeout: opts.QueryTimeout}, opts.MaxConcurrentQueries),
			defaultServer: opts.PrometheusAddress,
			defaultFilter: opts.UptimeFilter,
		},
		store:   s.verdicts,
		metrics: m,
		notify:  wake,
		log:     s.log.WithName("triggers"),
	}
	if err := mgr.Add(s.poll); err != nil {
		return nil, fmt.Errorf("failed to add the trigger loop: %w", err)
	}

	if err := s.addController(mgr, wake); err != nil {
		return nil, err
	}
	return s, nil
}

// addController registers the ElastiService reconciler, woken by ElastiService
// changes, EndpointSlices and Services of the named Service, trigger verdicts and,
// when the Router is a RouteSource, changes to the objects holding its routes.
func (s *Scaler) addController(mgr manager.Manager, wake <-chan event.GenericEvent) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("elastiservice").
		For(&v1alpha1.ElastiService{}, builderPredicates()).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(s.servicesOfSlice)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(s.servicesOfService)).
		WatchesRawSource(source.Channel(wake, &handler.EnqueueRequestForObject{}))
	if rs, ok := s.router.(RouteSource); ok {
		b = b.Watches(rs.RouteObject(), handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				var reqs []reconcile.Request
				for _, svc := range rs.ServicesOf(o) {
					reqs = append(reqs, s.elastiServicesFor(ctx, svc.Namespace, svc.Name)...)
				}
				return reqs
			}))
	}
	err := b.
		// Name validation is process-wide; two scalers in one process (a failover
		// test) would otherwise clash, and one scaler has one controller anyway.
		WithOptions(controller.Options{
			MaxConcurrentReconciles: s.opts.MaxConcurrentReconciles,
			SkipNameValidation:      ptr.To(true),
		}).
		Complete(s)
	if err != nil {
		return fmt.Errorf("failed to build the ElastiService controller: %w", err)
	}
	return nil
}

// EvaluationRounds returns the duration and size of the latest trigger evaluation
// rounds, oldest first, for benchmarks and diagnostics.
func (s *Scaler) EvaluationRounds() []RoundStats {
	return s.poll.lastRounds()
}

// RoundsDone returns the number of trigger evaluation rounds finished so far.
func (s *Scaler) RoundsDone() uint64 { return s.poll.done.Load() }

// RoundStats describes one trigger evaluation round.
type RoundStats struct {
	// Services is the number of ElastiServices listed.
	Services int
	// Duration is the time the round took.
	Duration time.Duration
}
