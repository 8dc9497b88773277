package extproc

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Watcher feeds a Directory and a Readiness from the API server: every
// ElastiService, and every EndpointSlice that belongs to a Service, in the
// watched namespaces. Create it with NewWatcher, run it with Start.
type Watcher struct {
	cache cache.Cache
}

// NewWatcher builds the informers; nothing is watched until Start. An empty
// namespaces list watches all namespaces.
func NewWatcher(
	ctx context.Context,
	log logr.Logger,
	cfg *rest.Config,
	namespaces []string,
	dir *Directory,
	readiness *Readiness,
) (*Watcher, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("failed to register the ElastiService types: %w", err)
	}
	if err := discoveryv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("failed to register the EndpointSlice types: %w", err)
	}
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build the EndpointSlice selector: %w", err)
	}
	opts := cache.Options{
		Scheme:           scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&discoveryv1.EndpointSlice{}: {Label: labels.NewSelector().Add(*hasService)},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to create the informer cache: %w", err)
	}

	if err := addHandler(ctx, c, &v1alpha1.ElastiService{}, elastiServiceHandler(dir)); err != nil {
		return nil, err
	}
	if err := addHandler(ctx, c, &discoveryv1.EndpointSlice{}, sliceHandler(readiness)); err != nil {
		return nil, err
	}
	return &Watcher{cache: c}, nil
}

// Start runs the informers until ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	if err := w.cache.Start(ctx); err != nil {
		return fmt.Errorf("failed to run informers: %w", err)
	}
	return nil
}

// WaitForSync blocks until every informer has listed its objects, or ctx ends;
// it returns false in the second case.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	return w.cache.WaitForCacheSync(ctx)
}

// addHandler registers h on obj's informer.
func addHandler(
	ctx context.Context,
	c cache.Cache,
	obj client.Object,
	h toolscache.ResourceEventHandler,
) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("failed to get informer for %T: %w", obj, err)
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("failed to add handler for %T: %w", obj, err)
	}
	return nil
}

// unwrapDeleted returns the object of a delete event, which may come as a
// tombstone when the watch missed the deletion.
func unwrapDeleted(obj any) any {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// elastiServiceHandler keeps dir in step with ElastiServices. Objects are
// only read.
func elastiServiceHandler(dir *Directory) toolscache.ResourceEventHandler {
	upsert := func(obj any) {
		if es, ok := obj.(*v1alpha1.ElastiService); ok {
			dir.Upsert(es)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsert(obj) },
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if es, ok := unwrapDeleted(obj).(*v1alpha1.ElastiService); ok {
				dir.Delete(es.Namespace, es.Name)
			}
		},
	}
}

// sliceHandler keeps readiness in step with EndpointSlices.
func sliceHandler(readiness *Readiness) toolscache.ResourceEventHandler {
	set := func(obj any) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
		svc := ServiceKey{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
		if !svc.IsZero() {
			readiness.SetSlice(svc, s.Name, SliceReady(s))
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj) },
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			s, ok := unwrapDeleted(obj).(*discoveryv1.EndpointSlice)
			if !ok {
				return
			}
			svc := ServiceKey{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
			if !svc.IsZero() {
				readiness.DeleteSlice(svc, s.Name)
			}
		},
	}
}

// SliceReady reports whether s has an endpoint that may receive traffic: ready
// (an unset ready condition counts as ready, as the EndpointSlice API says) and
// not terminating.
func SliceReady(s *discoveryv1.EndpointSlice) bool {
	for _, ep := range s.Endpoints {
		c := ep.Conditions
		ready := c.Ready == nil || *c.Ready
		terminating := c.Terminating != nil && *c.Terminating
		if ready && !terminating {
			return true
		}
	}
	return false
}
