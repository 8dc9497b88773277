package cluster_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/podnet"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// TestPrometheusScrapesPods checks that Prometheus scrapes a pod's process that the
// harness started, so trigger queries can run against real data.
func TestPrometheusScrapesPods(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deploy(t, c, newDeployment(ns, 1, testapp.ContainerOptions{}))
	ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const requests = 5
	for range requests {
		if code, _, _, err := get(t.Context(), ips[0], "/"); err != nil || code != http.StatusOK {
			t.Fatalf("GET / = %d, %v, want 200", code, err)
		}
	}
	lo, _ := podnet.Loopback(ips[0])
	if err := c.AddScrapeTarget(ns, netip.AddrPortFrom(lo, appPort).String()); err != nil {
		t.Fatal(err)
	}

	query := `sum(testapp_requests_total{job="` + ns + `",route="GET /{$}"})`
	var got float64
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			v, ok, err := queryScalar(ctx, c.PrometheusURL, query)
			if err != nil || !ok {
				return false, nil
			}
			got = v
			return v >= requests, nil
		})
	if err != nil {
		t.Fatalf("query %s = %v, want >= %d: %v", query, got, requests, err)
	}
}

// queryScalar runs an instant query and returns the value of its first sample.
func queryScalar(ctx context.Context, base, query string) (float64, bool, error) {
	u := base + "/api/v1/query?query=" + url.QueryEscape(query)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, false, err
	}
	if body.Status != "success" || len(body.Data.Result) == 0 {
		return 0, false, nil
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil, err
}
