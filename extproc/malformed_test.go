package extproc

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestAnswersEveryMessage sends, on one stream each, sequences Envoy may send
// (including a misconfigured filter's response-phase messages and messages out
// of the usual order) and checks each gets the matching CONTINUE answer, and
// that the server ends the stream once request_headers is answered.
func TestAnswersEveryMessage(t *testing.T) {
	checkLeaks(t)
	env := startEnv(t, Options{}, nil)
	env.dir.Upsert(testES("ns", "a"))
	env.readiness.SetSlice(ServiceKey{"ns", "a"}, "x", false)

	weird, _ := structpb.NewStruct(map[string]any{
		"xds.cluster_name": []any{"outbound|80||a.ns.svc.cluster.local"},
		"request.size":     12.0,
		"nested":           map[string]any{"a": true},
	})
	reqHeaders := func(h *extprocv3.HttpHeaders, attrs map[string]*structpb.Struct) *extprocv3.ProcessingRequest {
		return &extprocv3.ProcessingRequest{
			Request:    &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h},
			Attributes: attrs,
		}
	}
	type want int
	const (
		wantReqHeaders want = iota
		wantRespHeaders
		wantReqBody
		wantRespBody
		wantReqTrailers
		wantRespTrailers
		wantNothing
	)
	msg := map[want]*extprocv3.ProcessingRequest{
		wantRespHeaders: {Request: &extprocv3.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocv3.HttpHeaders{}}},
		wantReqBody: {Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStream: true}}},
		wantRespBody: {Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{}}},
		wantReqTrailers: {Request: &extprocv3.ProcessingRequest_RequestTrailers{
			RequestTrailers: &extprocv3.HttpTrailers{}}},
		wantRespTrailers: {Request: &extprocv3.ProcessingRequest_ResponseTrailers{
			ResponseTrailers: &extprocv3.HttpTrailers{}}},
	}
	type step struct {
		send *extprocv3.ProcessingRequest
		want want
	}
	tests := []struct {
		name  string
		steps []step
		// serverEnds: the last step is request_headers, after whose answer
		// the server ends the stream with OK on its own.
		serverEnds bool
	}{
		{"headers without header map", []step{{reqHeaders(&extprocv3.HttpHeaders{}, nil), wantReqHeaders}}, true},
		{"nil headers message", []step{{reqHeaders(nil, nil), wantReqHeaders}}, true},
		{"unknown and mistyped attributes", []step{{reqHeaders(&extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":path"}, nil}}},
			map[string]*structpb.Struct{FilterAttributesKey: weird, "other": nil}), wantReqHeaders}}, true},
		{"response phase from a filter that skips request headers", []step{
			{msg[wantRespHeaders], wantRespHeaders},
			{msg[wantRespBody], wantRespBody},
			{msg[wantRespTrailers], wantRespTrailers},
		}, false},
		{"body and trailers before headers", []step{
			{msg[wantReqBody], wantReqBody},
			{msg[wantReqTrailers], wantReqTrailers},
			{reqHeaders(&extprocv3.HttpHeaders{}, nil), wantReqHeaders},
		}, true},
		{"empty message then observability mode", []step{
			{&extprocv3.ProcessingRequest{}, wantNothing},
			{&extprocv3.ProcessingRequest{ObservabilityMode: true,
				Request: msg[wantReqBody].Request}, wantNothing},
			{msg[wantRespHeaders], wantRespHeaders},
		}, false},
	}
	raw := extprocv3.NewExternalProcessorClient(env.conn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Bounded, so that a server that never ends the stream fails the
			// test instead of hanging it.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			stream, err := raw.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				if err := stream.Send(s.send); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tt.steps {
				if s.want == wantNothing {
					continue
				}
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("step %d: Recv() error = %v", i, err)
				}
				var ok bool
				switch s.want {
				case wantReqHeaders:
					ok = resp.GetRequestHeaders().GetResponse().GetStatus() == extprocv3.CommonResponse_CONTINUE &&
						resp.GetRequestHeaders() != nil
				case wantRespHeaders:
					ok = resp.GetResponseHeaders() != nil
				case wantReqBody:
					ok = resp.GetRequestBody() != nil
				case wantRespBody:
					ok = resp.GetResponseBody() != nil
				case wantReqTrailers:
					ok = resp.GetRequestTrailers() != nil
				case wantRespTrailers:
					ok = resp.GetResponseTrailers() != nil
				}
				if !ok {
					t.Errorf("step %d: answer = %v, want kind %d", i, resp, s.want)
				}
			}
			// io.EOF from Recv is the end of the stream with status OK.
			if tt.serverEnds {
				if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
					t.Errorf("after the request_headers answer: Recv() error = %v, want EOF (the server ends the stream)", err)
				}
				return
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("after CloseSend: Recv() error = %v, want EOF (no extra answer)", err)
			}
		})
	}
}
