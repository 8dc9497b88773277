// Package envoytest is a test double of the client side of Envoy's ext_proc
// filter, enough to drive elasti-extproc the way Envoy does in header-only
// mode: one gRPC stream per HTTP request, request_headers with the request
// attributes, Envoy's message timeout replaced once by override_message_timeout
// (only when max_message_timeout is configured and the value is within it), and
// a reset of the stream when the timeout passes. It emulates Envoy; it is not a
// proxy and forwards nothing.
package envoytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy's defaults that the emulation follows.
const (
	// DefaultMessageTimeout is Envoy's default message_timeout.
	DefaultMessageTimeout = 200 * time.Millisecond
	// attributesKey is where the filter puts request attributes.
	attributesKey = "envoy.filters.http.ext_proc"
)

// Client sends HTTP requests through an ext_proc server. Safe for concurrent
// use; each Do is its own stream.
type Client struct {
	ext extprocv3.ExternalProcessorClient
	// MessageTimeout is the filter's message_timeout; zero means Envoy's
	// default of 200ms.
	MessageTimeout time.Duration
	// MaxMessageTimeout is the filter's max_message_timeout; zero disables
	// override_message_timeout, as in Envoy.
	MaxMessageTimeout time.Duration
}

// New returns a Client over conn with max_message_timeout set to maxTimeout.
func New(conn grpc.ClientConnInterface, maxTimeout time.Duration) *Client {
	return &Client{ext: extprocv3.NewExternalProcessorClient(conn), MaxMessageTimeout: maxTimeout}
}

// Request is an HTTP request as the filter sees it on a hold route.
type Request struct {
	// ClusterName and RouteName are the xds.cluster_name and xds.route_name
	// attributes; empty ones are not sent.
	ClusterName string
	RouteName   string
	// Method, Path and Authority are the pseudo-headers; Method defaults to GET
	// and Path to "/".
	Method    string
	Path      string
	Authority string
	// Headers are further request headers, sent with lower-case names.
	Headers map[string]string
}

// Result is how the filter ended processing the request headers.
type Result struct {
	// Overrides counts override_message_timeout messages received; Envoy
	// honours only the first.
	Overrides int
	// Override is the message timeout in force after the first override; zero
	// when none was honoured.
	Override time.Duration
	// Continued is true when the answer was request_headers CONTINUE.
	Continued bool
	// Immediate is the immediate response, when that was the answer.
	Immediate *extprocv3.ImmediateResponse
	// TimedOut is true when Envoy's message timeout passed first; Envoy then
	// answers the client 504 and resets the stream.
	TimedOut bool
	// AnsweredAt is when the answer to the request headers arrived, before the
	// stream was closed.
	AnsweredAt time.Time
}

// HeaderValue returns the raw value of the immediate response header name.
func (r Result) HeaderValue(name string) (string, bool) {
	for _, h := range r.Immediate.GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == name {
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

// Do sends req's headers and waits for the answer, as Envoy does. It returns an
// error when the stream fails or ctx ends (the client went away).
func (c *Client) Do(ctx context.Context, req Request) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.ext.Process(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("failed to open ext_proc stream: %w", err)
	}
	if err := stream.Send(Headers(req)); err != nil {
		return Result{}, fmt.Errorf("failed to send request headers: %w", err)
	}

	msgs := make(chan *extprocv3.ProcessingResponse)
	errc := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()

	res, err := c.await(ctx, msgs, errc)
	if err != nil || res.TimedOut {
		cancel()
		<-readerDone
		return res, err
	}

	// The HTTP request is done with ext_proc: close our side, as Envoy does once
	// no more processing is due (older releases only when the filter is
	// destroyed), and wait for the stream to end with OK. elasti-extproc ends it
	// on its own after the answer, so the close may already be there.
	_ = stream.CloseSend()
	<-readerDone
	if err := <-errc; !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("failed to end ext_proc stream: %w", err)
	}
	return res, nil
}

// await applies Envoy's message timeout until the headers are answered.
func (c *Client) await(
	ctx context.Context,
	msgs <-chan *extprocv3.ProcessingResponse,
	errc <-chan error,
) (Result, error) {
	var res Result
	timeout := c.MessageTimeout
	if timeout == 0 {
		timeout = DefaultMessageTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-errc:
			return res, fmt.Errorf("failed to receive ext_proc answer: %w", err)
		case <-timer.C:
			res.TimedOut = true
			return res, nil
		case m := <-msgs:
			if d := m.GetOverrideMessageTimeout(); d != nil {
				// Every other field of this message is ignored by Envoy.
				res.Overrides++
				if res.Overrides == 1 && c.honours(d.AsDuration()) {
					res.Override = d.AsDuration()
					timer.Reset(res.Override)
				}
				continue
			}
			res.AnsweredAt = time.Now()
			res.Continued = m.GetRequestHeaders().GetResponse().GetStatus() ==
				extprocv3.CommonResponse_CONTINUE && m.GetRequestHeaders() != nil
			res.Immediate = m.GetImmediateResponse()
			if !res.Continued && res.Immediate == nil {
				return res, fmt.Errorf("unexpected answer to request headers: %v", m)
			}
			return res, nil
		}
	}
}

// honours applies Envoy's rule for override_message_timeout: enabled only by
// max_message_timeout, and only for values from 1ms up to it.
func (c *Client) honours(d time.Duration) bool {
	return c.MaxMessageTimeout >= time.Millisecond && d >= time.Millisecond &&
		d <= c.MaxMessageTimeout
}

// Headers builds the request_headers message the filter sends for req.
func Headers(req Request) *extprocv3.ProcessingRequest {
	method, path := req.Method, req.Path
	if method == "" {
		method = "GET"
	}
	if path == "" {
		path = "/"
	}
	hdrs := []*corev3.HeaderValue{
		{Key: ":method", RawValue: []byte(method)},
		{Key: ":path", RawValue: []byte(path)},
		{Key: ":scheme", RawValue: []byte("http")},
		{Key: ":authority", RawValue: []byte(req.Authority)},
	}
	for k, v := range req.Headers {
		hdrs = append(hdrs, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}

	attrs := map[string]any{}
	if req.ClusterName != "" {
		attrs["xds.cluster_name"] = req.ClusterName
	}
	if req.RouteName != "" {
		attrs["xds.route_name"] = req.RouteName
	}
	st, _ := structpb.NewStruct(attrs)
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers:     &corev3.HeaderMap{Headers: hdrs},
			EndOfStream: true,
		}},
		Attributes: map[string]*structpb.Struct{attributesKey: st},
	}
}

// ClusterName returns Istio's outbound cluster name for a Service port.
func ClusterName(namespace, service string, port int) string {
	return fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", port, service, namespace)
}
