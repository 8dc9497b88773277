package extproc

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elasti-mesh/elasti/extproc/envoytest"
)

// The benchmarks below measure figures, not ns/op: run them once each with
//
//	go test ./extproc -run '^$' -bench 'HeldCapacity|PassThrough' -benchtime 1x
//
// They report their figures as custom metrics.

// benchClients opens conns connections to env's server, as several Envoy
// workers would.
func benchClients(b *testing.B, env *testEnv, conns int) []*envoytest.Client {
	b.Helper()
	target := env.conn.Target()
	out := make([]*envoytest.Client, conns)
	for i := range out {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		out[i] = envoytest.New(conn, DefaultMaxMessageTimeout)
		// Generous, so that a benchmark on a loaded machine measures latency
		// rather than counting timeouts.
		out[i].MessageTimeout = benchMessageTimeout
	}
	return out
}

// heapAndStacks is the memory the Go runtime holds for objects and stacks.
func heapAndStacks() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkHeldCapacity holds 10,000 requests over 8 connections, then makes
// the service ready and measures how long until the last one is released. The
// Envoy side runs in a child process, so the memory growth is the server's own.
func BenchmarkHeldCapacity(b *testing.B) {
	const n, conns = 10000, 8
	for range b.N {
		env := startEnv(b, Options{PropagationDelay: time.Millisecond}, nil)
		es := testES("ns", "a")
		es.Spec.MaxHeldRequests = 2 * n
		env.dir.Upsert(es)
		svc := ServiceKey{"ns", "a"}

		before := heapAndStacks()
		heldStart := time.Now()
		report := startBenchClient(b, env.conn.Target(), n, conns)
		deadline := time.Now().Add(2 * time.Minute)
		for env.server.Held(svc) < n {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d held after 2m", env.server.Held(svc), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		growth := heapAndStacks() - before
		b.Logf("all held after %v", time.Since(heldStart))

		readyAt := time.Now()
		env.readiness.SetSlice(svc, "a-1", true)
		r := report()
		if r.Continued != n {
			b.Fatalf("client process: %d continued, %d failed; want %d continued", r.Continued, r.Failed, n)
		}
		b.ReportMetric(float64(growth)/(1<<20), "MiB-growth")
		b.ReportMetric(float64(time.Unix(0, r.LastNanos).Sub(readyAt).Milliseconds()), "ms-last-release")
		env.stop(b)
	}
}

// BenchmarkPassThrough measures one request-headers round trip (stream open,
// request_headers, CONTINUE, stream end) for a ready service, at fixed
// arrival rates and flat out. Latency counts from each request's scheduled
// start, so a stalled sender shows up as latency.
func BenchmarkPassThrough(b *testing.B) {
	for _, rate := range []int{1000, 5000, 0} {
		name := fmt.Sprintf("rate=%d", rate)
		if rate == 0 {
			name = "rate=max"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				env := startEnv(b, Options{PropagationDelay: time.Millisecond}, nil)
				env.dir.Upsert(testES("ns", "a"))
				env.readiness.SetSlice(ServiceKey{"ns", "a"}, "a-1", true)
				for !env.readiness.Released(ServiceKey{"ns", "a"}) {
					time.Sleep(time.Millisecond)
				}
				clients := benchClients(b, env, 8)
				lat, elapsed := passThroughLoad(b, clients, rate, 3*time.Second)
				slices.Sort(lat)
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
				env.stop(b)
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// passThroughLoad sends requests for dur: at rate per second on a fixed
// schedule, or, with rate 0, from 64 workers back to back. It returns each
// request's latency and the time taken.
func passThroughLoad(
	b *testing.B,
	clients []*envoytest.Client,
	rate int,
	dur time.Duration,
) ([]time.Duration, time.Duration) {
	req := holdRequest("ns", "a")
	var mu sync.Mutex // guards lat
	var lat []time.Duration
	one := func(c *envoytest.Client, from time.Time) {
		res, err := c.Do(context.Background(), req)
		if err != nil || !res.Continued {
			b.Errorf("Do() = %+v, %v", res, err)
			return
		}
		d := time.Since(from)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	start := time.Now()
	if rate == 0 {
		for w := range 64 {
			wg.Go(func() {
				for time.Since(start) < dur {
					one(clients[w%len(clients)], time.Now())
				}
			})
		}
	} else {
		interval := time.Second / time.Duration(rate)
		total := int(dur / interval)
		for i := range total {
			at := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(at))
			wg.Go(func() { one(clients[i%len(clients)], at) })
		}
	}
	wg.Wait()
	return lat, time.Since(start)
}

var benchMessageTimeout = time.Minute
