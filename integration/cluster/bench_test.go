package cluster_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// BenchmarkScaleFromZero measures the time from setting replicas to 1 on a Deployment
// at zero to a ready endpoint in its Service's EndpointSlice, with a zero startup
// delay: with a readiness probe (period 1s, first check at once, as a kubelet runs
// it) and without one (ready as soon as the process runs). Run with -benchtime 20x
// for the median over 20 scale-ups.
func BenchmarkScaleFromZero(b *testing.B) {
	c := cluster.Shared(b)
	for _, probe := range []bool{true, false} {
		b.Run("probe="+strconv.FormatBool(probe), func(b *testing.B) {
			ns := c.NewNamespace(b)
			d := newDeployment(ns, 0, testapp.ContainerOptions{}).(*appsv1.Deployment)
			if !probe {
				d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
			}
			deploy(b, c, d)

			var times []time.Duration
			for b.Loop() {
				began := time.Now()
				scale(b, c, d, 1)
				if _, err := c.WaitForReadyEndpoints(b.Context(), ns, "testapp", 1, time.Minute); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(began))

				b.StopTimer()
				scale(b, c, d, 0)
				waitNoPods(b, c, ns, time.Minute)
				b.StartTimer()
			}
			reportPercentiles(b, times)
		})
	}
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	at := func(q float64) float64 {
		return float64(times[int(q*float64(len(times)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.5), "ms-median")
	b.ReportMetric(at(0.9), "ms-p90")
	b.ReportMetric(at(0), "ms-min")
}

// BenchmarkClusterStart measures Start of a fresh cluster (the test app already built)
// and the resident memory of its processes once it runs: etcd, kube-apiserver,
// kube-controller-manager and Prometheus, and the growth of the test process, which
// hosts the node agent. Run with -benchtime 3x.
func BenchmarkClusterStart(b *testing.B) {
	var starts []time.Duration
	var childKiB, selfKiB []float64
	for b.Loop() {
		before := rssKiB(os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		began := time.Now()
		c, err := cluster.Start(ctx, cluster.Options{})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(began))

		b.StopTimer()
		var sum float64
		for name, pid := range c.Processes() {
			kib := rssKiB(pid)
			b.Logf("%s: %.0f MiB", name, kib/1024)
			sum += kib
		}
		childKiB = append(childKiB, sum)
		selfKiB = append(selfKiB, rssKiB(os.Getpid())-before)
		c.Stop()
		b.StartTimer()
	}
	reportPercentiles(b, starts)
	b.ReportMetric(slices.Max(childKiB)/1024, "MiB-children")
	b.ReportMetric(slices.Max(selfKiB)/1024, "MiB-testprocess-growth")
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			v, _ := strconv.ParseFloat(f[0], 64)
			return v
		}
	}
	return 0
}
