package envoyemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// defaultMessageTimeout is Envoy's message_timeout when the config sets none.
const defaultMessageTimeout = 200 * time.Millisecond

// minOverrideTimeout is the smallest override_message_timeout Envoy accepts.
const minOverrideTimeout = time.Millisecond

// processing is the ext_proc configuration in force for one request: the
// filter config merged with the route's ExtProcPerRoute.
type processing struct {
	mode              *extprocv3.ProcessingMode
	attributes        []string
	failureModeAllow  bool
	messageTimeout    time.Duration
	maxMessageTimeout time.Duration
}

// processingFor merges the filter config with the per-route config of a route,
// as Envoy does. The second result is false when ext_proc is off for the route.
func (c *FilterConfig) processingFor(routeName string) (processing, bool) {
	if c == nil || c.ExtProc == nil {
		return processing{}, false
	}
	f := c.ExtProc
	p := processing{
		mode:              f.GetProcessingMode(),
		attributes:        f.GetRequestAttributes(),
		failureModeAllow:  f.GetFailureModeAllow(),
		messageTimeout:    defaultMessageTimeout,
		maxMessageTimeout: f.GetMaxMessageTimeout().AsDuration(),
	}
	if f.GetMessageTimeout() != nil {
		p.messageTimeout = f.GetMessageTimeout().AsDuration()
	}
	if p.mode == nil {
		p.mode = &extprocv3.ProcessingMode{}
	}

	if per, ok := c.PerRoute[routeName]; ok {
		if per.GetDisabled() {
			return processing{}, false
		}
		o := per.GetOverrides()
		if o.GetProcessingMode() != nil {
			p.mode = o.GetProcessingMode()
		}
		if len(o.GetRequestAttributes()) > 0 {
			p.attributes = o.GetRequestAttributes()
		}
		if o.GetFailureModeAllow() != nil {
			p.failureModeAllow = o.GetFailureModeAllow().GetValue()
		}
	}
	return p, p.sendsRequestHeaders() || p.sendsResponseHeaders()
}

func (p processing) sendsRequestHeaders() bool {
	return p.mode.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP
}

func (p processing) sendsResponseHeaders() bool {
	return p.mode.GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP
}

// outcome is how one exchange with the ext_proc server ended.
type outcome int

const (
	outcomeResponse   outcome = iota // a response for the current state arrived
	outcomeTimeout                   // the message timeout passed
	outcomeStreamFail                // the stream failed or sent something invalid
	outcomeClientGone                // the downstream request was cancelled
	// outcomeStreamEnded: the server ended the stream with OK. Envoy takes that
	// as the end of external processing: the request goes on unmodified and no
	// further message is sent for it.
	outcomeStreamEnded
)

// extProcStream is the ext_proc gRPC stream of one HTTP request. Envoy opens it
// with the first message and resets it when the request ends.
type extProcStream struct {
	p      processing
	stream extprocsvc.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	// closed is closed by close(). The stream's own context cannot stand in for
	// it: gRPC cancels that as soon as the RPC ends, error or not, and the reader
	// must still hand that error to the exchange waiting for it.
	closed <-chan struct{}
	recv   chan recvResult
	done   chan struct{}
	// ended is set once the server's OK close was seen; used only by the
	// request's own goroutine.
	ended bool
}

type recvResult struct {
	resp *extprocsvc.ProcessingResponse
	err  error
}

func openStream(ctx context.Context, client extprocsvc.ExternalProcessorClient, p processing) (*extProcStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := client.Process(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &extProcStream{
		p: p, stream: stream, cancel: cancel, closed: ctx.Done(),
		recv: make(chan recvResult, 1), done: make(chan struct{}),
	}
	go s.readLoop()
	return s, nil
}

// readLoop hands each response to the exchange waiting for it; it ends when the
// stream does.
func (s *extProcStream) readLoop() {
	defer close(s.done)
	for {
		resp, err := s.stream.Recv()
		select {
		case s.recv <- recvResult{resp, err}:
		case <-s.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

// close resets the stream and waits for its reader to end.
func (s *extProcStream) close() {
	s.cancel()
	<-s.done
}

// exchange sends one message and waits for the answer of its processing state
// under the message timeout, honouring one override_message_timeout.
func (s *extProcStream) exchange(
	ctx context.Context,
	req *extprocsvc.ProcessingRequest,
) (*extprocsvc.ProcessingResponse, outcome) {
	if s.ended {
		return nil, outcomeStreamEnded
	}
	// Send reports io.EOF when the server has already ended the stream; the
	// status it ended with comes from the reader.
	if err := s.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, outcomeStreamFail
	}
	timer := time.NewTimer(s.p.messageTimeout)
	defer timer.Stop()
	overridden := false
	for {
		select {
		case <-ctx.Done():
			return nil, outcomeClientGone
		case <-timer.C:
			return nil, outcomeTimeout
		case r := <-s.recv:
			if errors.Is(r.err, io.EOF) {
				s.ended = true
				return nil, outcomeStreamEnded
			}
			if r.err != nil {
				return nil, outcomeStreamFail
			}
			// A message with override_message_timeout has every other field
			// ignored. The override is honoured once per state, only with
			// max_message_timeout configured, and only within [1ms, max].
			if o := r.resp.GetOverrideMessageTimeout(); o != nil {
				d := o.AsDuration()
				if !overridden && s.p.maxMessageTimeout > 0 &&
					d >= minOverrideTimeout && d <= s.p.maxMessageTimeout {
					overridden = true
					timer.Reset(d)
				}
				continue
			}
			return r.resp, outcomeResponse
		}
	}
}

// requestHeadersMessage builds the request_headers message, with the request
// attributes the config asks for.
func requestHeadersMessage(req requestView, attrs map[string]string, names []string, endOfStream bool) *extprocsvc.ProcessingRequest {
	headers := &corev3.HeaderMap{}
	add := func(k, v string) {
		headers.Headers = append(headers.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	add(":method", req.method)
	add(":path", req.path)
	add(":authority", req.authority)
	add(":scheme", req.scheme)
	for name, values := range req.headers {
		for _, v := range values {
			add(strings.ToLower(name), v)
		}
	}

	msg := &extprocsvc.ProcessingRequest{
		Request: &extprocsvc.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocsvc.HttpHeaders{Headers: headers, EndOfStream: endOfStream},
		},
	}
	if fields := selectAttributes(attrs, names); len(fields) > 0 {
		msg.Attributes = map[string]*structpb.Struct{extProcFilterName: {Fields: fields}}
	}
	return msg
}

// responseHeadersMessage builds the response_headers message.
func responseHeadersMessage(status int, h http.Header) *extprocsvc.ProcessingRequest {
	headers := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":status", RawValue: []byte(fmt.Sprint(status))},
	}}
	for name, values := range h {
		for _, v := range values {
			headers.Headers = append(headers.Headers,
				&corev3.HeaderValue{Key: strings.ToLower(name), RawValue: []byte(v)})
		}
	}
	return &extprocsvc.ProcessingRequest{
		Request: &extprocsvc.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocsvc.HttpHeaders{Headers: headers},
		},
	}
}

// selectAttributes keeps the configured attributes the proxy knows; Envoy
// leaves out attributes it cannot evaluate.
func selectAttributes(attrs map[string]string, names []string) map[string]*structpb.Value {
	out := map[string]*structpb.Value{}
	for _, name := range names {
		if v, ok := attrs[name]; ok {
			out[name] = structpb.NewStringValue(v)
		}
	}
	return out
}
