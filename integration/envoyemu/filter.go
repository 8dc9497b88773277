package envoyemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1alpha3"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// extProcFilterName is the HTTP filter name ext_proc is configured under; Envoy
// keys per-route configs and request attributes by it.
const extProcFilterName = "envoy.filters.http.ext_proc"

// FilterConfig is what an EnvoyFilter tells a proxy about ext_proc: the
// filter's own config and the per-route overrides, by route name.
type FilterConfig struct {
	// ExtProc is the filter config; nil when the EnvoyFilter inserts no ext_proc
	// filter for the proxy's context.
	ExtProc *extprocv3.ExternalProcessor
	// PerRoute holds ExtProcPerRoute configs by route name.
	PerRoute map[string]*extprocv3.ExtProcPerRoute
}

// LoadFilterConfig reads the EnvoyFilters in a YAML file and returns what they
// configure for proxies of the given patch context (SIDECAR_OUTBOUND or GATEWAY).
func LoadFilterConfig(path string, context networkingv1alpha3.EnvoyFilter_PatchContext) (*FilterConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open EnvoyFilter file: %w", err)
	}
	defer f.Close()

	cfg := &FilterConfig{PerRoute: map[string]*extprocv3.ExtProcPerRoute{}}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return cfg, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read %q: %w", path, err)
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil || meta.Kind != "EnvoyFilter" {
			continue
		}
		ef := &istionetworking.EnvoyFilter{}
		if err := yaml.Unmarshal(doc, ef); err != nil {
			return nil, fmt.Errorf("failed to decode EnvoyFilter in %q: %w", path, err)
		}
		if err := cfg.add(&ef.Spec, context); err != nil {
			return nil, fmt.Errorf("EnvoyFilter %q: %w", ef.Name, err)
		}
	}
}

// add applies the patches of one EnvoyFilter that target the context.
func (c *FilterConfig) add(ef *networkingv1alpha3.EnvoyFilter, context networkingv1alpha3.EnvoyFilter_PatchContext) error {
	for i, p := range ef.ConfigPatches {
		ctx := p.GetMatch().GetContext()
		if ctx != networkingv1alpha3.EnvoyFilter_ANY && ctx != context {
			continue
		}
		var err error
		switch p.ApplyTo {
		case networkingv1alpha3.EnvoyFilter_HTTP_FILTER:
			err = c.addFilter(p.GetPatch().GetValue())
		case networkingv1alpha3.EnvoyFilter_HTTP_ROUTE:
			name := p.GetMatch().GetRouteConfiguration().GetVhost().GetRoute().GetName()
			err = c.addPerRoute(name, p.GetPatch().GetValue())
		}
		if err != nil {
			return fmt.Errorf("configPatches[%d]: %w", i, err)
		}
	}
	return nil
}

func (c *FilterConfig) addFilter(value *structpb.Struct) error {
	if value.GetFields()["name"].GetStringValue() != extProcFilterName {
		return nil
	}
	typed := value.GetFields()["typed_config"].GetStructValue()
	if typed == nil {
		typed = value.GetFields()["typedConfig"].GetStructValue()
	}
	cfg := &extprocv3.ExternalProcessor{}
	if err := decodeTyped(typed, cfg); err != nil {
		return fmt.Errorf("failed to decode the ext_proc filter config: %w", err)
	}
	c.ExtProc = cfg
	return nil
}

func (c *FilterConfig) addPerRoute(routeName string, value *structpb.Struct) error {
	perFilter := value.GetFields()["typed_per_filter_config"].GetStructValue()
	if perFilter == nil {
		perFilter = value.GetFields()["typedPerFilterConfig"].GetStructValue()
	}
	typed := perFilter.GetFields()[extProcFilterName].GetStructValue()
	if typed == nil {
		return nil
	}
	if routeName == "" {
		return errors.New("an ext_proc per-route patch must match a route by name")
	}
	cfg := &extprocv3.ExtProcPerRoute{}
	if err := decodeTyped(typed, cfg); err != nil {
		return fmt.Errorf("failed to decode the ext_proc per-route config: %w", err)
	}
	c.PerRoute[routeName] = cfg
	return nil
}

// decodeTyped decodes an Any written as JSON with "@type" into msg, checking
// that the type is msg's.
func decodeTyped(s *structpb.Struct, msg proto.Message) error {
	if s == nil {
		return errors.New("missing typed_config")
	}
	fields := map[string]*structpb.Value{}
	for k, v := range s.GetFields() {
		fields[k] = v
	}
	want := "type.googleapis.com/" + string(msg.ProtoReflect().Descriptor().FullName())
	if got := fields["@type"].GetStringValue(); got != want {
		return fmt.Errorf("@type is %q, want %q", got, want)
	}
	delete(fields, "@type")
	data, err := protojson.Marshal(&structpb.Struct{Fields: fields})
	if err != nil {
		return err
	}
	return protojson.Unmarshal(data, msg)
}
