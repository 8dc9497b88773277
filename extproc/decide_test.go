package extproc

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// testES returns an ElastiService for Service ns/svc with the given probe rules.
func testES(ns, svc string, probes ...v1alpha1.ProbeResponseRule) *v1alpha1.ElastiService {
	return &v1alpha1.ElastiService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-es"},
		Spec: v1alpha1.ElastiServiceSpec{
			Service:        svc,
			ScaleTargetRef: v1alpha1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: svc},
			ProbeResponse:  probes,
		},
	}
}

func TestDecide(t *testing.T) {
	health := v1alpha1.ProbeResponseRule{
		Method:   "GET",
		Path:     &v1alpha1.ProbePathMatch{Type: v1alpha1.PathMatchExact, Value: "/healthz"},
		Response: v1alpha1.ProbeResponse{Status: 200, Body: `{"ok":true}`},
	}
	a := NewTarget(logr.Discard(), testES("ns", "a", health))
	lookup := func(ready bool) func(ServiceKey) Snapshot {
		return func(k ServiceKey) Snapshot {
			if k == a.Service {
				return Snapshot{Target: a, Ready: ready}
			}
			return Snapshot{}
		}
	}
	tests := []struct {
		name       string
		req        Request
		ready      bool
		want       Action
		wantStatus int
	}{
		{"no target", Request{Method: "GET", Path: "/"}, false, ActionContinue, 0},
		{"unknown service", Request{Target: ServiceKey{"ns", "b"}}, false, ActionContinue, 0},
		{"ready", Request{Target: a.Service, Method: "GET", Path: "/x"}, true, ActionContinue, 0},
		{"not ready holds", Request{Target: a.Service, Method: "GET", Path: "/x"}, false, ActionHold, 0},
		{"probe answered", Request{Target: a.Service, Method: "GET", Path: "/healthz"}, false,
			ActionRespond, 200},
		{"probe wrong method holds", Request{Target: a.Service, Method: "POST", Path: "/healthz"},
			false, ActionHold, 0},
		{"ready probe goes to service", Request{Target: a.Service, Method: "GET", Path: "/healthz"},
			true, ActionContinue, 0},
		{"host header is not a target", Request{Method: "GET", Path: "/",
			Headers: []Header{{":authority", "a.ns.svc.cluster.local"}}}, false, ActionContinue, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(&tt.req, lookup(tt.ready))
			if got.Action != tt.want {
				t.Fatalf("Decide() = %v, want %v", got.Action, tt.want)
			}
			if tt.wantStatus != 0 && got.Response.Status != tt.wantStatus {
				t.Errorf("Decide() status = %d, want %d", got.Response.Status, tt.wantStatus)
			}
		})
	}
}

func TestProbeRuleMatches(t *testing.T) {
	rule := func(m string, typ v1alpha1.PathMatchType, path string) v1alpha1.ProbeResponseRule {
		r := v1alpha1.ProbeResponseRule{Method: m, Response: v1alpha1.ProbeResponse{Status: 200}}
		if path != "" {
			r.Path = &v1alpha1.ProbePathMatch{Type: typ, Value: path}
		}
		return r
	}
	withHeaders := rule("", "", "")
	withHeaders.Headers = []v1alpha1.NameValue{{Name: "User-Agent", Value: "kube-probe/1.37"}}
	withQuery := rule("", v1alpha1.PathMatchExact, "/h")
	withQuery.QueryParams = []v1alpha1.NameValue{{Name: "full", Value: "1"}}

	tests := []struct {
		name string
		rule v1alpha1.ProbeResponseRule
		req  Request
		want bool
	}{
		{"default matches all", rule("", "", ""), Request{Method: "PUT", Path: "/a/b"}, true},
		{"exact", rule("", v1alpha1.PathMatchExact, "/h"), Request{Path: "/h"}, true},
		{"exact other", rule("", v1alpha1.PathMatchExact, "/h"), Request{Path: "/h/"}, false},
		{"prefix element", rule("", v1alpha1.PathMatchPrefix, "/api"), Request{Path: "/api/v1"}, true},
		{"prefix itself", rule("", v1alpha1.PathMatchPrefix, "/api/"), Request{Path: "/api"}, true},
		{"prefix partial element", rule("", v1alpha1.PathMatchPrefix, "/api"), Request{Path: "/apis"},
			false},
		{"regex whole", rule("", v1alpha1.PathMatchRegularExpression, "/v[0-9]+/health"),
			Request{Path: "/v2/health"}, true},
		{"regex anchored", rule("", v1alpha1.PathMatchRegularExpression, "/v[0-9]+"),
			Request{Path: "/v2/health"}, false},
		{"bad regex matches nothing", rule("", v1alpha1.PathMatchRegularExpression, "(["),
			Request{Path: "(["}, false},
		{"method", rule("HEAD", "", ""), Request{Method: "GET", Path: "/"}, false},
		{"header any case", withHeaders, Request{Path: "/",
			Headers: []Header{{"user-agent", "kube-probe/1.37"}}}, true},
		{"header value differs", withHeaders, Request{Path: "/",
			Headers: []Header{{"user-agent", "curl"}}}, false},
		{"query", withQuery, Request{Path: "/h", RawQuery: "a=2&full=1"}, true},
		{"query missing", withQuery, Request{Path: "/h", RawQuery: "a=2"}, false},
		{"query malformed", withQuery, Request{Path: "/h", RawQuery: "%zz&full=1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := testES("ns", "a", tt.rule)
			target := NewTarget(logr.Discard(), es)
			got := false
			for i := range target.probes {
				got = got || target.probes[i].matches(&tt.req)
			}
			if got != tt.want {
				t.Errorf("matches(%+v) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}

func TestHoldTimeouts(t *testing.T) {
	opts := Options{MaxMessageTimeout: 90 * time.Second, TimeoutMargin: 5 * time.Second}.WithDefaults()
	tests := []struct {
		hold                   time.Duration
		wantHold, wantOverride time.Duration
	}{
		{60 * time.Second, 60 * time.Second, 65 * time.Second},
		{5 * time.Minute, 85 * time.Second, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.hold.String(), func(t *testing.T) {
			hold, override := opts.holdTimeouts(&Target{HoldTimeout: tt.hold})
			if hold != tt.wantHold || override != tt.wantOverride {
				t.Errorf("holdTimeouts() = %v, %v, want %v, %v", hold, override, tt.wantHold,
					tt.wantOverride)
			}
		})
	}
}
