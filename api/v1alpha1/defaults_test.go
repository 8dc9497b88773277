package v1alpha1_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	neturl "net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

func minimal(ns, name string) *v1alpha1.ElastiService {
	return &v1alpha1.ElastiService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ElastiServiceSpec{
			Service: name,
			ScaleTargetRef: v1alpha1.ScaleTargetRef{
				APIVersion: "apps/v1", Kind: "Deployment", Name: name,
			},
		},
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ns := newNamespace(t)
	es := minimal(ns, "web")
	es.Spec.EnabledPeriod = &v1alpha1.EnabledPeriod{}
	es.Spec.ProbeResponse = []v1alpha1.ProbeResponseRule{{
		Path:     &v1alpha1.ProbePathMatch{Value: "/healthz"},
		Response: v1alpha1.ProbeResponse{Status: 200},
	}}
	if err := k8s.Create(context.Background(), es); err != nil {
		t.Fatal(err)
	}

	got := &v1alpha1.ElastiService{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(es), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.MinTargetReplicas != 1 {
		t.Errorf("minTargetReplicas = %d, want 1", s.MinTargetReplicas)
	}
	if s.CooldownPeriod == nil || *s.CooldownPeriod != 900 {
		t.Errorf("cooldownPeriod = %v, want 900", s.CooldownPeriod)
	}
	if s.HoldTimeout == nil || s.HoldTimeout.Duration != time.Minute {
		t.Errorf("holdTimeout = %v, want 1m", s.HoldTimeout)
	}
	if s.MaxHeldRequests != 1000 {
		t.Errorf("maxHeldRequests = %d, want 1000", s.MaxHeldRequests)
	}
	if p := s.EnabledPeriod; p.Schedule != "0 0 * * *" || p.Duration != "24h" {
		t.Errorf("enabledPeriod = %+v, want schedule %q and duration %q", *p, "0 0 * * *", "24h")
	}
	if typ := s.ProbeResponse[0].Path.Type; typ != v1alpha1.PathMatchPrefix {
		t.Errorf("probeResponse[0].path.type = %q, want %q", typ, v1alpha1.PathMatchPrefix)
	}
}

func TestExplicitZeroCooldownIsKept(t *testing.T) {
	ns := newNamespace(t)
	es := minimal(ns, "web")
	es.Spec.CooldownPeriod = ptr.To[int32](0)
	if err := k8s.Create(context.Background(), es); err != nil {
		t.Fatal(err)
	}

	// An update through the Go types must not turn the explicit 0 into the default.
	es.Spec.MinTargetReplicas = 2
	if err := k8s.Update(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.ElastiService{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(es), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.CooldownPeriod == nil || *got.Spec.CooldownPeriod != 0 {
		t.Errorf("cooldownPeriod = %v, want 0", got.Spec.CooldownPeriod)
	}
	if got.Spec.Cooldown() != 0 {
		t.Errorf("Cooldown() = %v, want 0", got.Spec.Cooldown())
	}
}

func TestStatusChangesOnlyThroughSubresource(t *testing.T) {
	ns := newNamespace(t)
	es := minimal(ns, "web")
	if err := k8s.Create(context.Background(), es); err != nil {
		t.Fatal(err)
	}

	// A write of the main resource ignores status.
	es.Status.Mode = v1alpha1.ModeHold
	es.Spec.MinTargetReplicas = 3
	if err := k8s.Update(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.ElastiService{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(es), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Mode != "" || got.Spec.MinTargetReplicas != 3 {
		t.Fatalf("after Update: mode %q, minTargetReplicas %d; want mode unset, 3",
			got.Status.Mode, got.Spec.MinTargetReplicas)
	}

	// A write of the status subresource ignores spec.
	got.Status.Mode = v1alpha1.ModeHold
	got.Status.ObservedGeneration = got.Generation
	got.Spec.MinTargetReplicas = 5
	if err := k8s.Status().Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	after := &v1alpha1.ElastiService{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(es), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.Mode != v1alpha1.ModeHold || after.Spec.MinTargetReplicas != 3 {
		t.Errorf("after Status().Update: mode %q, minTargetReplicas %d; want %q, 3",
			after.Status.Mode, after.Spec.MinTargetReplicas, v1alpha1.ModeHold)
	}
	if after.Generation != got.Generation {
		t.Errorf("generation = %d after a status write, want %d", after.Generation, got.Generation)
	}
}

func TestPrinterColumns(t *testing.T) {
	ns := newNamespace(t)
	es := minimal(ns, "web")
	if err := k8s.Create(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	es.Status.Mode = v1alpha1.ModeHold
	es.Status.LastScaledUpTime = &metav1.Time{Time: time.Now().Add(-time.Hour)}
	es.Status.Conditions = []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Reconciled",
		LastTransitionTime: metav1.Now(),
	}}
	if err := k8s.Status().Update(context.Background(), es); err != nil {
		t.Fatal(err)
	}

	table := getTable(t, "/apis/elasti.truefoundry.com/v1alpha1/namespaces/"+ns+"/elastiservices")
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	want := []string{"Name", "Target", "Mode", "Ready", "Last Scale Up", "Age"}
	if len(names) != len(want) {
		t.Fatalf("columns = %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("columns = %q, want %q", names, want)
		}
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d, want 1", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	if cells[1] != "web" || cells[2] != "hold" || cells[3] != "True" || cells[4] != "60m" {
		t.Errorf("row = %v, want target web, mode hold, ready True, last scale up 60m", cells)
	}
}

// getTable fetches a list the way kubectl get does, as a server-side Table.
func getTable(t *testing.T, path string) *metav1.Table {
	t.Helper()
	httpClient, err := restHTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	url, err := neturl.JoinPath(restConfig.Host, path)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s: %s", path, resp.Status, body)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(body, table); err != nil {
		t.Fatalf("failed to decode the table: %v", err)
	}
	return table
}
