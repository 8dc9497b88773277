package extproc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elasti-mesh/elasti/extproc/envoytest"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// fakeScaler is a hand-written stand-in for elasti-scaler's activation API,
// served over real gRPC on loopback. It counts calls and the most that were in
// flight at once; while gate is non-nil, calls block until it is closed.
type fakeScaler struct {
	activationv1.UnimplementedActivationServiceServer

	calls       atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64

	// mu guards gate and names.
	mu    sync.Mutex
	gate  chan struct{}
	names []string
}

func (f *fakeScaler) Activate(
	ctx context.Context,
	req *activationv1.ActivateRequest,
) (*activationv1.ActivateResponse, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	gate := f.gate
	f.names = append(f.names, req.GetNamespace()+"/"+req.GetName())
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &activationv1.ActivateResponse{
		State:      activationv1.ActivateResponse_STATE_SCALING_UP,
		RetryAfter: durationpb.New(50 * time.Millisecond),
	}, nil
}

// calledNames returns the namespace/name of every Activate call so far.
func (f *fakeScaler) calledNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names...)
}

// testEnv is an ext_proc server on loopback with its state, a fake scaler and
// an Envoy-like client.
type testEnv struct {
	dir       *Directory
	readiness *Readiness
	server    *Server
	serving   *Serving
	scaler    *fakeScaler
	envoy     *envoytest.Client
	conn      *grpc.ClientConn
	cancel    context.CancelFunc
	metrics   *Metrics
	stopped   bool
}

// startEnv starts a testEnv; opts fill in the server options. Everything stops
// at the end of the test.
func startEnv(t testing.TB, opts Options, scaler *fakeScaler) *testEnv {
	t.Helper()
	if scaler == nil {
		scaler = &fakeScaler{}
	}
	log := logr.Discard()
	if testing.Verbose() {
		log = testr.NewWithInterface(t, testr.Options{})
	}

	scalerLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scalerSrv := grpc.NewServer()
	activationv1.RegisterActivationServiceServer(scalerSrv, scaler)
	go func() { _ = scalerSrv.Serve(scalerLis) }()
	scalerConn, err := grpc.NewClient(scalerLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}

	opts = opts.WithDefaults()
	env := &testEnv{
		dir:       NewDirectory(log),
		readiness: NewReadiness(opts.PropagationDelay),
		scaler:    scaler,
		metrics:   NewMetrics(nil),
	}
	env.server = NewServer(log, opts, env.dir, env.readiness,
		activationv1.NewActivationServiceClient(scalerConn), env.metrics)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	env.cancel = cancel
	// The shipped server options, so that tests and benchmarks run the server
	// as elasti-extproc does.
	grpcOpts, err := grpcServerOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.serving = Start(ctx, env.server, lis, opts.DrainTimeout, grpcOpts...)

	env.conn, err = grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	env.envoy = envoytest.New(env.conn, opts.MaxMessageTimeout)

	t.Cleanup(func() {
		env.stop(t)
		_ = scalerConn.Close()
		scalerSrv.Stop()
	})
	return env
}

// stop drains the server and ends every part of the env.
func (e *testEnv) stop(t testing.TB) {
	if e.stopped {
		return
	}
	e.stopped = true
	e.cancel()
	if err := e.serving.Wait(); err != nil {
		t.Errorf("Wait() = %v, want nil", err)
	}
	e.server.Close()
	e.readiness.Close()
	_ = e.conn.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// doResult is one finished Do.
type doResult struct {
	res envoytest.Result
	err error
	at  time.Time
}

// doMany sends n requests concurrently and returns a channel of their results.
func doMany(ctx context.Context, c *envoytest.Client, req envoytest.Request, n int) <-chan doResult {
	out := make(chan doResult, n)
	for range n {
		go func() {
			res, err := c.Do(ctx, req)
			out <- doResult{res: res, err: err, at: time.Now()}
		}()
	}
	return out
}
