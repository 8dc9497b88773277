// Command elasti-extproc is the Envoy ext_proc server that holds requests for a
// service whose workload is at zero until it is ready again.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/elasti-mesh/elasti/extproc"
	"github.com/elasti-mesh/elasti/internal/flagvalue"
	"github.com/elasti-mesh/elasti/internal/logging"
)

// userAgent is how elasti-extproc names itself to the API server.
const userAgent = "elasti-extproc"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "elasti-extproc:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts extproc.Options
	var logFlags logging.Flags
	fs := flag.NewFlagSet("elasti-extproc", flag.ContinueOnError)
	addFlags(fs, &opts)
	logFlags.Bind(fs)
	config.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}

	log, err := logFlags.Logger()
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)

	// Bad flags fail here, before anything starts, with what to fix.
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("invalid flags: %w", err)
	}
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load kubeconfig: %w", err)
	}
	cfg.UserAgent = userAgent

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("Starting elasti-extproc", "scalerAddress", opts.ScalerAddress,
		"namespaces", opts.Namespaces, "propagationDelay", opts.PropagationDelay.String())
	return extproc.Run(ctx, log, cfg, opts)
}

// addFlags binds every option to a flag whose default is the option's default.
func addFlags(fs *flag.FlagSet, o *extproc.Options) {
	fs.StringVar(&o.Addr, "address", extproc.DefaultAddr,
		"listen address of the ext_proc gRPC server and its gRPC health service")
	fs.StringVar(&o.MetricsAddr, "metrics-address", extproc.DefaultMetricsAddr,
		"listen address of /metrics, /healthz and /readyz")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "",
		"PEM certificate for the gRPC server; with --tls-key-file enables TLS")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&o.ScalerAddress, "scaler-address", extproc.DefaultScalerAddress,
		"gRPC target of elasti-scaler's activation API (round_robin over what it resolves to)")
	flagvalue.Namespaces(fs, "namespaces", "comma-separated namespaces to watch (default: all)", &o.Namespaces)
	fs.DurationVar(&o.PropagationDelay, "propagation-delay", extproc.DefaultPropagationDelay,
		"how long a service must have ready endpoints before held requests are released, "+
			"so that every proxy has the endpoints; set it above the mesh's endpoint push time")
	fs.DurationVar(&o.MaxMessageTimeout, "max-message-timeout", extproc.DefaultMaxMessageTimeout,
		"the ext_proc filter's max_message_timeout; holds are capped to fit under it")
	fs.DurationVar(&o.TimeoutMargin, "timeout-margin", extproc.DefaultTimeoutMargin,
		"how much longer than a hold Envoy is asked to wait, so that our 504 comes first")
	fs.DurationVar(&o.ShedRetryAfter, "shed-retry-after", extproc.DefaultShedRetryAfter,
		"Retry-After of the 503 sent over a service's held-request cap or at shutdown")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", extproc.DefaultDrainTimeout,
		"on SIGTERM, how long held requests keep being served before they are answered 503; "+
			"keep it below the pod's termination grace period")
}
