package extproc

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Request is what the decision needs to know about one HTTP request: where Envoy
// routes it and the parts a probe rule can match. The zero value is a request with
// no target, which is always let through.
type Request struct {
	// Target is the Service Envoy routes the request to; zero when unknown.
	Target ServiceKey
	// Method is the :method pseudo-header.
	Method string
	// Path is the :path pseudo-header without its query string.
	Path string
	// RawQuery is the query string of :path, without '?'.
	RawQuery string
	// Headers are the request headers as Envoy sent them (lower-case names).
	Headers []Header
}

// Header is one request header.
type Header struct {
	Name  string
	Value string
}

// Header returns the value of the first header named name, compared without
// regard to case, and whether it was present.
func (r *Request) Header(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// RequestFromProcessing builds a Request from a request_headers message and the
// attributes of the ProcessingRequest that carried it. Missing headers or
// attributes leave the matching fields empty; nothing here fails.
func RequestFromProcessing(req *extprocv3.ProcessingRequest) Request {
	var r Request
	if key, ok := TargetFromAttributes(req.GetAttributes()); ok {
		r.Target = key
	}

	hdrs := req.GetRequestHeaders().GetHeaders().GetHeaders()
	r.Headers = make([]Header, 0, len(hdrs))
	for _, h := range hdrs {
		r.Headers = append(r.Headers, Header{Name: h.GetKey(), Value: headerValue(h)})
	}

	r.Method, _ = r.Header(":method")
	path, _ := r.Header(":path")
	r.Path, r.RawQuery, _ = strings.Cut(path, "?")
	return r
}

// headerValue returns a header's raw_value, where Envoy puts it, or value from
// an older data plane that still fills that field.
func headerValue(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return h.GetValue()
}
