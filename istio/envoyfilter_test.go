package istio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// envoyFilterPatch is one entry of an EnvoyFilter's spec.configPatches.
type envoyFilterPatch struct {
	ApplyTo string `json:"applyTo"`
	Match   struct {
		Context            string `json:"context"`
		RouteConfiguration struct {
			Vhost struct {
				Route struct {
					Name string `json:"name"`
				} `json:"route"`
			} `json:"vhost"`
		} `json:"routeConfiguration"`
	} `json:"match"`
	Patch struct {
		Operation string         `json:"operation"`
		Value     map[string]any `json:"value"`
	} `json:"patch"`
}

// readEnvoyFilter returns the patches of the shipped EnvoyFilter.
func readEnvoyFilter(t *testing.T) []envoyFilterPatch {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "istio", "envoyfilter.yaml"))
	if err != nil {
		t.Fatalf("failed to read the EnvoyFilter: %v", err)
	}
	var ef struct {
		Spec struct {
			ConfigPatches []envoyFilterPatch `json:"configPatches"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &ef); err != nil {
		t.Fatalf("failed to decode the EnvoyFilter: %v", err)
	}
	return ef.Spec.ConfigPatches
}

// decodeFilter turns an HTTP_FILTER patch value into Envoy's types the way Istio
// does (struct, to JSON with proto field names, to the message, unknown fields
// rejected) and validates it and its ext_proc config with protoc-gen-validate.
func decodeFilter(value map[string]any) (*extprocv3.ExternalProcessor, error) {
	filter := &hcmv3.HttpFilter{}
	if err := unmarshalValue(value, filter); err != nil {
		return nil, err
	}
	if err := filter.ValidateAll(); err != nil {
		return nil, err
	}
	cfg := &extprocv3.ExternalProcessor{}
	if err := filter.GetTypedConfig().UnmarshalTo(cfg); err != nil {
		return nil, err
	}
	return cfg, cfg.ValidateAll()
}

// decodeRoute merges an HTTP_ROUTE patch value into an Istio-like route the way
// Istio's MERGE does, validates the result and returns its ext_proc per-route config.
func decodeRoute(value map[string]any) (*extprocv3.ExtProcPerRoute, error) {
	patch := &routev3.Route{}
	if err := unmarshalValue(value, patch); err != nil {
		return nil, err
	}
	route := &routev3.Route{
		Name:  HoldRouteName,
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "outbound|80||demo.elasti-demo.svc.cluster.local"},
		}},
	}
	proto.Merge(route, patch)
	if err := route.ValidateAll(); err != nil {
		return nil, err
	}
	perRoute := &extprocv3.ExtProcPerRoute{}
	if err := route.GetTypedPerFilterConfig()[ExtProcFilterName].UnmarshalTo(perRoute); err != nil {
		return nil, err
	}
	return perRoute, perRoute.ValidateAll()
}

func unmarshalValue(value map[string]any, m proto.Message) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(raw, m)
}

// The shipped filter decodes into go-control-plane's types, passes their
// validation, and says what the rest of the project relies on.
func TestEnvoyFilterFilterPatches(t *testing.T) {
	var contexts []string
	for _, p := range readEnvoyFilter(t) {
		if p.ApplyTo != "HTTP_FILTER" {
			continue
		}
		contexts = append(contexts, p.Match.Context)
		if p.Patch.Operation != "INSERT_BEFORE" {
			t.Errorf("%s filter operation = %q, want INSERT_BEFORE", p.Match.Context, p.Patch.Operation)
		}
		cfg, err := decodeFilter(p.Patch.Value)
		if err != nil {
			t.Fatalf("%s filter: %v", p.Match.Context, err)
		}

		if got := cfg.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != ExtProcCluster {
			t.Errorf("grpc cluster = %q, want %q", got, ExtProcCluster)
		}
		mode := cfg.GetProcessingMode()
		if mode.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP ||
			mode.GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP ||
			mode.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE ||
			mode.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE {
			t.Errorf("default processing mode = %v, want headers SKIP and bodies NONE", mode)
		}
		if got := cfg.GetMessageTimeout().AsDuration(); got != ExtProcMessageTimeout {
			t.Errorf("message_timeout = %v, want %v", got, ExtProcMessageTimeout)
		}
		if got := cfg.GetMaxMessageTimeout().AsDuration(); got != ExtProcMaxMessageTimeout {
			t.Errorf("max_message_timeout = %v, want %v", got, ExtProcMaxMessageTimeout)
		}
		if cfg.GetFailureModeAllow() != ExtProcFailureModeAllow {
			t.Errorf("failure_mode_allow = %v, want %v", cfg.GetFailureModeAllow(), ExtProcFailureModeAllow)
		}
		if got := cfg.GetRequestAttributes(); !slices.Equal(got, ExtProcRequestAttributes()) {
			t.Errorf("request_attributes = %v, want %v", got, ExtProcRequestAttributes())
		}
	}
	slices.Sort(contexts)
	if want := []string{"GATEWAY", "SIDECAR_OUTBOUND"}; !slices.Equal(contexts, want) {
		t.Errorf("filter contexts = %v, want %v", contexts, want)
	}
}

// The per-route patches turn on request headers, and only them, on the hold route.
func TestEnvoyFilterRoutePatches(t *testing.T) {
	var contexts []string
	for _, p := range readEnvoyFilter(t) {
		if p.ApplyTo != "HTTP_ROUTE" {
			continue
		}
		contexts = append(contexts, p.Match.Context)
		if got := p.Match.RouteConfiguration.Vhost.Route.Name; got != HoldRouteName {
			t.Errorf("%s route match name = %q, want %q", p.Match.Context, got, HoldRouteName)
		}
		if p.Patch.Operation != "MERGE" {
			t.Errorf("%s route operation = %q, want MERGE", p.Match.Context, p.Patch.Operation)
		}
		perRoute, err := decodeRoute(p.Patch.Value)
		if err != nil {
			t.Fatalf("%s route: %v", p.Match.Context, err)
		}
		mode := perRoute.GetOverrides().GetProcessingMode()
		if mode.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND ||
			mode.GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP ||
			mode.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE ||
			mode.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE ||
			mode.GetRequestTrailerMode() != extprocv3.ProcessingMode_SKIP ||
			mode.GetResponseTrailerMode() != extprocv3.ProcessingMode_SKIP {
			t.Errorf("hold route processing mode = %v, want request headers SEND and nothing else", mode)
		}
	}
	slices.Sort(contexts)
	if want := []string{"GATEWAY", "SIDECAR_OUTBOUND"}; !slices.Equal(contexts, want) {
		t.Errorf("route contexts = %v, want %v", contexts, want)
	}
}

// The checks above can fail: broken copies of the shipped patches are rejected.
func TestEnvoyFilterChecksRejectBrokenPatches(t *testing.T) {
	var filter, route map[string]any
	for _, p := range readEnvoyFilter(t) {
		switch p.ApplyTo {
		case "HTTP_FILTER":
			filter = p.Patch.Value
		case "HTTP_ROUTE":
			route = p.Patch.Value
		}
	}
	tests := []struct {
		name   string
		value  map[string]any
		mutate func(cfg map[string]any)
		check  func(map[string]any) error
	}{
		{"message timeout over Envoy's limit", filter, func(c map[string]any) { c["message_timeout"] = "4000s" }, filterCheck},
		{"unknown processing mode", filter, func(c map[string]any) {
			c["processing_mode"].(map[string]any)["request_header_mode"] = "SOMETIMES"
		}, filterCheck},
		{"misspelt field", filter, func(c map[string]any) { c["failure_mode_alow"] = true }, filterCheck},
		{"per-route body mode unknown", route, func(c map[string]any) {
			c["overrides"].(map[string]any)["processing_mode"].(map[string]any)["request_body_mode"] = "ALL"
		}, routeCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := deepCopyJSON(t, tt.value)
			tt.mutate(configOf(value))
			if err := tt.check(value); err == nil {
				t.Errorf("check of broken patch = nil, want an error")
			}
		})
	}
}

func filterCheck(v map[string]any) error { _, err := decodeFilter(v); return err }
func routeCheck(v map[string]any) error  { _, err := decodeRoute(v); return err }

// configOf returns the ext_proc config inside a filter or route patch value.
func configOf(value map[string]any) map[string]any {
	if tc, ok := value["typed_config"].(map[string]any); ok {
		return tc
	}
	return value["typed_per_filter_config"].(map[string]any)[ExtProcFilterName].(map[string]any)
}

func deepCopyJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
