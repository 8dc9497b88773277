package scaler_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
	activationv1 "github.com/elasti-mesh/elasti/proto/elasti/activation/v1"
)

// benchServices is the number of ElastiServices BenchmarkScaler1000 creates.
const benchServices = 1000

// BenchmarkScaler1000 runs the elasti-scaler program, as deployed, against the
// local cluster with 1,000 ElastiServices (each with its Deployment at zero, its
// Service and a Prometheus trigger), and measures: the time until every one is
// reconciled into hold, the duration of a trigger evaluation round (from the
// scaler's own histogram), the most Prometheus queries in flight at once (counted
// by a proxy in front of Prometheus), the scaler's resident memory, and the
// latency of activations, each a real scale write 0 -> 1: 100 back to back, then
// 100 more one every 250 ms, so that the pod churn each one sets off has settled
// before the next. Run it alone:
//
//	go test ./scaler -run '^$' -bench BenchmarkScaler1000 -benchtime 1x
func BenchmarkScaler1000(b *testing.B) {
	c := cluster.Shared(b)
	ns := c.NewNamespace(b)
	job := "bench"
	exportIdleCounters(b, c, job, ns)
	proxy := startCountingProxy(b, c.PrometheusURL)
	createBenchServices(b, c, ns)

	for b.Loop() {
		proc, addrs := startScalerProgram(b, c, ns, proxy.url, job)
		began := time.Now()
		waitAllHold(b, c, ns)
		b.ReportMetric(time.Since(began).Seconds(), "s-reconcile-all")

		// Two full rounds after every service is known.
		count0, _ := roundStats(b, addrs.metrics)
		waitFor(b, 2*time.Minute, "two evaluation rounds", func(context.Context) (bool, error) {
			n, _ := roundStats(b, addrs.metrics)
			return n >= count0+2, nil
		})
		n, sum := roundStats(b, addrs.metrics)
		b.ReportMetric(sum/n, "s-round-mean")
		b.ReportMetric(float64(proxy.max.Load()), "queries-inflight-max")
		b.ReportMetric(rssMiB(proc.Process.Pid, "VmRSS:"), "MiB-rss")
		b.ReportMetric(rssMiB(proc.Process.Pid, "VmHWM:"), "MiB-rss-peak")

		raw := rawScaleWrites(b, c, ns, 900, 100)
		b.ReportMetric(percentile(raw, 0.50), "ms-raw-scale-write-p50")
		b.ReportMetric(percentile(raw, 0.99), "ms-raw-scale-write-p99")
		lat := activateMany(b, addrs.activation, ns, 0, 100, 0)
		b.ReportMetric(percentile(lat, 0.50), "ms-activate-p50")
		b.ReportMetric(percentile(lat, 0.99), "ms-activate-p99")
		lat = activateMany(b, addrs.activation, ns, 100, 100, 250*time.Millisecond)
		b.ReportMetric(percentile(lat, 0.50), "ms-activate-paced-p50")
		b.ReportMetric(percentile(lat, 0.99), "ms-activate-paced-p99")
		b.ReportMetric(rssMiB(proc.Process.Pid, "VmHWM:"), "MiB-rss-peak-after")
	}
}

func exportIdleCounters(b *testing.B, c *cluster.Cluster, job, ns string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		bw := bufio.NewWriter(w)
		fmt.Fprintln(bw, "# TYPE istio_requests_total counter")
		for i := range benchServices {
			fmt.Fprintf(bw, "istio_requests_total{destination_service=\"svc-%d.%s.svc.cluster.local\"} 7\n", i, ns)
		}
		bw.Flush()
	})}
	go srv.Serve(lis)
	b.Cleanup(func() { srv.Close() })
	if err := c.AddScrapeTarget(job, lis.Addr().String()); err != nil {
		b.Fatal(err)
	}
}

// countingProxy forwards to Prometheus and records the most requests in flight.
type countingProxy struct {
	url           string
	inFlight, max atomic.Int64
}

func startCountingProxy(b *testing.B, target string) *countingProxy {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		for {
			m := p.max.Load()
			if n <= m || p.max.CompareAndSwap(m, n) {
				break
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(lis)
	b.Cleanup(func() { srv.Close() })
	p.url = "http://" + lis.Addr().String()
	return p
}

func createBenchServices(b *testing.B, c *cluster.Cluster, ns string) {
	began := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for i := range work {
				for _, o := range benchObjects(ns, i) {
					if err := c.Client.Create(context.Background(), o); err != nil {
						failed.Store(err)
					}
				}
			}
		})
	}
	for i := range benchServices {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("failed to create objects: %v", err)
	}
	b.Logf("created %d Deployments, Services and ElastiServices in %s", benchServices, time.Since(began))
	b.Cleanup(func() { releaseFinalizers(b, c, ns) })
}

func benchObjects(ns string, i int) []client.Object {
	name := fmt.Sprintf("svc-%d", i)
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				// No program runs this image: activated pods stay waiting, cheaply.
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "elasti.test/none"}}},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	es := newElastiService(ns, 600, fmt.Sprintf(
		`sum(rate(istio_requests_total{destination_service="%s.%s.svc.cluster.local"}[1m])) or vector(0)`, name, ns))
	es.Name, es.Spec.Service, es.Spec.ScaleTargetRef.Name = name, name, name
	return []client.Object{d, svc, es}
}

// releaseFinalizers removes the scaler's finalizers once it has stopped, so the
// namespace can go without restoring a thousand workloads.
func releaseFinalizers(b *testing.B, c *cluster.Cluster, ns string) {
	var list v1alpha1.ElastiServiceList
	if err := c.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		b.Errorf("failed to list ElastiServices: %v", err)
		return
	}
	for i := range list.Items {
		es := &list.Items[i]
		patch := client.MergeFrom(es.DeepCopy())
		es.Finalizers = nil
		_ = c.Client.Patch(context.Background(), es, patch)
	}
}

type programAddrs struct{ activation, metrics string }

func startScalerProgram(b *testing.B, c *cluster.Cluster, ns, prom, job string) (*exec.Cmd, programAddrs) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "elasti-scaler")
	build := exec.Command("go", "build", "-o", bin, "../cmd/elasti-scaler")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("failed to build elasti-scaler: %v\n%s", err, out)
	}
	addrs := programAddrs{activation: freeAddr(b), metrics: freeAddr(b)}
	cmd := exec.Command(bin,
		"--activation-address="+addrs.activation,
		"--metrics-address="+addrs.metrics,
		"--health-probe-address=0",
		"--leader-election-namespace="+ns,
		"--prometheus-address="+prom,
		"--prometheus-uptime-filter=job=\""+job+"\"",
		"--log-level=error",
	)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath)
	logFile, err := os.Create(filepath.Join(c.Dir, "bench-elasti-scaler.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	})
	return cmd, addrs
}

func freeAddr(b *testing.B) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func waitAllHold(b *testing.B, c *cluster.Cluster, ns string) {
	waitFor(b, 5*time.Minute, "every ElastiService in hold", func(ctx context.Context) (bool, error) {
		var list v1alpha1.ElastiServiceList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		held := 0
		for _, es := range list.Items {
			if es.Status.Mode == v1alpha1.ModeHold {
				held++
			}
		}
		return held == benchServices, fmt.Errorf("%d of %d in hold", held, benchServices)
	})
}

// roundStats reads the count and sum of the evaluation round histogram.
func roundStats(b *testing.B, addr string) (count, sum float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "elasti_scaler_evaluation_round_duration_seconds_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "elasti_scaler_evaluation_round_duration_seconds_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		}
	}
	return count, sum
}

// activateMany activates n services at zero from first on, one after the other,
// each call starting pace after the previous one started (at once when the
// previous one took longer), and returns each call's latency.
func activateMany(b *testing.B, addr, ns string, first, n int, pace time.Duration) []time.Duration {
	api := dialActivation(b, addr)
	var lat []time.Duration
	next := time.Now()
	for i := first; i < first+n; i++ {
		time.Sleep(time.Until(next))
		req := &activationv1.ActivateRequest{Namespace: ns, Name: fmt.Sprintf("svc-%d", i)}
		began := time.Now()
		next = began.Add(pace)
		resp, err := api.Activate(context.Background(), req)
		lat = append(lat, time.Since(began))
		if err != nil || resp.GetDesiredReplicas() != 1 {
			b.Fatalf("Activate(%s) = %v, %v; want desired 1", req.Name, resp, err)
		}
	}
	return lat
}

// rawScaleWrites times a plain read and write of /scale from the test's own client
// on n Deployments from first on, to separate the API server's latency on this
// machine from the scaler's.
func rawScaleWrites(b *testing.B, c *cluster.Cluster, ns string, first, n int) []time.Duration {
	var lat []time.Duration
	for i := first; i < first+n; i++ {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("svc-%d", i)}}
		scale := &autoscalingv1.Scale{}
		began := time.Now()
		if err := c.Client.SubResource("scale").Get(context.Background(), d, scale); err != nil {
			b.Fatal(err)
		}
		scale.Spec.Replicas = 0
		if err := c.Client.SubResource("scale").Update(context.Background(), d,
			client.WithSubResourceBody(scale)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(began))
	}
	return lat
}

func percentile(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

func rssMiB(pid int, field string) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return v / 1024
		}
	}
	return 0
}
