package envoyemu

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// errBothValues is Envoy's rejection of a header carrying value and raw_value.
var errBothValues = errors.New("header mutation sets both value and raw_value")

// headerValue returns a mutation's value, which travels in raw_value. Setting
// both fields is an error, as in Envoy.
func headerValue(h *corev3.HeaderValue) (string, error) {
	if h.GetValue() != "" && len(h.GetRawValue()) > 0 {
		return "", fmt.Errorf("%w (header %q)", errBothValues, h.GetKey())
	}
	if len(h.GetRawValue()) > 0 {
		return string(h.GetRawValue()), nil
	}
	return h.GetValue(), nil
}

// validateMutation checks a mutation before any of it is applied.
func validateMutation(m *extprocsvc.HeaderMutation) error {
	for _, o := range m.GetSetHeaders() {
		if o.GetHeader().GetKey() == "" {
			return errors.New("header mutation with an empty key")
		}
		if _, err := headerValue(o.GetHeader()); err != nil {
			return err
		}
	}
	return nil
}

// applyRequestMutation changes a request's headers, pseudo-headers included.
// It reports whether anything was set or removed.
func applyRequestMutation(req *requestView, m *extprocsvc.HeaderMutation) (bool, error) {
	if err := validateMutation(m); err != nil {
		return false, err
	}
	changed := false
	for _, o := range m.GetSetHeaders() {
		key := strings.ToLower(o.GetHeader().GetKey())
		value, _ := headerValue(o.GetHeader())
		changed = true
		switch key {
		case ":path":
			req.path = value
		case ":authority", "host":
			req.authority = value
		case ":method":
			req.method = value
		case ":scheme":
			req.scheme = value
		default:
			setHeader(req.headers, key, value, o)
		}
	}
	for _, name := range m.GetRemoveHeaders() {
		if strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
			continue // Envoy refuses to remove pseudo-headers and Host.
		}
		req.headers.Del(name)
		changed = true
	}
	return changed, nil
}

// applyHeaderMutation changes a plain header set, such as a response's.
func applyHeaderMutation(h http.Header, m *extprocsvc.HeaderMutation) error {
	if err := validateMutation(m); err != nil {
		return err
	}
	for _, o := range m.GetSetHeaders() {
		key := strings.ToLower(o.GetHeader().GetKey())
		if strings.HasPrefix(key, ":") {
			continue
		}
		value, _ := headerValue(o.GetHeader())
		setHeader(h, key, value, o)
	}
	for _, name := range m.GetRemoveHeaders() {
		h.Del(name)
	}
	return nil
}

// setHeader applies one HeaderValueOption. Without the deprecated append flag,
// ext_proc overwrites, as Envoy's ext_proc filter does.
func setHeader(h http.Header, key, value string, o *corev3.HeaderValueOption) {
	//lint:ignore SA1019 Envoy still honours the deprecated append field, so the emulator does too.
	appendValue := o.GetAppend() != nil && o.GetAppend().GetValue()
	switch {
	case appendValue:
		h.Add(key, value)
	case o.GetAppendAction() == corev3.HeaderValueOption_ADD_IF_ABSENT:
		if h.Get(key) == "" {
			h.Set(key, value)
		}
	case o.GetAppendAction() == corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.Get(key) != "" {
			h.Set(key, value)
		}
	default:
		h.Set(key, value)
	}
}
