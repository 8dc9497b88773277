package e2e_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/elasti-mesh/elasti/integration/envoyemu"
	"github.com/elasti-mesh/elasti/integration/stack"
)

// coldRequests sends n GETs at once to host through the proxy at base.
func coldRequests(base, host string, n int) []result {
	s := &stack.Stack{ProxyURL: base}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = do(s, http.MethodGet, host, "/", nil, nil)
		}()
	}
	wg.Wait()
	return results
}

func countOK(results []result) (ok int, failed map[int]int) {
	failed = map[int]int{}
	for _, r := range results {
		if r.err == nil && r.status == 200 {
			ok++
		} else {
			failed[r.status]++
		}
	}
	return ok, failed
}

// TestEndpointLagAgainstReleaseDelay is scenario 4. elasti-extproc releases held
// requests a propagation delay (500ms here) after the endpoint is ready in the
// API. A proxy whose endpoints lag less than that loses nothing; one whose
// endpoints lag more gets released requests before it can route them, and
// answers 503: those failures are counted and reported here, not hidden.
func TestEndpointLagAgainstReleaseDelay(t *testing.T) {
	c, s := system(t)
	tests := []struct {
		name     string
		lag      time.Duration
		wantLoss bool
	}{
		{"lag below the release delay", 100 * time.Millisecond, false},
		{"lag above the release delay", 2 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := c.NewNamespace(t)
			deploy(t, c, ns, app{name: "lagged", idle: true, startupDelay: time.Second})
			waitAtZero(t, c, ns, "lagged")
			keepUp(t, c, ns, "lagged")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, base, err := s.StartProxy(ctx, envoyemu.Lag{Min: tt.lag, Max: tt.lag})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "the new proxy's routes", func() bool {
				route, _, _ := p.RouteFor(ctx, "lagged."+ns, "/")
				return route == "elasti-hold"
			})

			results := coldRequests(base, "lagged."+ns, 20)
			ok, failed := countOK(results)
			t.Logf("endpoint lag %v, release delay 500ms: %d of %d succeeded, failures by status %v",
				tt.lag, ok, len(results), failed)
			if !tt.wantLoss && ok != len(results) {
				t.Errorf("%d of %d failed with endpoints lagging %v, want none", len(results)-ok, len(results), tt.lag)
			}
			if tt.wantLoss && failed[503] == 0 {
				t.Errorf("no 503 with endpoints lagging %v past the release delay: the emulator hid the race", tt.lag)
			}
		})
	}
}

// TestExtProcRollingRestart is scenario 9: elasti-extproc is replaced while it
// holds requests; the old instance drains and none is lost.
func TestExtProcRollingRestart(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "rolled", idle: true, startupDelay: 4 * time.Second})
	waitAtZero(t, c, ns, "rolled")
	keepUp(t, c, ns, "rolled")

	done := make(chan []result, 1)
	go func() { done <- coldRequests(s.ProxyURL, "rolled."+ns, 20) }()
	waitFor(t, 10*time.Second, "requests held", func() bool {
		v, _ := metricValue(t, s.ExtProcMetricsURL, `elasti_extproc_held_requests{namespace="`+ns+`"`)
		return v > 0
	})
	if err := s.StartExtProc(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A request that arrives after the restart goes to the new instance.
	late := do(s, http.MethodGet, "rolled."+ns, "/", nil, nil)

	ok, failed := countOK(<-done)
	if ok != 20 || late.status != 200 {
		t.Errorf("%d of 20 held requests succeeded across the restart (failures %v), late request %d; want all 200",
			ok, failed, late.status)
	}
}

// TestScalerKilledDuringActivation is scenario 10: the leading elasti-scaler is
// killed while requests are held; the other replica takes the lease and the
// activation completes.
func TestScalerKilledDuringActivation(t *testing.T) {
	c, s := system(t)
	if _, err := s.StartScaler(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "failover", idle: true, startupDelay: time.Second})
	waitAtZero(t, c, ns, "failover")
	keepUp(t, c, ns, "failover")

	done := make(chan []result, 1)
	go func() { done <- coldRequests(s.ProxyURL, "failover."+ns, 10) }()
	waitFor(t, 10*time.Second, "requests held", func() bool {
		v, _ := metricValue(t, s.ExtProcMetricsURL, `elasti_extproc_held_requests{namespace="`+ns+`"`)
		return v > 0
	})
	s.KillScaler(0)

	ok, failed := countOK(<-done)
	if ok != 10 {
		t.Errorf("%d of 10 held requests succeeded after the leader was killed (failures %v), want all", ok, failed)
	}
}

// TestActivationWaitsForNewLeader: the leading elasti-scaler is killed before
// anything is held, so the activation calls of a cold start find no leader (the
// replica left answers UNAVAILABLE until the lease it waits for expires).
// elasti-extproc keeps calling while the requests are held, and the activation
// lands once the new leader is elected: every request succeeds.
func TestActivationWaitsForNewLeader(t *testing.T) {
	c, s := system(t)
	ns := c.NewNamespace(t)
	deploy(t, c, ns, app{name: "leaderless", idle: true})
	waitAtZero(t, c, ns, "leaderless")
	keepUp(t, c, ns, "leaderless")

	if _, err := s.StartScaler(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	s.KillScaler(0)
	s.KillScaler(1)

	results := coldRequests(s.ProxyURL, "leaderless."+ns, 10)
	ok, failed := countOK(results)
	if ok != 10 {
		t.Fatalf("%d of 10 held requests succeeded across the leader election (failures %v), want all", ok, failed)
	}
	t.Logf("served %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
}
