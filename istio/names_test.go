package istio

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestTargetHosts(t *testing.T) {
	tg := newTarget("shop", "reviews", "corp.local")
	tests := []struct {
		host, vsNamespace string
		isHost, covered   bool
	}{
		{"reviews", "shop", true, true},
		{"reviews", "other", false, false},
		{"reviews.shop", "other", true, true},
		{"reviews.shop.svc", "other", true, true},
		{"reviews.shop.svc.corp.local", "other", true, true},
		{"Reviews.Shop.svc.corp.local.", "other", true, true},
		{"reviews.shop.svc.cluster.local", "shop", false, false},
		{"ratings.shop.svc.corp.local", "shop", false, false},
		{"*.shop.svc.corp.local", "other", false, true},
		{"*.svc.corp.local", "other", false, true},
		{"*.example.com", "shop", false, false},
		{"*", "other", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.host+" in "+tt.vsNamespace, func(t *testing.T) {
			if got := tg.isHost(tt.host, tt.vsNamespace); got != tt.isHost {
				t.Errorf("isHost(%q, %q) = %v, want %v", tt.host, tt.vsNamespace, got, tt.isHost)
			}
			if got := tg.coveredBy(tt.host, tt.vsNamespace); got != tt.covered {
				t.Errorf("coveredBy(%q, %q) = %v, want %v", tt.host, tt.vsNamespace, got, tt.covered)
			}
		})
	}
}

// The bookkeeping lines entries up with hold routes by order, ignores what it cannot
// match, and refuses an annotation it cannot read.
func TestReadBook(t *testing.T) {
	routes := []any{
		map[string]any{"name": HoldRouteName},
		map[string]any{"name": "plain"},
		map[string]any{"name": HoldRouteName},
	}
	name := "orig"
	tests := []struct {
		name       string
		annotation string
		want       book
		wantErr    bool
	}{
		{"none", "", book{{}, nil, {}}, false},
		{"aligned", `[{"name":"orig","services":["a/b"]},{"name":null,"services":[]}]`,
			book{{Name: &name, Services: []string{"a/b"}}, nil, {Services: []string{}}}, false},
		{"fewer entries", `[{"name":"orig","services":["a/b"]}]`,
			book{{Name: &name, Services: []string{"a/b"}}, nil, {}}, false},
		{"more entries", `[{"name":"orig","services":["a/b"]},{"services":[]},{"services":["x/y"]}]`,
			book{{Name: &name, Services: []string{"a/b"}}, nil, {Services: []string{}}}, false},
		{"corrupt", `{`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := &unstructured.Unstructured{Object: map[string]any{}}
			if tt.annotation != "" {
				vs.SetAnnotations(map[string]string{HeldRoutesAnnotation: tt.annotation})
			}
			got, err := readBook(vs, routes)
			if (err != nil) != tt.wantErr {
				t.Fatalf("readBook() error = %v, want error %v", err, tt.wantErr)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("readBook() = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    RouteSwitchOptions
		wantErr bool
	}{
		{"zero", RouteSwitchOptions{}, false},
		{"set", RouteSwitchOptions{ClusterDomain: "corp.local", Namespaces: []string{"a", "b"}}, false},
		{"bad domain", RouteSwitchOptions{ClusterDomain: "Corp_Local"}, true},
		{"bad namespace", RouteSwitchOptions{Namespaces: []string{"A/B"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
