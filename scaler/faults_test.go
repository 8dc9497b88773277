package scaler_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
	"github.com/elasti-mesh/elasti/integration/cluster"
)

// tcpGate forwards a loopback port to Prometheus and can be shut and reopened on
// the same port, so that to the scaler Prometheus stops and comes back.
type tcpGate struct {
	addr, target string

	// mu guards lis and conns.
	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newTCPGate(t *testing.T, target string) *tcpGate {
	t.Helper()
	g := &tcpGate{target: target, conns: map[net.Conn]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = lis.Addr().String()
	g.serve(lis)
	t.Cleanup(func() { g.shut(); g.wg.Wait() })
	return g
}

func (g *tcpGate) serve(lis net.Listener) {
	g.mu.Lock()
	g.lis = lis
	g.mu.Unlock()
	g.wg.Go(func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() { g.pipe(in) })
		}
	})
}

func (g *tcpGate) pipe(in net.Conn) {
	out, err := net.Dial("tcp", g.target)
	if err != nil {
		in.Close()
		return
	}
	g.mu.Lock()
	g.conns[in], g.conns[out] = true, true
	g.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); done <- struct{}{} }()
	go func() { io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
}

// shut closes the listener and every connection: Prometheus is unreachable.
func (g *tcpGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lis != nil {
		g.lis.Close()
		g.lis = nil
	}
	for c := range g.conns {
		c.Close()
	}
	g.conns = map[net.Conn]bool{}
}

// open listens again on the same port.
func (g *tcpGate) open(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatalf("failed to reopen %s: %v", g.addr, err)
	}
	g.serve(lis)
}

// TestPrometheusStopped: while Prometheus cannot be reached nothing is scaled down
// and TriggersHealthy says why; once it is back the idle service goes to zero.
func TestPrometheusStopped(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	exp := startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	stopTraffic := exp.busy()
	defer stopTraffic()
	u, err := url.Parse(c.PrometheusURL)
	if err != nil {
		t.Fatal(err)
	}
	gate := newTCPGate(t, u.Host)
	s := startScaler(t, c, ns, testOptions(c, ns))

	es := newElastiService(ns, 600, trafficQuery(ns))
	es.Spec.Triggers[0].Metadata.ServerAddress = "http://" + gate.addr
	create(t, c, newService(ns), newDeployment(ns, 1), es)
	waitBusy(t, c, ns)

	// Prometheus goes away and the traffic stops: no scale-down.
	gate.shut()
	stopTraffic()
	patchCooldown(t, c, ns, 0)
	cond := waitCondition(t, c, ns, v1alpha1.ConditionTriggersHealthy, metav1.ConditionFalse, "QueryFailed",
		30*time.Second)
	t.Logf("condition while Prometheus is down: %s", cond.Message)
	waitRounds(t, s, 5)
	if got, err := replicas(context.Background(), c, ns); err != nil || got != 1 {
		t.Fatalf("replicas with Prometheus down = %d (%v), want 1", got, err)
	}

	// Back: normal again.
	gate.open(t)
	waitReplicas(t, c, ns, 0, time.Minute)
	waitCondition(t, c, ns, v1alpha1.ConditionTriggersHealthy, metav1.ConditionTrue, "Evaluated", 10*time.Second)
}

// TestUptimeGuard: an idle value is not trusted when no up series matches the
// trigger's uptimeFilter, the guard Elasti applies against a Prometheus that lost
// its targets.
func TestUptimeGuard(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	startExporter(t, c, ns, appName+"."+ns+".svc.cluster.local")
	s := startScaler(t, c, ns, testOptions(c, ns))

	es := newElastiService(ns, 0, trafficQuery(ns))
	es.Spec.Triggers[0].Metadata.UptimeFilter = `job="no-such-job"`
	create(t, c, newService(ns), newDeployment(ns, 1), es)
	waitCondition(t, c, ns, v1alpha1.ConditionTriggersHealthy, metav1.ConditionFalse, "PrometheusUnhealthy",
		30*time.Second)
	waitRounds(t, s, 4)
	if got, err := replicas(context.Background(), c, ns); err != nil || got != 1 {
		t.Fatalf("replicas without a matching up series = %d (%v), want 1", got, err)
	}
}
