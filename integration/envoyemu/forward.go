package envoyemu

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// upstream holds the connection pools to pods: one for HTTP/1.1 (which also
// carries WebSocket upgrades) and one for cleartext HTTP/2, used for requests
// that arrived over HTTP/2, such as gRPC.
type upstream struct {
	h1 *http.Transport
	h2 *http.Transport
}

func newUpstream(dial func(ctx context.Context, network, address string) (net.Conn, error)) *upstream {
	h1 := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	h2 := &http.Transport{DialContext: dial, IdleConnTimeout: 30 * time.Second}
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetUnencryptedHTTP2(true)
	return &upstream{h1: h1, h2: h2}
}

func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return u.h2.RoundTrip(r)
	}
	return u.h1.RoundTrip(r)
}

func (u *upstream) close() {
	u.h1.CloseIdleConnections()
	u.h2.CloseIdleConnections()
}

// errNoHealthyUpstream is Envoy's answer when a cluster has no endpoint.
var errNoHealthyUpstream = errors.New("no healthy upstream")

// servicePort finds the Service and port a cluster stands for.
func (p *Proxy) servicePort(ctx context.Context, c cluster) (types.NamespacedName, corev1.ServicePort, bool) {
	suffix := ".svc." + p.opts.ClusterDomain
	rest, ok := strings.CutSuffix(c.host, suffix)
	if !ok {
		return types.NamespacedName{}, corev1.ServicePort{}, false
	}
	name, namespace, ok := strings.Cut(rest, ".")
	if !ok {
		return types.NamespacedName{}, corev1.ServicePort{}, false
	}
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var svc corev1.Service
	if err := p.cache.Get(ctx, key, &svc); err != nil {
		return key, corev1.ServicePort{}, false
	}
	for _, port := range svc.Spec.Ports {
		if uint32(port.Port) == c.port {
			return key, port, true
		}
	}
	return key, corev1.ServicePort{}, false
}

// forward sends the request to an endpoint of the chosen cluster, using the
// endpoints the proxy has at this moment.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *exchangeState) {
	svc, port, ok := p.servicePort(r.Context(), st.dest.cluster)
	if !ok {
		localReply(w, http.StatusServiceUnavailable, errNoHealthyUpstream.Error(), nil)
		st.flags = "UH"
		return
	}
	addr, ok := p.endpoints.pick(svc, port)
	if !ok {
		localReply(w, http.StatusServiceUnavailable, errNoHealthyUpstream.Error(), nil)
		st.flags = "UH"
		return
	}

	rp := &httputil.ReverseProxy{
		Transport:     p.upstream,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			path, query, _ := strings.Cut(st.view.path, "?")
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = path, "", query
			pr.Out.Method = st.view.method
			pr.Out.Host = st.view.authority
			pr.Out.Header = st.view.headers.Clone()
			restoreUpgrade(pr)
		},
		ModifyResponse: func(resp *http.Response) error {
			return p.processResponseHeaders(r.Context(), resp, st)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			var local *localResponse
			if errors.As(err, &local) {
				localReply(w, local.status, local.body, local.header)
				return
			}
			localReply(w, http.StatusServiceUnavailable,
				"upstream connect error or disconnect/reset before headers", nil)
			st.flags = "UF"
		},
	}
	rp.ServeHTTP(w, r)
}

// restoreUpgrade keeps a WebSocket upgrade request's hop-by-hop headers, which
// the reverse proxy handles itself.
func restoreUpgrade(pr *httputil.ProxyRequest) {
	if up := pr.In.Header.Get("Upgrade"); up != "" {
		pr.Out.Header.Set("Connection", "Upgrade")
		pr.Out.Header.Set("Upgrade", up)
	}
}

// localResponse replaces an upstream response with one of the proxy's own.
type localResponse struct {
	status int
	body   string
	header http.Header
}

func (l *localResponse) Error() string { return http.StatusText(l.status) }

// processResponseHeaders runs the response-headers step of ext_proc when the
// route's processing mode sends response headers.
func (p *Proxy) processResponseHeaders(ctx context.Context, resp *http.Response, st *exchangeState) error {
	if st.stream == nil || !st.proc.sendsResponseHeaders() {
		return nil
	}
	answer, out := st.stream.exchange(ctx, responseHeadersMessage(resp.StatusCode, resp.Header))
	fail := func(status int) error {
		if st.proc.failureModeAllow {
			return nil
		}
		return &localResponse{status: status}
	}
	switch out {
	case outcomeStreamEnded:
		return nil
	case outcomeTimeout:
		return fail(http.StatusGatewayTimeout)
	case outcomeStreamFail, outcomeClientGone:
		return fail(http.StatusInternalServerError)
	}
	switch v := answer.GetResponse().(type) {
	case *extprocsvc.ProcessingResponse_ResponseHeaders:
		if err := applyHeaderMutation(resp.Header, v.ResponseHeaders.GetResponse().GetHeaderMutation()); err != nil {
			return fail(http.StatusInternalServerError)
		}
		return nil
	case *extprocsvc.ProcessingResponse_ImmediateResponse:
		h := http.Header{}
		_ = applyHeaderMutation(h, v.ImmediateResponse.GetHeaders())
		return &localResponse{
			status: int(v.ImmediateResponse.GetStatus().GetCode()),
			body:   string(v.ImmediateResponse.GetBody()), header: h,
		}
	}
	return fail(http.StatusInternalServerError)
}
