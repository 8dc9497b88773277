package extproc

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/go-logr/logr"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// FuzzDecide drives the request-to-decision path with arbitrary attributes and
// headers. It checks that nothing panics, that a request is never held or
// answered for a Service other than the one its cluster or route attribute
// names, and that the Host header never selects a target.
func FuzzDecide(f *testing.F) {
	f.Add("outbound|80||a.ns.svc.cluster.local", "elasti-hold", "GET", "/healthz", "b.ns.svc", false)
	f.Add("outbound|80||b.ns.svc.cluster.local", "", "POST", "/x?y=1", "a.ns.svc.cluster.local", true)
	f.Add("", "elasti-hold.ns.a", "HEAD", "/", "", false)
	f.Add("outbound|||", "elasti-hold.", "", "?", "\x00", false)
	f.Add("inbound|80||a.ns.svc.cluster.local", "x", "GET", "/healthz/../x", "a", true)

	probe := v1alpha1.ProbeResponseRule{
		Path:     &v1alpha1.ProbePathMatch{Type: v1alpha1.PathMatchPrefix, Value: "/healthz"},
		Response: v1alpha1.ProbeResponse{Status: 200},
	}
	targets := map[ServiceKey]*Target{}
	for _, name := range []string{"a", "b"} {
		t := NewTarget(logr.Discard(), testES("ns", name, probe))
		targets[t.Service] = t
	}

	f.Fuzz(func(t *testing.T, cluster, route, method, path, host string, ready bool) {
		attrs, err := structpb.NewStruct(map[string]any{
			ClusterNameAttribute: cluster, RouteNameAttribute: route})
		if err != nil {
			t.Skip("not valid UTF-8 for a protobuf string")
		}
		pr := &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
				Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
					{Key: ":method", RawValue: []byte(method)},
					{Key: ":path", Value: path},
					{Key: ":authority", RawValue: []byte(host)},
					{Key: "host", RawValue: []byte(host)},
				}},
			}},
			Attributes: map[string]*structpb.Struct{FilterAttributesKey: attrs},
		}
		req := RequestFromProcessing(pr)
		d := Decide(&req, func(k ServiceKey) Snapshot {
			return Snapshot{Target: targets[k], Ready: ready}
		})

		want, wantOK := ParseClusterName(cluster)
		if !wantOK {
			want, wantOK = ParseRouteName(route)
		}
		if d.Action == ActionContinue {
			return
		}
		if !wantOK || d.Target == nil || d.Target.Service != want {
			t.Fatalf("Decide() = %v for %v, but the attributes name %v (ok %v)",
				d.Action, d.Target, want, wantOK)
		}
		if ready {
			t.Fatalf("Decide() = %v for a ready service", d.Action)
		}
		if d.Action == ActionRespond && d.Response == nil {
			t.Fatal("Decide() = respond without a response")
		}
	})
}
