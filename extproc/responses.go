package extproc

import (
	"fmt"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Response code details elasti-extproc puts in its local replies; Envoy shows
// them as %RESPONSE_CODE_DETAILS% in access logs.
const (
	detailsTimeout = "elasti_hold_timeout"
	detailsShed    = "elasti_too_many_held"
	detailsDrained = "elasti_extproc_shutting_down"
)

// TimeoutResponse is the answer to a request held for svc longer than timeout:
// 504 with the body "service NAMESPACE/NAME did not become ready within 60s\n".
func TimeoutResponse(svc ServiceKey, timeout time.Duration) *LocalResponse {
	return &LocalResponse{
		Status:  504,
		Body:    fmt.Sprintf("service %s did not become ready within %gs\n", svc, timeout.Seconds()),
		Headers: []Header{{Name: "content-type", Value: "text/plain; charset=utf-8"}},
		Details: detailsTimeout,
	}
}

// ShedResponse is the answer to a request over svc's held-request cap: 503 with
// Retry-After in whole seconds and the body
// "service NAMESPACE/NAME has too many requests waiting for it; retry later\n".
func ShedResponse(svc ServiceKey, retryAfter time.Duration) *LocalResponse {
	return &LocalResponse{
		Status: 503,
		Body:   fmt.Sprintf("service %s has too many requests waiting for it; retry later\n", svc),
		Headers: []Header{
			{Name: "content-type", Value: "text/plain; charset=utf-8"},
			{Name: "retry-after", Value: retryAfterSeconds(retryAfter)},
		},
		Details: detailsShed,
	}
}

// DrainedResponse is the answer to a request still held when this replica's
// drain timeout passes: 503 with Retry-After and the body
// "service NAMESPACE/NAME is not ready yet and elasti-extproc is shutting down; retry\n".
func DrainedResponse(svc ServiceKey, retryAfter time.Duration) *LocalResponse {
	return &LocalResponse{
		Status: 503,
		Body: fmt.Sprintf(
			"service %s is not ready yet and elasti-extproc is shutting down; retry\n", svc),
		Headers: []Header{
			{Name: "content-type", Value: "text/plain; charset=utf-8"},
			{Name: "retry-after", Value: retryAfterSeconds(retryAfter)},
		},
		Details: detailsDrained,
	}
}

// retryAfterSeconds formats d as delta-seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// immediate turns a LocalResponse into an ext_proc immediate response. Header
// values go in raw_value only: Envoy rejects a header with both fields set.
func immediate(r *LocalResponse) *extprocv3.ProcessingResponse {
	set := make([]*corev3.HeaderValueOption, 0, len(r.Headers))
	for _, h := range r.Headers {
		set = append(set, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, RawValue: []byte(h.Value)},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(r.Status)},
				Headers: &extprocv3.HeaderMutation{SetHeaders: set},
				Body:    []byte(r.Body),
				Details: r.Details,
			},
		},
	}
}

// overrideTimeout is the message that extends Envoy's message timeout for the
// request being processed. Envoy ignores every other field of such a message.
func overrideTimeout(d time.Duration) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
}

// continueResponse answers a message of the given kind with CONTINUE, leaving
// the request or response unchanged. It returns nil for a message that carries
// nothing to answer.
func continueResponse(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	common := func() *extprocv3.CommonResponse {
		return &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}
	}
	var resp extprocv3.ProcessingResponse
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{Response: common()}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: common()}}
	case *extprocv3.ProcessingRequest_RequestBody:
		resp.Response = &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: common()}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		resp.Response = &extprocv3.ProcessingResponse_ResponseBody{
			ResponseBody: &extprocv3.BodyResponse{Response: common()}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}
	default:
		return nil
	}
	return &resp
}
