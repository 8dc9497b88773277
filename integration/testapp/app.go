package testapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/elasti-mesh/elasti/integration/testapp/echopb"
)

// ExitFunc ends the program with a code; /exit/N calls it. Tests of the app replace it.
type ExitFunc func(code int)

// App is one running instance. It is safe for concurrent use.
type App struct {
	cfg      Config
	log      logr.Logger
	exit     ExitFunc
	ready    atomic.Bool
	requests *prometheus.CounterVec
	registry *prometheus.Registry
	grpc     *grpc.Server
}

// Run waits StartupDelay, listens on cfg.Address(), marks itself ready after
// ReadyDelay, and serves until ctx ends. It then keeps serving for ShutdownDelay and
// closes. A nil exit means os.Exit.
func Run(ctx context.Context, cfg Config, log logr.Logger, exit ExitFunc) error {
	if exit == nil {
		exit = os.Exit
	}
	a := newApp(cfg, log, exit)

	if err := sleep(ctx, cfg.StartupDelay); err != nil {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Address())
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", cfg.Address(), err)
	}
	log.Info("listening", "address", ln.Addr().String())

	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	go func() {
		if sleep(ctx, cfg.ReadyDelay) == nil {
			a.ready.Store(true)
			log.Info("ready")
		}
	}()

	select {
	case err := <-served:
		return fmt.Errorf("failed to serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "delay", cfg.ShutdownDelay.String())
	a.ready.Store(false)
	time.Sleep(cfg.ShutdownDelay)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.grpc.Stop()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("failed to shut down: %w", err)
	}
	return nil
}

func newApp(cfg Config, log logr.Logger, exit ExitFunc) *App {
	a := &App{cfg: cfg, log: log, exit: exit, registry: prometheus.NewRegistry()}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "testapp_requests_total",
		Help: "Requests served, by route.",
	}, []string{"route"})
	a.registry.MustRegister(a.requests)
	a.grpc = grpc.NewServer(grpc.ForceServerCodec(echopb.Codec{}))
	echopb.RegisterEchoServer(a.grpc, echoServer{name: cfg.Name})
	return a
}

// sleep waits d or until ctx ends, whichever is first; it returns ctx's error if ctx
// ended first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
