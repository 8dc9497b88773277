package extproc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elasti-mesh/elasti/extproc/envoytest"
)

// benchClientEnv, when set to a server address, makes the test binary act as
// the Envoy side of a benchmark instead of running tests, so that the server's
// memory, CPU and garbage collection are measured apart from the client's. The
// variables named after it with a suffix say what to do (see benchClientJob).
const benchClientEnv = "ELASTI_BENCH_EXTPROC_CLIENT"

func TestMain(m *testing.M) {
	if addr := os.Getenv(benchClientEnv); addr != "" {
		os.Exit(runBenchClient(addr))
	}
	os.Exit(m.Run())
}

// benchClientJob is what the client process is asked to do: with Rate zero,
// hold N requests at once; otherwise send requests at Rate per second for
// Duration (flat out from 64 workers when Rate is negative).
type benchClientJob struct {
	N, Conns, Rate int
	Duration       time.Duration
}

func (j benchClientJob) env(addr string) []string {
	return []string{
		benchClientEnv + "=" + addr,
		benchClientEnv + "_N=" + strconv.Itoa(j.N),
		benchClientEnv + "_CONNS=" + strconv.Itoa(j.Conns),
		benchClientEnv + "_RATE=" + strconv.Itoa(j.Rate),
		benchClientEnv + "_DURATION=" + j.Duration.String(),
	}
}

func jobFromEnv() benchClientJob {
	var j benchClientJob
	j.N, _ = strconv.Atoi(os.Getenv(benchClientEnv + "_N"))
	j.Conns, _ = strconv.Atoi(os.Getenv(benchClientEnv + "_CONNS"))
	j.Rate, _ = strconv.Atoi(os.Getenv(benchClientEnv + "_RATE"))
	j.Duration, _ = time.ParseDuration(os.Getenv(benchClientEnv + "_DURATION"))
	return j
}

// benchClientReport is what the client process prints when it is done.
type benchClientReport struct {
	Continued int   `json:"continued"`
	Failed    int   `json:"failed"`
	LastNanos int64 `json:"lastNanos"` // wall clock of the last answer
	// Latencies of the requests answered CONTINUE, sorted; rate jobs only.
	Latencies []time.Duration `json:"latencies,omitempty"`
	Elapsed   time.Duration   `json:"elapsed,omitempty"`
}

func runBenchClient(addr string) int {
	job := jobFromEnv()
	clients := make([]extprocv3.ExternalProcessorClient, job.Conns)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer conn.Close()
		clients[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	headers := envoytest.Headers(holdRequest("ns", "a"))

	var report benchClientReport
	if job.Rate == 0 {
		report = holdMany(ctx, clients, headers, job.N)
	} else {
		report = sendAtRate(ctx, clients, headers, job.Rate, job.Duration)
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		return 1
	}
	return 0
}

// holdMany sends n requests at once and reports when the last answer arrived.
func holdMany(
	ctx context.Context,
	clients []extprocv3.ExternalProcessorClient,
	headers *extprocv3.ProcessingRequest,
	n int,
) benchClientReport {
	results := make(chan benchResult, n)
	for i := range n {
		go func() { results <- processOnce(ctx, clients[i%len(clients)], headers) }()
	}
	var report benchClientReport
	for range n {
		report.add(<-results)
	}
	return report
}

// sendAtRate sends requests for dur: at rate per second on a fixed schedule, or,
// with a negative rate, from 64 workers back to back. Latency counts from each
// request's scheduled start, so a stalled sender shows up as latency.
func sendAtRate(
	ctx context.Context,
	clients []extprocv3.ExternalProcessorClient,
	headers *extprocv3.ProcessingRequest,
	rate int,
	dur time.Duration,
) benchClientReport {
	var mu sync.Mutex // guards report
	var report benchClientReport
	one := func(c extprocv3.ExternalProcessorClient, from time.Time) {
		res := processOnce(ctx, c, headers)
		res.latency = time.Since(from)
		mu.Lock()
		report.add(res)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	start := time.Now()
	if rate < 0 {
		for w := range 64 {
			wg.Go(func() {
				for time.Since(start) < dur {
					one(clients[w%len(clients)], time.Now())
				}
			})
		}
	} else {
		interval := time.Second / time.Duration(rate)
		for i := range int(dur / interval) {
			at := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(at))
			wg.Go(func() { one(clients[i%len(clients)], at) })
		}
	}
	wg.Wait()
	report.Elapsed = time.Since(start)
	slices.Sort(report.Latencies)
	return report
}

// benchResult is the outcome of one request on the client side.
type benchResult struct {
	continued  bool
	answeredAt time.Time
	latency    time.Duration
}

func (r *benchClientReport) add(res benchResult) {
	if !res.continued {
		r.Failed++
		return
	}
	r.Continued++
	r.LastNanos = max(r.LastNanos, res.answeredAt.UnixNano())
	if res.latency > 0 {
		r.Latencies = append(r.Latencies, res.latency)
	}
}

// processOnce plays Envoy for one request in a single goroutine: request
// headers, an override if one comes, the answer, then the end of the stream. It
// skips what envoytest.Client adds to check Envoy's rules (message timers, a
// reader goroutine), so that the client process spends as little of the shared
// cores as a proxy would; no message timeout is in play in these benchmarks.
func processOnce(
	ctx context.Context,
	ext extprocv3.ExternalProcessorClient,
	headers *extprocv3.ProcessingRequest,
) benchResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ext.Process(ctx)
	if err != nil || stream.Send(headers) != nil {
		return benchResult{}
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return benchResult{}
		}
		if m.GetOverrideMessageTimeout() != nil {
			continue
		}
		res := benchResult{
			answeredAt: time.Now(),
			continued:  m.GetRequestHeaders().GetResponse().GetStatus() == extprocv3.CommonResponse_CONTINUE,
		}
		_ = stream.CloseSend()
		for {
			if _, err := stream.Recv(); err != nil {
				return res
			}
		}
	}
}

// startBenchClient runs the Envoy side of a benchmark as a child process; the
// returned function waits for its report.
func startBenchClient(b *testing.B, addr string, job benchClientJob) func() benchClientReport {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), job.env(addr)...)
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
