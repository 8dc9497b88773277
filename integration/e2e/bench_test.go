package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cold-start benchmarks measure figures, not ns/op. Run them with
//
//	make controlplane >/dev/null; KUBEBUILDER_ASSETS=$(hack/controlplane.sh) \
//	  go test ./integration/e2e -run '^$' -bench ColdStart -benchtime 1x -timeout 30m
//
// Overhead is, per cold start, the time from the first ready endpoint of the
// service appearing in the API server (seen by a watch) to the first response
// byte of the held request, minus elasti-extproc's propagation delay (500ms
// here), which is the deliberate wait for the proxies to receive the endpoint.

// releaseDelay is the stack's default elasti-extproc propagation delay.
const releaseDelay = 500 * time.Millisecond

// readyWatch records when each Service of a namespace first has a ready
// endpoint.
type readyWatch struct {
	mu    sync.Mutex
	first map[string]time.Time
}

func watchReady(b *testing.B, ns string) *readyWatch {
	c, _ := system(b)
	w, err := c.Clientset.DiscoveryV1().EndpointSlices(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	rw := &readyWatch{first: map[string]time.Time{}}
	go func() {
		for ev := range w.ResultChan() {
			slice, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			at := time.Now()
			for _, ep := range slice.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					rw.mark(slice.Labels[discoveryv1.LabelServiceName], at)
				}
			}
		}
	}()
	return rw
}

func (rw *readyWatch) mark(svc string, at time.Time) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if _, ok := rw.first[svc]; !ok {
		rw.first[svc] = at
	}
}

func (rw *readyWatch) at(svc string) (time.Time, bool) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	t, ok := rw.first[svc]
	return t, ok
}

// firstByte sends a GET through the sidecar and returns when its first
// response byte arrived and the status; a failed request's body is in the error.
func firstByte(base, host string) (time.Time, int, error) {
	var at time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { at = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodGet, base+"/", nil)
	if err != nil {
		return at, 0, err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return at, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return at, resp.StatusCode, fmt.Errorf("body %q after %v", body, time.Since(at))
	}
	return at, resp.StatusCode, nil
}

// coldStarts wakes n services in namespace ns at once and returns each one's
// overhead and total latency.
func coldStarts(b *testing.B, ns string, names []string) (overheads, totals []time.Duration) {
	_, s := system(b)
	rw := watchReady(b, ns)
	type sample struct{ overhead, total time.Duration }
	out := make([]sample, len(names))
	var wg sync.WaitGroup
	start := time.Now()
	for i, name := range names {
		wg.Go(func() {
			at, status, err := firstByte(s.ProxyURL, name+"."+ns)
			if err != nil || status != 200 {
				b.Errorf("cold GET %s = %d, %v", name, status, err)
				return
			}
			ready, ok := rw.at(name)
			if !ok {
				b.Errorf("no ready endpoint seen for %s", name)
				return
			}
			out[i] = sample{overhead: at.Sub(ready) - releaseDelay, total: at.Sub(start)}
		})
	}
	wg.Wait()
	for _, smp := range out {
		overheads = append(overheads, smp.overhead)
		totals = append(totals, smp.total)
	}
	return overheads, totals
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func report(b *testing.B, overheads, totals []time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(overheads, 50)), "overhead-p50-ms")
	b.ReportMetric(ms(percentile(overheads, 99)), "overhead-p99-ms")
	b.ReportMetric(ms(percentile(totals, 50)), "total-p50-ms")
	b.ReportMetric(ms(percentile(totals, 95)), "total-p95-ms")
}

// BenchmarkColdStartSequential wakes one service from zero, rounds times.
func BenchmarkColdStartSequential(b *testing.B) {
	const rounds = 50
	c, _ := system(b)
	for range b.N {
		var overheads, totals []time.Duration
		for i := range rounds {
			ns := c.NewNamespace(b)
			name := fmt.Sprintf("seq%d", i)
			deploy(b, c, ns, app{name: name, idle: true})
			waitAtZero(b, c, ns, name)
			o, t := coldStarts(b, ns, []string{name})
			overheads, totals = append(overheads, o...), append(totals, t...)
		}
		report(b, overheads, totals)
	}
}

// BenchmarkColdStartParallel wakes 25, then 100, services from zero at once.
func BenchmarkColdStartParallel(b *testing.B) {
	for _, services := range []int{25, 100} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			c, _ := system(b)
			for range b.N {
				ns := c.NewNamespace(b)
				var names []string
				for i := range services {
					names = append(names, fmt.Sprintf("par%d", i))
					deploy(b, c, ns, app{name: names[i], idle: true})
				}
				for _, name := range names {
					waitAtZero(b, c, ns, name)
				}
				overheads, totals := coldStarts(b, ns, names)
				report(b, overheads, totals)
			}
		})
	}
}
