package extproc

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// The benchmarks below measure figures, not ns/op: run them once each with
//
//	go test ./extproc -run '^$' -bench 'HeldCapacity|PassThrough' -benchtime 1x
//
// They report their figures as custom metrics.

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
		report := startBenchClient(b, env.conn.Target(), benchClientJob{N: n, Conns: conns})
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
		// The server has released them all once none is held: each hold has
		// ended with its CONTINUE handed to the stream.
		for env.server.Held(svc) > 0 {
			if time.Since(readyAt) > time.Minute {
				b.Fatalf("%d still held a minute after readiness", env.server.Held(svc))
			}
			time.Sleep(time.Millisecond)
		}
		serverDone := time.Since(readyAt)
		r := report()
		if r.Continued != n {
			b.Fatalf("client process: %d continued, %d failed; want %d continued", r.Continued, r.Failed, n)
		}
		b.ReportMetric(float64(growth)/(1<<20), "MiB-growth")
		b.ReportMetric(float64(serverDone.Milliseconds()), "ms-all-released-server")
		b.ReportMetric(float64(time.Unix(0, r.LastNanos).Sub(readyAt).Milliseconds()), "ms-last-release")
		env.stop(b)
	}
}

// BenchmarkPassThrough measures one request-headers round trip (stream open,
// request_headers, CONTINUE, stream end) for a ready service, at fixed
// arrival rates and flat out, with the Envoy side in a child process. Latency
// counts from each request's scheduled start, so a stalled sender shows up as
// latency.
func BenchmarkPassThrough(b *testing.B) {
	for _, rate := range []int{1000, 5000, -1} {
		name := fmt.Sprintf("rate=%d", rate)
		if rate < 0 {
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
				r := startBenchClient(b, env.conn.Target(),
					benchClientJob{Conns: 8, Rate: rate, Duration: 3 * time.Second})()
				if r.Failed > 0 || r.Continued == 0 {
					b.Fatalf("client process: %d continued, %d failed; want none failed", r.Continued, r.Failed)
				}
				lat := r.Latencies
				b.ReportMetric(float64(len(lat))/r.Elapsed.Seconds(), "req/s")
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
				env.stop(b)
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
