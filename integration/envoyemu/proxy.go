package envoyemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/podnet"
)

// Options configure a Proxy.
type Options struct {
	// Config reaches the API server the proxy reads routes and endpoints from.
	// Required.
	Config *rest.Config
	// Filter is the ext_proc configuration from the EnvoyFilter for this proxy's
	// context. Nil means no ext_proc filter.
	Filter *FilterConfig
	// ExtProcAddress is the gRPC target of the ext_proc cluster. Required when
	// Filter configures ext_proc.
	ExtProcAddress string
	// Gateway is "namespace/name" of the Gateway this proxy plays; empty makes it
	// a sidecar.
	Gateway string
	// GatewayPorts are a gateway's listener ports. Defaults to [80].
	GatewayPorts []uint32
	// SourceNamespace is a sidecar's namespace, against which short host names
	// resolve. Defaults to "default".
	SourceNamespace string
	// SourceWorkload names the caller in metrics. Defaults to "client".
	SourceWorkload string
	// ClusterDomain defaults to "cluster.local".
	ClusterDomain string
	// ListenPort is the port a sidecar's outbound listener stands for, used when
	// a request's authority carries none. Defaults to 80.
	ListenPort uint32
	// EndpointLag delays endpoint changes, standing for xDS propagation.
	EndpointLag Lag
	// Dial opens upstream connections. Defaults to podnet.DialContext, which maps
	// pod IPs to their loopback addresses and refuses anything else.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger defaults to a discarding logger.
	Logger logr.Logger
}

func (o *Options) defaults() {
	if len(o.GatewayPorts) == 0 {
		o.GatewayPorts = []uint32{80}
	}
	if o.SourceNamespace == "" {
		o.SourceNamespace = "default"
	}
	if o.SourceWorkload == "" {
		o.SourceWorkload = "client"
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.ListenPort == 0 {
		o.ListenPort = 80
	}
	if o.Dial == nil {
		o.Dial = podnet.DialContext
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
}

// Proxy is the emulated Envoy. It is an http.Handler; Serve runs it with HTTP/1.1
// and cleartext HTTP/2 as a sidecar listener accepts them.
type Proxy struct {
	opts      Options
	builder   tableBuilder
	cache     cache.Cache
	routes    atomic.Pointer[routeTable]
	endpoints *endpointTable
	extproc   extprocsvc.ExternalProcessorClient
	conn      *grpc.ClientConn
	upstream  *upstream
	metrics   *metrics
	registry  *prometheus.Registry

	// rebuildMu serialises route table rebuilds.
	rebuildMu sync.Mutex
}

// New creates a Proxy. Call Start before serving.
func New(opts Options) (*Proxy, error) {
	opts.defaults()
	if opts.Config == nil {
		return nil, errors.New("envoyemu: Options.Config is required")
	}
	if opts.Filter != nil && opts.Filter.ExtProc != nil && opts.ExtProcAddress == "" {
		return nil, errors.New("envoyemu: Options.ExtProcAddress is required with an ext_proc filter")
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := istionetworking.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := cache.New(opts.Config, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the informer cache: %w", err)
	}

	p := &Proxy{
		opts:      opts,
		builder:   tableBuilder{domain: opts.ClusterDomain, gateway: opts.Gateway, ports: opts.GatewayPorts},
		cache:     c,
		endpoints: newEndpointTable(opts.EndpointLag),
		upstream:  newUpstream(opts.Dial),
		registry:  prometheus.NewRegistry(),
	}
	p.metrics = newMetrics(p.registry)
	p.routes.Store(&routeTable{vhosts: map[vhostKey][]*route{}})

	if opts.ExtProcAddress != "" {
		conn, err := grpc.NewClient(opts.ExtProcAddress,
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("failed to create the ext_proc client: %w", err)
		}
		p.conn = conn
		p.extproc = extprocsvc.NewExternalProcessorClient(conn)
	}
	return p, nil
}

// Start runs the informers until ctx ends and waits for their first sync.
func (p *Proxy) Start(ctx context.Context) error {
	if err := p.watch(ctx, &istionetworking.VirtualService{}, p.rebuildRoutes); err != nil {
		return err
	}
	if err := p.watch(ctx, &corev1.Service{}, p.rebuildRoutes); err != nil {
		return err
	}
	if err := p.watch(ctx, &discoveryv1.EndpointSlice{}, p.sliceChanged); err != nil {
		return err
	}
	go func() {
		if err := p.cache.Start(ctx); err != nil {
			p.opts.Logger.Error(err, "informer cache stopped")
		}
	}()
	if !p.cache.WaitForCacheSync(ctx) {
		return errors.New("envoyemu: informer caches did not sync")
	}
	p.rebuildRoutes(ctx, nil)
	return nil
}

// Close releases the ext_proc connection and pending endpoint changes.
func (p *Proxy) Close() error {
	p.endpoints.stop()
	p.upstream.close()
	if p.conn != nil {
		return p.conn.Close()
	}
	return nil
}

// watch calls fn on every change of objects of obj's kind.
func (p *Proxy) watch(ctx context.Context, obj client.Object, fn func(context.Context, any)) error {
	inf, err := p.cache.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("failed to watch %T: %w", obj, err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { fn(ctx, o) },
		UpdateFunc: func(_, o any) { fn(ctx, o) },
		DeleteFunc: func(o any) { fn(ctx, o) },
	})
	return err
}

// rebuildRoutes recomputes the route table from the cache. Requests already in
// flight keep the table they started with.
func (p *Proxy) rebuildRoutes(ctx context.Context, _ any) {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()

	var vsList istionetworking.VirtualServiceList
	var svcList corev1.ServiceList
	if err := p.cache.List(ctx, &vsList); err != nil {
		p.opts.Logger.Error(err, "failed to list VirtualServices")
		return
	}
	if err := p.cache.List(ctx, &svcList); err != nil {
		p.opts.Logger.Error(err, "failed to list Services")
		return
	}
	vss := append([]*istionetworking.VirtualService(nil), vsList.Items...)
	svcs := make([]*corev1.Service, 0, len(svcList.Items))
	for i := range svcList.Items {
		svcs = append(svcs, &svcList.Items[i])
	}
	p.routes.Store(p.builder.build(vss, svcs))
}

// sliceChanged schedules the changed Service's endpoints for delivery.
func (p *Proxy) sliceChanged(ctx context.Context, obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := slice.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	var list discoveryv1.EndpointSliceList
	err := p.cache.List(ctx, &list, client.InNamespace(slice.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: name})
	if err != nil {
		p.opts.Logger.Error(err, "failed to list EndpointSlices", "service", name)
		return
	}
	copies := make([]discoveryv1.EndpointSlice, len(list.Items))
	for i := range list.Items {
		list.Items[i].DeepCopyInto(&copies[i])
	}
	p.endpoints.update(types.NamespacedName{Namespace: slice.Namespace, Name: name}, copies)
}

// MetricsHandler serves the proxy's Istio-style metrics.
func (p *Proxy) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

// Serve accepts HTTP/1.1 and cleartext HTTP/2 on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// RouteFor reports the route and cluster a GET for authority and path would take
// now, and how many endpoints the proxy has for that cluster. It lets tests and
// the sandbox wait until the proxy has caught up with the API server.
func (p *Proxy) RouteFor(ctx context.Context, authority, path string) (route, cluster string, endpoints int) {
	st := &exchangeState{view: requestView{
		method: http.MethodGet, path: path, authority: authority, scheme: "http", headers: http.Header{},
	}}
	if !p.route(p.routes.Load(), st) {
		return "", "", 0
	}
	svc, port, ok := p.servicePort(ctx, st.dest.cluster)
	if !ok {
		return st.route.name, st.dest.cluster.String(), 0
	}
	return st.route.name, st.dest.cluster.String(), len(p.endpoints.addresses(svc, port))
}
