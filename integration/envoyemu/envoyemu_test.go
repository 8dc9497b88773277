package envoyemu_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/envoyemu"
	"github.com/elasti-mesh/elasti/integration/testapp/echopb"
)

const holdRoute = "elasti-hold"

// holdFilter is the project's ext_proc arrangement: inert on every route,
// request headers sent on the hold route. change adjusts the filter config.
func holdFilter(change func(*extprocv3.ExternalProcessor)) *envoyemu.FilterConfig {
	skip := extprocv3.ProcessingMode_SKIP
	f := &extprocv3.ExternalProcessor{
		ProcessingMode:    &extprocv3.ProcessingMode{RequestHeaderMode: skip, ResponseHeaderMode: skip},
		RequestAttributes: []string{"xds.cluster_name", "xds.route_name"},
		MaxMessageTimeout: durationpb.New(10 * time.Second),
	}
	if change != nil {
		change(f)
	}
	return &envoyemu.FilterConfig{
		ExtProc: f,
		PerRoute: map[string]*extprocv3.ExtProcPerRoute{holdRoute: {
			Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
				ProcessingMode: &extprocv3.ProcessingMode{
					RequestHeaderMode: extprocv3.ProcessingMode_SEND, ResponseHeaderMode: skip,
				},
			}},
		}},
	}
}

// virtualService sends host's traffic to dest through one route named name,
// with an optional header match to other first.
func virtualService(ns, host, name, dest string) *istionetworking.VirtualService {
	vs := &istionetworking.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: ns},
	}
	vs.Spec.Hosts = []string{host}
	vs.Spec.Http = []*networkingv1alpha3.HTTPRoute{{
		Name:  name,
		Route: []*networkingv1alpha3.HTTPRouteDestination{{Destination: &networkingv1alpha3.Destination{Host: dest}}},
	}}
	return vs
}

// deployOnHoldRoute deploys the test app as name, with one replica, behind a
// VirtualService whose only route is the hold route.
func deployOnHoldRoute(t *testing.T, c *cluster.Cluster, ns, name string) {
	t.Helper()
	deployApp(t, c, ns, name, 1)
	if err := c.Client.Create(context.Background(), virtualService(ns, name, holdRoute, name)); err != nil {
		t.Fatal(err)
	}
}

func continueHeaders(mutation *extprocsvc.HeaderMutation, clearCache bool) *extprocsvc.ProcessingResponse {
	return &extprocsvc.ProcessingResponse{Response: &extprocsvc.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocsvc.HeadersResponse{Response: &extprocsvc.CommonResponse{
			HeaderMutation: mutation, ClearRouteCache: clearCache,
		}},
	}}
}

func override(d time.Duration) *extprocsvc.ProcessingResponse {
	return &extprocsvc.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
}

// answer reads request_headers, then sends each response after its delay.
func answer(steps ...step) func(extprocsvc.ExternalProcessor_ProcessServer) error {
	return func(stream extprocsvc.ExternalProcessor_ProcessServer) error {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		for _, s := range steps {
			select {
			case <-time.After(s.after):
			case <-stream.Context().Done():
				return nil
			}
			if s.resp == nil {
				return s.err
			}
			if err := stream.Send(s.resp); err != nil {
				return err
			}
		}
		<-stream.Context().Done()
		return nil
	}
}

type step struct {
	after time.Duration
	resp  *extprocsvc.ProcessingResponse
	err   error
}

func TestRouting(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployApp(t, c, ns, "alpha", 1)
	deployApp(t, c, ns, "beta", 1)

	vs := virtualService(ns, "alpha", "to-alpha", "alpha")
	vs.Spec.Http = append([]*networkingv1alpha3.HTTPRoute{{
		Name: "to-beta",
		Match: []*networkingv1alpha3.HTTPMatchRequest{{
			Headers: map[string]*networkingv1alpha3.StringMatch{
				"x-canary": {MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: "yes"}},
			},
		}, {
			Uri: &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Prefix{Prefix: "/status/"}},
		}},
		Route: []*networkingv1alpha3.HTTPRouteDestination{{Destination: &networkingv1alpha3.Destination{Host: "beta"}}},
	}}, vs.Spec.Http...)
	if err := c.Client.Create(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	p, base := startProxy(t, c, envoyemu.Options{SourceNamespace: ns})
	waitForRoute(t, p, "alpha", "to-alpha")

	tests := []struct {
		name, host, path string
		header           http.Header
		wantStatus       int
		wantApp          string
	}{
		{"default route of a service without VirtualService", "beta", "/", nil, 200, "beta"},
		{"fully qualified host", "beta." + ns + ".svc.cluster.local", "/", nil, 200, "beta"},
		{"last route of the VirtualService", "alpha", "/", nil, 200, "alpha"},
		{"header match wins by order", "alpha", "/", http.Header{"X-Canary": {"yes"}}, 200, "beta"},
		{"second match clause", "alpha." + ns, "/status/201", nil, 201, "beta"},
		{"header value must match", "alpha", "/", http.Header{"X-Canary": {"no"}}, 200, "alpha"},
		{"unknown host", "nowhere", "/", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitFor(t, func() bool {
				resp := get(t, base, tt.host, tt.path, tt.header)
				return resp.StatusCode == tt.wantStatus && servedBy(resp) == tt.wantApp
			})
		})
	}
}

func TestNoHealthyUpstreamAndEndpointLag(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployApp(t, c, ns, "lagged", 0)
	const lag = 1500 * time.Millisecond
	_, base := startProxy(t, c, envoyemu.Options{
		SourceNamespace: ns, EndpointLag: envoyemu.Lag{Min: lag, Max: lag},
	})

	resp := get(t, base, "lagged", "/", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || string(body) != "no healthy upstream" {
		t.Fatalf("with no endpoints: %d %q, want 503 %q", resp.StatusCode, body, "no healthy upstream")
	}

	scale(t, c, ns, "lagged", 1)
	waitEndpoints(t, c, ns, "lagged", 1)
	ready := time.Now()
	if resp := get(t, base, "lagged", "/", nil); resp.StatusCode != 503 {
		t.Errorf("right after the endpoint became ready in the API: %d, want 503 (lag %v)", resp.StatusCode, lag)
	}
	waitFor(t, func() bool { return get(t, base, "lagged", "/", nil).StatusCode == 200 })
	if waited := time.Since(ready); waited < lag-200*time.Millisecond {
		t.Errorf("served %v after the API had the endpoint, want about %v later", waited, lag)
	}
}

func TestExtProcOnlyOnHoldRoute(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployOnHoldRoute(t, c, ns, "held")
	deployApp(t, c, ns, "plain", 1)

	var gotAttrs map[string]string
	ep := startExtProc(t, func(stream extprocsvc.ExternalProcessor_ProcessServer) error {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		gotAttrs = map[string]string{}
		for k, v := range req.GetAttributes()["envoy.filters.http.ext_proc"].GetFields() {
			gotAttrs[k] = v.GetStringValue()
		}
		return stream.Send(continueHeaders(nil, false))
	})
	p, base := startProxy(t, c, envoyemu.Options{
		SourceNamespace: ns, Filter: holdFilter(nil), ExtProcAddress: ep.addr,
	})
	waitForRoute(t, p, "plain", "default")
	waitForRoute(t, p, "held", holdRoute)

	if resp := get(t, base, "plain", "/", nil); resp.StatusCode != 200 {
		t.Fatalf("plain route: %d, want 200", resp.StatusCode)
	}
	if n := ep.streams.Load(); n != 0 {
		t.Fatalf("ext_proc streams after requests on a plain route = %d, want 0", n)
	}
	if resp := get(t, base, "held", "/", nil); servedBy(resp) != "held" {
		t.Fatalf("hold route: %d from %q, want 200 from held", resp.StatusCode, servedBy(resp))
	}
	if ep.streams.Load() != 1 {
		t.Fatalf("ext_proc streams after one request on the hold route = %d, want 1", ep.streams.Load())
	}
	wantCluster := "outbound|80||held." + ns + ".svc.cluster.local"
	if gotAttrs["xds.cluster_name"] != wantCluster || gotAttrs["xds.route_name"] != holdRoute {
		t.Errorf("attributes = %v, want xds.cluster_name %q and xds.route_name %q",
			gotAttrs, wantCluster, holdRoute)
	}
}

func TestExtProcEnvoySemantics(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployApp(t, c, ns, "app", 1)
	deployApp(t, c, ns, "other", 1)
	vs := virtualService(ns, "app", holdRoute, "app")
	vs.Spec.Http = append([]*networkingv1alpha3.HTTPRoute{{
		Name: "to-other",
		Match: []*networkingv1alpha3.HTTPMatchRequest{{Headers: map[string]*networkingv1alpha3.StringMatch{
			"x-reroute": {MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: "1"}},
		}}},
		Route: []*networkingv1alpha3.HTTPRouteDestination{{Destination: &networkingv1alpha3.Destination{Host: "other"}}},
	}}, vs.Spec.Http...)
	if err := c.Client.Create(context.Background(), vs); err != nil {
		t.Fatal(err)
	}

	setReroute := &extprocsvc.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
		Header: &corev3.HeaderValue{Key: "x-reroute", RawValue: []byte("1")},
	}}}
	bothValues := &extprocsvc.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
		Header: &corev3.HeaderValue{Key: "x-a", Value: "1", RawValue: []byte("1")},
	}}}
	immediate := &extprocsvc.ProcessingResponse{Response: &extprocsvc.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocsvc.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
			Headers: &extprocsvc.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "retry-after", RawValue: []byte("3")}}}},
			Body:    []byte("busy"),
		},
	}}
	// Every case runs under a 1s message timeout, so that a prompt answer is
	// never late on a busy machine, except the one pinning Envoy's 200ms default.
	shipped := func(change func(*extprocv3.ExternalProcessor)) func(*extprocv3.ExternalProcessor) {
		return func(f *extprocv3.ExternalProcessor) {
			f.MessageTimeout = durationpb.New(time.Second)
			if change != nil {
				change(f)
			}
		}
	}
	allowFailure := shipped(func(f *extprocv3.ExternalProcessor) { f.FailureModeAllow = true })
	noMax := shipped(func(f *extprocv3.ExternalProcessor) { f.MaxMessageTimeout = nil })
	envoyDefault := func(f *extprocv3.ExternalProcessor) { f.MessageTimeout = nil }

	tests := []struct {
		name       string
		change     func(*extprocv3.ExternalProcessor)
		steps      []step
		wantStatus int
		wantApp    string
		wantBody   string
		// minTime and maxTime bound how long the answer took.
		minTime, maxTime time.Duration
	}{
		{name: "continue goes to the route's cluster",
			steps: []step{{resp: continueHeaders(nil, false)}}, wantStatus: 200, wantApp: "app"},
		{name: "no answer: 504 after the default 200ms message timeout", change: envoyDefault,
			wantStatus: 504, minTime: 180 * time.Millisecond, maxTime: 2 * time.Second},
		{name: "no answer with failure_mode_allow: continue", change: allowFailure,
			wantStatus: 200, wantApp: "app", minTime: 950 * time.Millisecond},
		{name: "override extends the timeout",
			steps:      []step{{resp: override(4 * time.Second)}, {after: 1600 * time.Millisecond, resp: continueHeaders(nil, false)}},
			wantStatus: 200, wantApp: "app", minTime: 1550 * time.Millisecond},
		{name: "second override in the same state is ignored",
			steps: []step{{resp: override(1500 * time.Millisecond)}, {after: 100 * time.Millisecond, resp: override(8 * time.Second)},
				{after: 5 * time.Second, resp: continueHeaders(nil, false)}},
			wantStatus: 504, minTime: 1450 * time.Millisecond, maxTime: 4 * time.Second},
		{name: "override ignored without max_message_timeout", change: noMax,
			steps:      []step{{resp: override(5 * time.Second)}, {after: 3 * time.Second, resp: continueHeaders(nil, false)}},
			wantStatus: 504, minTime: 950 * time.Millisecond, maxTime: 2500 * time.Millisecond},
		{name: "override above max_message_timeout is ignored",
			steps:      []step{{resp: override(time.Minute)}, {after: 3 * time.Second, resp: continueHeaders(nil, false)}},
			wantStatus: 504, minTime: 950 * time.Millisecond, maxTime: 2500 * time.Millisecond},
		{name: "stream ended with OK before an answer: continue",
			steps: []step{{}}, wantStatus: 200, wantApp: "app"},
		{name: "stream ended with OK after the answer: continue",
			steps: []step{{resp: continueHeaders(nil, false)}, {}}, wantStatus: 200, wantApp: "app"},
		{name: "stream error: 500", steps: []step{{err: io.ErrUnexpectedEOF}}, wantStatus: 500},
		{name: "stream error with failure_mode_allow: continue", change: allowFailure,
			steps: []step{{err: io.ErrUnexpectedEOF}}, wantStatus: 200, wantApp: "app"},
		{name: "value and raw_value both set: 500",
			steps: []step{{resp: continueHeaders(bothValues, false)}}, wantStatus: 500},
		{name: "clear_route_cache without a mutation keeps the route",
			steps: []step{{resp: continueHeaders(nil, true)}}, wantStatus: 200, wantApp: "app"},
		{name: "a mutation without clear_route_cache keeps the route",
			steps: []step{{resp: continueHeaders(setReroute, false)}}, wantStatus: 200, wantApp: "app"},
		{name: "clear_route_cache with a mutation re-routes",
			steps: []step{{resp: continueHeaders(setReroute, true)}}, wantStatus: 200, wantApp: "other"},
		{name: "immediate response", steps: []step{{resp: immediate}}, wantStatus: 503, wantBody: "busy"},
	}
	for i := range tests {
		if tests[i].change == nil {
			tests[i].change = shipped(nil)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startExtProc(t, answer(tt.steps...))
			p, base := startProxy(t, c, envoyemu.Options{
				SourceNamespace: ns, Filter: holdFilter(tt.change), ExtProcAddress: ep.addr,
			})
			waitForRoute(t, p, "app", holdRoute)

			start := time.Now()
			resp := get(t, base, "app", "/", nil)
			took := time.Since(start)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || servedBy(resp) != tt.wantApp {
				t.Errorf("status %d served by %q, want %d by %q (body %q)",
					resp.StatusCode, servedBy(resp), tt.wantStatus, tt.wantApp, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if took < tt.minTime || (tt.maxTime > 0 && took > tt.maxTime) {
				t.Errorf("answered after %v, want between %v and %v", took, tt.minTime, tt.maxTime)
			}
		})
	}
}

// TestResponseHeadersPhase pins the response_headers step on a hold route that
// sends response headers: an answer's mutation is applied, and a stream the
// server ended with OK after request_headers sends nothing more and fails
// nothing.
func TestResponseHeadersPhase(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployOnHoldRoute(t, c, ns, "app")
	filter := holdFilter(func(f *extprocv3.ExternalProcessor) { f.MessageTimeout = durationpb.New(time.Second) })
	filter.PerRoute[holdRoute].GetOverrides().ProcessingMode.ResponseHeaderMode = extprocv3.ProcessingMode_SEND

	added := &extprocsvc.ProcessingResponse{Response: &extprocsvc.ProcessingResponse_ResponseHeaders{
		ResponseHeaders: &extprocsvc.HeadersResponse{Response: &extprocsvc.CommonResponse{
			HeaderMutation: &extprocsvc.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
				Header: &corev3.HeaderValue{Key: "x-added", RawValue: []byte("yes")},
			}}},
		}},
	}}
	tests := []struct {
		name string
		// endAfterHeaders ends the stream with OK after answering
		// request_headers; otherwise response_headers is answered with added.
		endAfterHeaders bool
		wantAdded       string
		wantMessages    int32
	}{
		{name: "answered: the mutation is applied", wantAdded: "yes", wantMessages: 2},
		{name: "ended after request_headers: nothing more is sent", endAfterHeaders: true, wantMessages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var messages atomic.Int32
			ep := startExtProc(t, func(stream extprocsvc.ExternalProcessor_ProcessServer) error {
				for {
					req, err := stream.Recv()
					if err != nil {
						return nil
					}
					messages.Add(1)
					resp := added
					if req.GetRequestHeaders() != nil {
						resp = continueHeaders(nil, false)
					}
					if err := stream.Send(resp); err != nil {
						return err
					}
					if tt.endAfterHeaders {
						return nil
					}
				}
			})
			p, base := startProxy(t, c, envoyemu.Options{SourceNamespace: ns, Filter: filter, ExtProcAddress: ep.addr})
			waitForRoute(t, p, "app", holdRoute)

			resp := get(t, base, "app", "/", nil)
			_, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || servedBy(resp) != "app" {
				t.Errorf("status %d served by %q, want 200 by app", resp.StatusCode, servedBy(resp))
			}
			if got := resp.Header.Get("x-added"); got != tt.wantAdded {
				t.Errorf("x-added = %q, want %q", got, tt.wantAdded)
			}
			if got := messages.Load(); got != tt.wantMessages {
				t.Errorf("ext_proc received %d messages, want %d", got, tt.wantMessages)
			}
		})
	}
}

// TestRouteSnapshot pins that a VirtualService change made while a request is
// held never re-routes that request.
func TestRouteSnapshot(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployApp(t, c, ns, "first", 1)
	deployApp(t, c, ns, "second", 1)
	vs := virtualService(ns, "first", holdRoute, "first")
	if err := c.Client.Create(context.Background(), vs); err != nil {
		t.Fatal(err)
	}

	// The first request is held until released; any later one continues at once.
	release := make(chan struct{})
	var held atomic.Bool
	ep := startExtProc(t, func(stream extprocsvc.ExternalProcessor_ProcessServer) error {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		if held.CompareAndSwap(false, true) {
			if err := stream.Send(override(5 * time.Second)); err != nil {
				return err
			}
			<-release
		}
		return stream.Send(continueHeaders(nil, false))
	})
	p, base := startProxy(t, c, envoyemu.Options{
		SourceNamespace: ns, Filter: holdFilter(nil), ExtProcAddress: ep.addr,
	})
	waitForRoute(t, p, "first", holdRoute)

	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = "first"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	waitFor(t, func() bool { return ep.streams.Load() > 0 })

	// Send first's traffic to second, and wait until new requests see it.
	vs.Spec.Http[0].Name = "moved"
	vs.Spec.Http[0].Route[0].Destination.Host = "second"
	if err := c.Client.Update(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return servedBy(get(t, base, "first", "/", nil)) == "second" })

	close(release)
	resp := <-done
	if resp == nil {
		t.Fatal("the held request failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || servedBy(resp) != "first" {
		t.Errorf("held request: %d from %q, want 200 from the route it matched on arrival (first)",
			resp.StatusCode, servedBy(resp))
	}
}

func TestBodiesStreamThroughHoldRoute(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployOnHoldRoute(t, c, ns, "echo")
	ep := startExtProc(t, answer(step{resp: continueHeaders(nil, false)}))
	p, base := startProxy(t, c, envoyemu.Options{
		SourceNamespace: ns, Filter: holdFilter(nil), ExtProcAddress: ep.addr,
	})
	waitForRoute(t, p, "echo", holdRoute)

	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	req, _ := http.NewRequest(http.MethodPost, base+"/echo", bytes.NewReader(payload))
	req.Host = "echo"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Errorf("POST 1 MiB: status %d, %d bytes back, equal %v; want 200 and the same bytes",
			resp.StatusCode, len(got), bytes.Equal(got, payload))
	}

	stream := get(t, base, "echo", "/stream/5", nil)
	data, _ := io.ReadAll(stream.Body)
	if stream.StatusCode != 200 || stream.ContentLength != -1 || len(data) == 0 {
		t.Errorf("chunked stream: status %d, length %d, %d bytes; want 200, unknown length, data",
			stream.StatusCode, stream.ContentLength, len(data))
	}
}

func TestIstioRequestMetrics(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployApp(t, c, ns, "counted", 1)
	p, base := startProxy(t, c, envoyemu.Options{SourceNamespace: ns})
	waitForRoute(t, p, "counted", "default")
	for range 3 {
		get(t, base, "counted", "/status/418", nil)
	}

	// The proxy counts a request once its response is complete, which can be just
	// after the client has read it.
	want := `istio_requests_total{connection_security_policy="unknown",destination_service="counted.` + ns +
		`.svc.cluster.local",destination_service_name="counted",destination_service_namespace="` + ns + `"`
	var scraped string
	waitFor(t, func() bool {
		rec := &bytes.Buffer{}
		req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
		p.MetricsHandler().ServeHTTP(&bufferWriter{header: http.Header{}, body: rec}, req)
		scraped = rec.String()
		for _, line := range strings.Split(scraped, "\n") {
			if strings.HasPrefix(line, want) && strings.Contains(line, `response_code="418"`) {
				return strings.HasSuffix(line, " 3")
			}
		}
		return false
	})
}

func TestLoadFilterConfig(t *testing.T) {
	cfg, err := envoyemu.LoadFilterConfig("testdata/envoyfilter.yaml", networkingv1alpha3.EnvoyFilter_SIDECAR_OUTBOUND)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExtProc == nil {
		t.Fatal("no ext_proc filter config")
	}
	if got := cfg.ExtProc.GetMessageTimeout().AsDuration(); got != 500*time.Millisecond {
		t.Errorf("message_timeout = %v, want 500ms", got)
	}
	if got := cfg.ExtProc.GetMaxMessageTimeout().AsDuration(); got != 300*time.Second {
		t.Errorf("max_message_timeout = %v, want 5m", got)
	}
	per := cfg.PerRoute[holdRoute]
	if per.GetOverrides().GetProcessingMode().GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND {
		t.Errorf("per-route config for %q = %v, want request headers sent", holdRoute, per)
	}

	gw, err := envoyemu.LoadFilterConfig("testdata/envoyfilter.yaml", networkingv1alpha3.EnvoyFilter_GATEWAY)
	if err != nil {
		t.Fatal(err)
	}
	if gw.ExtProc != nil || len(gw.PerRoute) != 0 {
		t.Errorf("a gateway got %v, want nothing from sidecar-only patches", gw)
	}
}

// waitForRoute waits until the proxy routes host through the named route to a
// cluster it has endpoints for, so a test starts once the proxy has caught up
// with the objects it created.
func waitForRoute(t *testing.T, p *envoyemu.Proxy, host, name string) {
	t.Helper()
	waitFor(t, func() bool {
		route, _, endpoints := p.RouteFor(context.Background(), host, "/")
		return route == name && endpoints > 0
	})
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type bufferWriter struct {
	header http.Header
	body   *bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(int)             {}

func TestUpgradesAndGRPCThroughHoldRoute(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t)
	deployOnHoldRoute(t, c, ns, "duplex")
	ep := startExtProc(t, answer(step{resp: continueHeaders(nil, false)}))
	p, base := startProxy(t, c, envoyemu.Options{
		SourceNamespace: ns, Filter: holdFilter(nil), ExtProcAddress: ep.addr,
	})
	waitForRoute(t, p, "duplex", holdRoute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("websocket", func(t *testing.T) {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
			&websocket.DialOptions{Host: "duplex"})
		if err != nil {
			t.Fatalf("WebSocket upgrade through the proxy: %v", err)
		}
		defer conn.CloseNow()
		for _, msg := range []string{"one", "two"} {
			if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := conn.Read(ctx)
			if err != nil || string(got) != msg {
				t.Fatalf("echo of %q = %q, %v", msg, got, err)
			}
		}
	})

	t.Run("grpc over h2c", func(t *testing.T) {
		conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("duplex"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := echopb.NewEchoClient(conn)
		resp, err := client.Echo(ctx, &echopb.EchoRequest{Payload: []byte("ping")})
		if err != nil || string(resp.Payload) != "ping" {
			t.Fatalf("unary Echo = %v, %v; want ping", resp, err)
		}
		stream, err := client.EchoStream(ctx, &echopb.EchoRequest{Payload: []byte("x"), Count: 5})
		if err != nil || len(stream) != 5 {
			t.Fatalf("EchoStream = %d messages, %v; want 5", len(stream), err)
		}
	})
	if got := ep.streams.Load(); got != 3 {
		t.Errorf("ext_proc streams = %d, want 3 (one per request on the hold route)", got)
	}
}

// TestLoadShippedEnvoyFilter reads the project's own EnvoyFilter, which the
// end-to-end scenarios run under, for both kinds of proxy.
func TestLoadShippedEnvoyFilter(t *testing.T) {
	for _, ctx := range []networkingv1alpha3.EnvoyFilter_PatchContext{
		networkingv1alpha3.EnvoyFilter_SIDECAR_OUTBOUND, networkingv1alpha3.EnvoyFilter_GATEWAY,
	} {
		t.Run(ctx.String(), func(t *testing.T) {
			cfg, err := envoyemu.LoadFilterConfig("../../manifests/istio/envoyfilter.yaml", ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ExtProc == nil || cfg.ExtProc.GetGrpcService().GetEnvoyGrpc().GetClusterName() == "" {
				t.Fatalf("ext_proc filter = %v, want one with an Envoy gRPC cluster", cfg.ExtProc)
			}
			mode := cfg.ExtProc.GetProcessingMode()
			if mode.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP ||
				mode.GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP {
				t.Errorf("filter processing mode = %v, want headers skipped (inert)", mode)
			}
			hold := cfg.PerRoute[holdRoute].GetOverrides().GetProcessingMode()
			if hold.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND {
				t.Errorf("hold route processing mode = %v, want request headers sent", hold)
			}
			if cfg.ExtProc.GetMaxMessageTimeout().AsDuration() < 5*time.Minute {
				t.Errorf("max_message_timeout = %v, want at least the longest holdTimeout (5m)",
					cfg.ExtProc.GetMaxMessageTimeout().AsDuration())
			}
		})
	}
}
