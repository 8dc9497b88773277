package scaler

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Defaults of ManagerOptions.
const (
	DefaultActivationAddress  = ":9003"
	DefaultMetricsAddress     = ":8080"
	DefaultProbeAddress       = ":8081"
	DefaultLeaseNamespace     = "elasti-system"
	DefaultLeaseName          = "elasti-scaler"
	DefaultLeaseDuration      = 15 * time.Second
	DefaultLeaseRenewDeadline = 10 * time.Second
	DefaultLeaseRetryPeriod   = 2 * time.Second
	DefaultKubeAPIQPS         = 50
	DefaultKubeAPIBurst       = 100
)

// ManagerOptions configure the process around the scaler: listeners and leader
// election. The zero value works; "0" as an address disables that listener
// (except the activation API, which is always served).
type ManagerOptions struct {
	// ActivationAddress is where the activation gRPC API listens. Defaults to :9003.
	ActivationAddress string
	// MetricsAddress serves /metrics. Defaults to :8080.
	MetricsAddress string
	// ProbeAddress serves /healthz and /readyz. Defaults to :8081.
	ProbeAddress string
	// PprofAddress serves net/http/pprof under /debug/pprof/. Defaults to none.
	PprofAddress string

	// DisableLeaderElection runs without a Lease, for a single replica. Defaults
	// to false: replicas elect a leader.
	DisableLeaderElection bool
	// LeaseNamespace and LeaseName name the leader election Lease. Default to
	// elasti-system and elasti-scaler.
	LeaseNamespace, LeaseName string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election. Default
	// to 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// KubeAPIQPS and KubeAPIBurst bound the reconciler's API request rate. Default
	// to 50 and 100. Activations have a budget of their own on top.
	KubeAPIQPS   float32
	KubeAPIBurst int

	// Logger is the manager's logger. Defaults to controller-runtime's global one.
	Logger logr.Logger
}

// NewManager builds a controller-runtime manager running the scaler: reconciler,
// trigger loop, activation API, metrics, probes and leader election. newRouter
// builds the route switch from the manager, before it starts, so it may read
// through the manager's cache and register indexes there. The cache keeps no
// managedFields. The manager runs until the context given to its Start ends.
func NewManager(
	cfg *rest.Config,
	mo ManagerOptions,
	opts Options,
	newRouter func(manager.Manager) (Router, error),
) (manager.Manager, *Scaler, error) {
	if err := mo.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid manager options: %w", err)
	}
	mo = mo.withDefaults()
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, nil, fmt.Errorf("failed to build scheme: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = mo.KubeAPIQPS, mo.KubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// Nothing reads managedFields, and at a thousand services they are a
		// large share of the cached bytes.
		Cache:                         cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Logger:                        mo.Logger,
		Metrics:                       metricsserver.Options{BindAddress: mo.MetricsAddress},
		HealthProbeBindAddress:        mo.ProbeAddress,
		PprofBindAddress:              mo.PprofAddress,
		LeaderElection:                !mo.DisableLeaderElection,
		LeaderElectionNamespace:       mo.LeaseNamespace,
		LeaderElectionID:              mo.LeaseName,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &mo.LeaseDuration,
		RenewDeadline:                 &mo.RenewDeadline,
		RetryPeriod:                   &mo.RetryPeriod,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create manager: %w", err)
	}
	router, err := newRouter(mgr)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the route switch: %w", err)
	}
	opts.Router = router
	s, err := Setup(mgr, opts)
	if err != nil {
		return nil, nil, err
	}

	lis, err := net.Listen("tcp", mo.ActivationAddress)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to listen for the activation API on %q: %w", mo.ActivationAddress, err)
	}
	if err := s.AddActivationServer(mgr, lis); err != nil {
		lis.Close()
		return nil, nil, err
	}
	if err := errors.Join(mgr.AddHealthzCheck("ping", healthz.Ping),
		mgr.AddReadyzCheck("cache", s.cacheSynced(mgr))); err != nil {
		lis.Close()
		return nil, nil, fmt.Errorf("failed to add probes: %w", err)
	}
	s.activationAddr = lis.Addr()
	return mgr, s, nil
}

// ActivationAddr returns the address the activation API listens on, or nil for a
// Scaler not built by NewManager.
func (s *Scaler) ActivationAddr() net.Addr { return s.activationAddr }

func (mo ManagerOptions) withDefaults() ManagerOptions {
	mo.ActivationAddress = cmpOr(mo.ActivationAddress, DefaultActivationAddress)
	mo.MetricsAddress = cmpOr(mo.MetricsAddress, DefaultMetricsAddress)
	mo.ProbeAddress = cmpOr(mo.ProbeAddress, DefaultProbeAddress)
	mo.LeaseNamespace = cmpOr(mo.LeaseNamespace, DefaultLeaseNamespace)
	mo.LeaseName = cmpOr(mo.LeaseName, DefaultLeaseName)
	setDuration(&mo.LeaseDuration, DefaultLeaseDuration)
	setDuration(&mo.RenewDeadline, DefaultLeaseRenewDeadline)
	setDuration(&mo.RetryPeriod, DefaultLeaseRetryPeriod)
	if mo.KubeAPIQPS == 0 {
		mo.KubeAPIQPS = DefaultKubeAPIQPS
	}
	if mo.KubeAPIBurst == 0 {
		mo.KubeAPIBurst = DefaultKubeAPIBurst
	}
	if mo.Logger.GetSink() == nil {
		mo.Logger = ctrl.Log
	}
	return mo
}

// Validate reports manager options that cannot work.
func (mo *ManagerOptions) Validate() error {
	d := mo.withDefaults()
	if d.KubeAPIQPS < 0 || d.KubeAPIBurst < 0 {
		return fmt.Errorf("API rate limits must not be negative, got qps %v burst %d", d.KubeAPIQPS, d.KubeAPIBurst)
	}
	if d.RenewDeadline >= d.LeaseDuration {
		return fmt.Errorf("leader election renew deadline %s must be shorter than the lease duration %s",
			d.RenewDeadline, d.LeaseDuration)
	}
	if d.RetryPeriod >= d.RenewDeadline {
		return fmt.Errorf("leader election retry period %s must be shorter than the renew deadline %s",
			d.RetryPeriod, d.RenewDeadline)
	}
	return nil
}
