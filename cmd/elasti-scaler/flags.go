package main

import (
	"flag"
	"strconv"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/internal/flagvalue"
	"github.com/elasti-mesh/elasti/istio"
	"github.com/elasti-mesh/elasti/scaler"
)

// addFlags binds every option to a flag whose default is the option's default.
func addFlags(fs *flag.FlagSet, o *scaler.Options, mo *scaler.ManagerOptions, r *istio.RouteSwitchOptions) {
	fs.DurationVar(&o.PollingInterval, "polling-interval", scaler.DefaultPollingInterval,
		"how often every ElastiService's triggers are evaluated")
	fs.DurationVar(&o.PropagationDelay, "propagation-delay", scaler.DefaultPropagationDelay,
		"wait after switching routes to hold before scaling to zero, so every proxy has the hold route; "+
			"set it above the mesh's usual configuration push time")
	fs.StringVar(&o.PrometheusAddress, "prometheus-address", "",
		"Prometheus base URL for triggers that name no serverAddress")
	fs.StringVar(&o.UptimeFilter, "prometheus-uptime-filter", v1alpha1.DefaultUptimeFilter,
		"label selector of the up series that must read 1 before an idle value is trusted, "+
			"for triggers that name no uptimeFilter")
	fs.DurationVar(&o.QueryTimeout, "query-timeout", scaler.DefaultQueryTimeout,
		"timeout of each Prometheus query")
	fs.IntVar(&o.MaxConcurrentQueries, "max-concurrent-queries", scaler.DefaultMaxConcurrentQueries,
		"Prometheus queries in flight at once, across all services")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", scaler.DefaultMaxConcurrentReconcile,
		"ElastiServices reconciled at once")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", scaler.DefaultResyncPeriod,
		"how often an ElastiService is reconciled when nothing changes")

	fs.StringVar(&mo.ActivationAddress, "activation-address", scaler.DefaultActivationAddress,
		"listen address of the activation gRPC API")
	fs.StringVar(&mo.MetricsAddress, "metrics-address", scaler.DefaultMetricsAddress,
		"listen address of /metrics (0 disables)")
	fs.StringVar(&mo.ProbeAddress, "health-probe-address", scaler.DefaultProbeAddress,
		"listen address of /healthz and /readyz (0 disables)")
	fs.StringVar(&mo.PprofAddress, "pprof-address", "",
		"listen address of /debug/pprof/, with block and mutex profiling on (default: off)")
	fs.BoolFunc("leader-elect", "elect a leader among replicas through a Lease (default true; "+
		"--leader-elect=false runs one replica without a Lease)", func(v string) error {
		on, err := strconv.ParseBool(v)
		mo.DisableLeaderElection = !on
		return err
	})
	fs.Func("kube-api-qps", "API requests per second for reconciles (default 50)", func(v string) error {
		q, err := strconv.ParseFloat(v, 32)
		mo.KubeAPIQPS = float32(q)
		return err
	})
	fs.IntVar(&mo.KubeAPIBurst, "kube-api-burst", scaler.DefaultKubeAPIBurst, "API request burst for reconciles")
	fs.Func("activation-kube-api-qps", "API requests per second for activations, on top of the reconciles' "+
		"(default 200)", func(v string) error {
		q, err := strconv.ParseFloat(v, 32)
		o.ActivationQPS = float32(q)
		return err
	})
	fs.IntVar(&o.ActivationBurst, "activation-kube-api-burst", scaler.DefaultActivationBurst,
		"API request burst for activations")
	fs.StringVar(&mo.LeaseNamespace, "leader-election-namespace", scaler.DefaultLeaseNamespace,
		"namespace of the leader election Lease (the install namespace)")
	fs.StringVar(&mo.LeaseName, "leader-election-id", scaler.DefaultLeaseName,
		"name of the leader election Lease")

	fs.StringVar(&r.ClusterDomain, "cluster-domain", istio.DefaultClusterDomain, "the cluster's DNS domain")
	flagvalue.Namespaces(fs, "route-namespaces", "comma-separated namespaces whose VirtualServices the "+
		"scaler may rewrite (default: all)", &r.Namespaces)
}
