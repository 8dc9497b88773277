package envoyemu

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// exchangeState is what the request path does after ext_proc answered.
type exchangeState struct {
	view    requestView
	route   *route
	dest    destination
	stream  *extProcStream // open when response headers are to be sent
	proc    processing
	replied bool // a response was already written
	flags   string
}

// ServeHTTP routes one request the way the emulated Envoy would.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Envoy streams both ways at once: the upstream may answer before the
	// request body has all arrived.
	_ = http.NewResponseController(w).EnableFullDuplex()
	rec := &statusRecorder{ResponseWriter: w}

	// The route table is snapshotted when the request arrives.
	table := p.routes.Load()
	view := requestView{
		method: r.Method, path: r.URL.RequestURI(), authority: r.Host,
		scheme: "http", headers: r.Header.Clone(),
	}
	st := &exchangeState{view: view}
	defer func() { p.metrics.observe(p.opts, st, rec.status(), r, time.Since(start)) }()

	if !p.route(table, st) {
		localReply(rec, http.StatusNotFound, "", nil)
		st.flags = "NR"
		return
	}
	if d := st.route.direct; d != nil {
		localReply(rec, int(d.Status), d.GetBody().GetString_(), nil)
		return
	}

	p.processRequestHeaders(r.Context(), rec, table, st)
	if st.replied {
		return
	}
	if st.stream != nil {
		defer st.stream.close()
	}
	p.forward(rec, r, st)
}

// route selects the route and destination for the request's current view.
func (p *Proxy) route(table *routeTable, st *exchangeState) bool {
	routes := table.lookup(p.builder, st.view.authority, p.opts.SourceNamespace, p.opts.ListenPort)
	rt := selectRoute(routes, st.view)
	if rt == nil {
		return false
	}
	st.route = rt
	dest, ok := pickDestination(rt.dests)
	if !ok && rt.direct == nil {
		return false
	}
	st.dest = dest
	return true
}

// processRequestHeaders runs the request-headers step of ext_proc, if the
// route's processing mode sends request headers.
func (p *Proxy) processRequestHeaders(ctx context.Context, w http.ResponseWriter, table *routeTable, st *exchangeState) {
	proc, enabled := p.opts.Filter.processingFor(st.route.name)
	if !enabled || p.extproc == nil {
		return
	}
	st.proc = proc
	stream, err := openStream(ctx, p.extproc, proc)
	if err != nil {
		p.extProcFailed(w, st, http.StatusInternalServerError)
		return
	}
	if !proc.sendsRequestHeaders() {
		st.stream = stream
		return
	}

	attrs := map[string]string{
		"xds.cluster_name": st.dest.cluster.String(),
		"xds.route_name":   st.route.name,
		"request.path":     st.view.path,
		"request.host":     st.view.authority,
		"request.method":   st.view.method,
		"request.scheme":   st.view.scheme,
		"request.url_path": strings.SplitN(st.view.path, "?", 2)[0],
	}
	msg := requestHeadersMessage(st.view, attrs, proc.attributes, false)
	resp, out := stream.exchange(ctx, msg)
	p.handleRequestHeadersAnswer(w, table, st, resp, out)
	if st.replied || !proc.sendsResponseHeaders() {
		stream.close()
		return
	}
	st.stream = stream
}

// handleRequestHeadersAnswer acts on ext_proc's answer to request_headers.
func (p *Proxy) handleRequestHeadersAnswer(
	w http.ResponseWriter,
	table *routeTable,
	st *exchangeState,
	resp *extprocsvc.ProcessingResponse,
	out outcome,
) {
	switch out {
	case outcomeClientGone:
		st.replied = true
		return
	case outcomeTimeout:
		p.extProcFailed(w, st, http.StatusGatewayTimeout)
		return
	case outcomeStreamFail:
		p.extProcFailed(w, st, http.StatusInternalServerError)
		return
	case outcomeStreamEnded:
		return
	}

	switch v := resp.GetResponse().(type) {
	case *extprocsvc.ProcessingResponse_ImmediateResponse:
		writeImmediate(w, v.ImmediateResponse)
		st.replied = true
	case *extprocsvc.ProcessingResponse_RequestHeaders:
		common := v.RequestHeaders.GetResponse()
		changed, err := applyRequestMutation(&st.view, common.GetHeaderMutation())
		if err != nil {
			p.extProcFailed(w, st, http.StatusInternalServerError)
			return
		}
		// Re-matching uses the snapshot taken at arrival, and happens only when
		// the same response changed headers.
		if common.GetClearRouteCache() && changed && !p.route(table, st) {
			localReply(w, http.StatusNotFound, "", nil)
			st.flags = "NR"
			st.replied = true
		}
	default:
		p.extProcFailed(w, st, http.StatusInternalServerError)
	}
}

// extProcFailed answers a failed exchange: the request continues unmodified
// with failure_mode_allow, otherwise it gets status.
func (p *Proxy) extProcFailed(w http.ResponseWriter, st *exchangeState, status int) {
	if st.proc.failureModeAllow {
		return
	}
	localReply(w, status, "", nil)
	st.replied = true
}

// writeImmediate writes an ext_proc immediate response.
func writeImmediate(w http.ResponseWriter, ir *extprocsvc.ImmediateResponse) {
	status := int(ir.GetStatus().GetCode())
	if status < 200 || status > 599 {
		status = http.StatusOK
	}
	h := http.Header{}
	if err := applyHeaderMutation(h, ir.GetHeaders()); err != nil {
		localReply(w, http.StatusInternalServerError, "", nil)
		return
	}
	localReply(w, status, string(ir.GetBody()), h)
}

// localReply writes a response generated by the proxy itself.
func localReply(w http.ResponseWriter, status int, body string, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if body != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/plain")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// statusRecorder remembers the status written, for metrics. It keeps the
// wrapped writer's Flusher and Hijacker reachable through Unwrap.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
