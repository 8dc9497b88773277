package extproc

import (
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseClusterName(t *testing.T) {
	tests := []struct {
		cluster string
		want    ServiceKey
		wantOK  bool
	}{
		{"outbound|80||api.shop.svc.cluster.local", ServiceKey{"shop", "api"}, true},
		{"outbound|8080|v1|api.shop.svc.example.org", ServiceKey{"shop", "api"}, true},
		{"outbound|80||api.shop.svc", ServiceKey{"shop", "api"}, true},
		{"inbound|8080||", ServiceKey{}, false},
		{"outbound|80||api.shop.example.com", ServiceKey{}, false},
		{"outbound|80||api.shop", ServiceKey{}, false},
		{"outbound||| api.shop.svc.cluster.local", ServiceKey{}, false},
		{"outbound|80||API.shop.svc.cluster.local", ServiceKey{}, false},
		{"PassthroughCluster", ServiceKey{}, false},
		{"", ServiceKey{}, false},
		{"outbound|80||-a.shop.svc.cluster.local", ServiceKey{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.cluster, func(t *testing.T) {
			got, ok := ParseClusterName(tt.cluster)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseClusterName(%q) = %v, %v, want %v, %v", tt.cluster, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTargetFromAttributes(t *testing.T) {
	attrs := func(key string, kv map[string]any) map[string]*structpb.Struct {
		s, err := structpb.NewStruct(kv)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*structpb.Struct{key: s}
	}
	tests := []struct {
		name   string
		attrs  map[string]*structpb.Struct
		want   ServiceKey
		wantOK bool
	}{
		{"cluster", attrs(FilterAttributesKey, map[string]any{
			ClusterNameAttribute: "outbound|80||a.ns.svc.cluster.local"}), ServiceKey{"ns", "a"}, true},
		{"cluster wins over route", attrs(FilterAttributesKey, map[string]any{
			ClusterNameAttribute: "outbound|80||a.ns.svc.cluster.local",
			RouteNameAttribute:   "elasti-hold.other.b"}), ServiceKey{"ns", "a"}, true},
		{"route when no cluster", attrs(FilterAttributesKey, map[string]any{
			RouteNameAttribute: "elasti-hold.other.b"}), ServiceKey{"other", "b"}, true},
		{"plain hold route names nothing", attrs(FilterAttributesKey, map[string]any{
			RouteNameAttribute: HoldRouteName}), ServiceKey{}, false},
		{"other filter name", attrs("ext_proc.custom", map[string]any{
			ClusterNameAttribute: "outbound|80||a.ns.svc.cluster.local"}), ServiceKey{"ns", "a"}, true},
		{"non-string attribute", attrs(FilterAttributesKey, map[string]any{
			ClusterNameAttribute: 42.0}), ServiceKey{}, false},
		{"unknown attributes only", attrs(FilterAttributesKey, map[string]any{
			"request.host": "a.ns.svc.cluster.local"}), ServiceKey{}, false},
		{"nil struct", map[string]*structpb.Struct{FilterAttributesKey: nil}, ServiceKey{}, false},
		{"none", nil, ServiceKey{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TargetFromAttributes(tt.attrs)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("TargetFromAttributes() = %v, %v, want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
