// Command elasti-scaler is the elasti controller: it scales ElastiService workloads
// between zero and their minimum, switches their routes between hold and serve,
// and serves the activation API that elasti-extproc calls.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/elasti-mesh/elasti/internal/logging"
	"github.com/elasti-mesh/elasti/istio"
	"github.com/elasti-mesh/elasti/scaler"
)

// The route switch's VirtualServices are watched, so that a change that undoes a
// hold is put right at once.
var _ scaler.RouteSource = (*istio.RouteSwitch)(nil)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "elasti-scaler:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts scaler.Options
	var mo scaler.ManagerOptions
	var routes istio.RouteSwitchOptions
	var logFlags logging.Flags
	fs := flag.NewFlagSet("elasti-scaler", flag.ContinueOnError)
	addFlags(fs, &opts, &mo, &routes)
	logFlags.Bind(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}

	log, err := logFlags.Logger()
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)
	mo.Logger = log

	// Bad flags fail here, before anything starts, with what to fix.
	routes.FieldManager = scaler.FieldManager
	if err := routes.Validate(); err != nil {
		return fmt.Errorf("invalid route options: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return err
	}

	if mo.PprofAddress != "" {
		// Sample about one blocking event per 100 µs blocked, and one in ten
		// contended mutexes: enough to find contention, cheap enough to leave on.
		runtime.SetBlockProfileRate(100_000)
		runtime.SetMutexProfileFraction(10)
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load kubeconfig: %w", err)
	}
	cfg.UserAgent = scaler.FieldManager
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	mgr, _, err := scaler.NewManager(cfg, mo, opts, func(m manager.Manager) (scaler.Router, error) {
		return istio.NewCachedRouteSwitch(ctx, m.GetClient(), m.GetCache(), routes)
	})
	if err != nil {
		return err
	}

	log.Info("starting elasti-scaler", "activationAddress", mo.ActivationAddress,
		"pollingInterval", opts.PollingInterval.String())
	return mgr.Start(ctx)
}
