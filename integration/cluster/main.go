package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"go.uber.org/goleak"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// startTimeout bounds Start when Shared calls it, including a first build of the test
// app but not of the control plane.
const startTimeout = 3 * time.Minute

var shared struct {
	opts    Options
	once    sync.Once
	cluster *Cluster
	err     error
	// logFile receives the harness log while the package's tests run.
	logFile *os.File
	// beforeStop run after the tests, before the cluster stops.
	beforeStop []func()
}

// Main runs a package's tests with one cluster shared between them: the first call to
// Shared starts it with opts, and Main stops it when the tests end. The cluster's
// folder is kept when a test failed (or the binary dies), and its path is printed, so
// its logs can be read; otherwise it is removed. Call it from TestMain:
//
//	func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}) }
func Main(m *testing.M, opts Options) {
	os.Exit(runMain(m, opts))
}

func runMain(m *testing.M, opts Options) int {
	created := opts.Dir == ""
	if created {
		dir, err := os.MkdirTemp("", "elasti-cluster-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "failed to create cluster folder: %v\n", err)
			return 1
		}
		opts.Dir = dir
		// Printed now so it is there even when the binary dies of a timeout; go test
		// shows it only for a failing package or with -v.
		fmt.Fprintf(os.Stderr, "local cluster folder (kept on failure): %s\n", dir)
	}
	if opts.Log.GetSink() == nil {
		f, err := os.Create(filepath.Join(opts.Dir, "harness.log"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "failed to create harness log: %v\n", err)
			return 1
		}
		shared.logFile = f
		opts.Log = funcr.New(func(prefix, args string) {
			fmt.Fprintln(f, time.Now().Format(time.StampMilli), prefix, args)
		}, funcr.Options{Verbosity: 1})
	}
	shared.opts = opts
	// controller-runtime logs through a global logger; without one it complains.
	ctrllog.SetLogger(opts.Log.WithName("controller-runtime"))

	code := m.Run()
	for i := len(shared.beforeStop) - 1; i >= 0; i-- {
		shared.beforeStop[i]()
	}

	if shared.cluster != nil {
		shared.cluster.Stop()
		if err := goleak.Find(leakOptions...); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "goroutines left after the cluster stopped: %v\n", err)
			code = 1
		}
	}
	if shared.logFile != nil {
		shared.logFile.Close()
	}
	if code != 0 || shared.err != nil {
		fmt.Fprintf(os.Stderr, "tests failed; cluster files kept in %s\n", opts.Dir)
		return code
	}
	if created {
		os.RemoveAll(opts.Dir)
	}
	return code
}

// BeforeStop registers fn to run after the package's tests and before the shared
// cluster stops, for what a test package started on it once (a system under test
// shared by its tests). Functions run in reverse order of registration. Not safe
// for concurrent use with Main's return.
func BeforeStop(fn func()) {
	shared.beforeStop = append(shared.beforeStop, fn)
}

// Shared returns the package's cluster, starting it on first use. It fails the test
// if the cluster cannot start. It needs Main in the package's TestMain.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		if shared.opts.Dir == "" {
			shared.err = fmt.Errorf("cluster.Shared needs cluster.Main in TestMain")
			return
		}
		// A first build of the control plane takes minutes; only the test binary's
		// own timeout bounds it.
		if shared.opts.AssetsDir == "" {
			root, err := moduleRoot(context.Background())
			if err == nil {
				shared.opts.AssetsDir, err = FindAssets(context.Background(), root)
			}
			if err != nil {
				shared.err = err
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.cluster, shared.err = Start(ctx, shared.opts)
	})
	if shared.err != nil {
		t.Fatalf("failed to start the local cluster: %v", shared.err)
	}
	return shared.cluster
}

// leakOptions name the goroutines that legitimately outlive a stopped cluster: the
// process starter, which must hold its thread until the binary ends, and client
// libraries' process-wide background workers.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/elasti-mesh/elasti/integration/proc.forker"),
	goleak.IgnoreAnyFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
}
