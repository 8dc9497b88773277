package extproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"k8s.io/client-go/rest"

	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// scalerServiceConfig spreads activation calls over every scaler replica the
// headless Service resolves to; non-leaders answer UNAVAILABLE and the retry
// lands on another one.
const scalerServiceConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// Run runs elasti-extproc until ctx ends, then drains: it watches the API
// server, serves ext_proc and gRPC health on opts.Addr, and metrics and probes
// on opts.MetricsAddr. It returns an error when something fails to start or
// a server fails while running.
func Run(ctx context.Context, log logr.Logger, cfg *rest.Config, opts Options) error {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := NewMetrics(reg)
	dir := NewDirectory(log)
	readiness := NewReadiness(opts.PropagationDelay)
	defer readiness.Close()

	// The informers outlive ctx: a drain still needs readiness to release
	// the requests it holds.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopWatch()
	watcher, err := NewWatcher(watchCtx, log, cfg, opts.Namespaces, dir, readiness)
	if err != nil {
		return err
	}
	wg.Go(func() {
		if err := watcher.Start(watchCtx); err != nil {
			log.Error(err, "Informers stopped")
		}
	})
	if !watcher.WaitForSync(ctx) {
		return errors.New("failed to sync informers before shutdown")
	}

	conn, err := grpc.NewClient(opts.ScalerAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(scalerServiceConfig))
	if err != nil {
		return fmt.Errorf("failed to create scaler client for %q: %w", opts.ScalerAddress, err)
	}
	defer func() { _ = conn.Close() }()
	server := NewServer(log, opts, dir, readiness, activationv1.NewActivationServiceClient(conn),
		metrics)
	defer server.Close()

	return serve(ctx, log, opts, server, reg)
}

// serve runs the gRPC and HTTP servers until ctx ends and the drain is over.
func serve(
	ctx context.Context,
	log logr.Logger,
	opts Options,
	server *Server,
	reg *prometheus.Registry,
) error {
	grpcOpts, err := grpcServerOptions(opts)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", opts.Addr, err)
	}
	httpLis, err := net.Listen("tcp", opts.MetricsAddr)
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("failed to listen on %q: %w", opts.MetricsAddr, err)
	}

	serving := Start(ctx, server, lis, opts.DrainTimeout, grpcOpts...)
	httpSrv := &http.Server{Handler: httpHandler(reg, serving), ReadHeaderTimeout: 10 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(httpLis) }()
	log.Info("Serving ext_proc", "address", lis.Addr().String(),
		"metricsAddress", httpLis.Addr().String(), "tls", opts.TLSCertFile != "")

	grpcErr := serving.Wait()
	log.Info("ext_proc server stopped")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(shutdownCtx)
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(grpcErr, fmt.Errorf("failed to serve metrics: %w", err))
	}
	return grpcErr
}

// grpcServerOptions sets TLS when configured, and lets Envoy keep idle
// connections alive with pings.
func grpcServerOptions(opts Options) ([]grpc.ServerOption, error) {
	out := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if opts.TLSCertFile != "" {
		creds, err := credentials.NewServerTLSFromFile(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("failed to load TLS certificate %q: %w", opts.TLSCertFile, err)
		}
		out = append(out, grpc.Creds(creds))
	}
	return out, nil
}

// httpHandler serves /metrics, /healthz (alive) and /readyz (not draining).
func httpHandler(reg *prometheus.Registry, serving *Serving) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if serving.Draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
