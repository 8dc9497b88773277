package extproc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elasti-mesh/elasti/extproc/envoytest"
)

// benchClientEnv, when set to a server address, makes the test binary act as
// the Envoy side of BenchmarkHeldCapacity instead of running tests, so that the
// server's memory and CPU are measured apart from the client's.
const benchClientEnv = "ELASTI_BENCH_EXTPROC_CLIENT"

func TestMain(m *testing.M) {
	if addr := os.Getenv(benchClientEnv); addr != "" {
		os.Exit(runBenchClient(addr))
	}
	os.Exit(m.Run())
}

// benchClientReport is what the client process prints when every request has
// been answered.
type benchClientReport struct {
	Continued int   `json:"continued"`
	Failed    int   `json:"failed"`
	LastNanos int64 `json:"lastNanos"` // wall clock of the last answer
}

// runBenchClient holds n requests over conns connections and reports when the
// last answer arrived.
func runBenchClient(addr string) int {
	n, _ := strconv.Atoi(os.Getenv(benchClientEnv + "_N"))
	conns, _ := strconv.Atoi(os.Getenv(benchClientEnv + "_CONNS"))
	clients := make([]*envoytest.Client, conns)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer conn.Close()
		clients[i] = envoytest.New(conn, DefaultMaxMessageTimeout)
		clients[i].MessageTimeout = benchMessageTimeout
	}

	results := make(chan envoytest.Result, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range n {
		go func() {
			res, _ := clients[i%conns].Do(ctx, holdRequest("ns", "a"))
			results <- res
		}()
	}
	var report benchClientReport
	for range n {
		r := <-results
		if !r.Continued {
			report.Failed++
			continue
		}
		report.Continued++
		report.LastNanos = max(report.LastNanos, r.AnsweredAt.UnixNano())
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		return 1
	}
	return 0
}

// startBenchClient runs the Envoy side of the held-capacity benchmark as a
// child process; the returned function waits for its report.
func startBenchClient(b *testing.B, addr string, n, conns int) func() benchClientReport {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+addr,
		benchClientEnv+"_N="+strconv.Itoa(n), benchClientEnv+"_CONNS="+strconv.Itoa(conns))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return func() benchClientReport {
		var report benchClientReport
		if err := json.NewDecoder(out).Decode(&report); err != nil {
			b.Fatalf("failed to read the client process's report: %v", err)
		}
		return report
	}
}
