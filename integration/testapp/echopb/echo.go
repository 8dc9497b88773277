// Package echopb is the client and server glue for the test app's gRPC echo service,
// described in echo.proto. The two messages are encoded by hand with protowire, so the
// service works with any protobuf client of echo.proto without generated code here.
package echopb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "elasti.testapp.v1.Echo"

// EchoRequest is echo.proto's EchoRequest.
type EchoRequest struct {
	Payload []byte
	Count   uint32
}

// EchoResponse is echo.proto's EchoResponse.
type EchoResponse struct {
	Payload []byte
	Index   uint32
	Server  string
}

func (m *EchoRequest) marshal() []byte {
	var b []byte
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	if m.Count != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Count))
	}
	return b
}

func (m *EchoRequest) unmarshal(b []byte) error {
	*m = EchoRequest{}
	return walk(b, func(num protowire.Number, v []byte, n uint64) {
		switch num {
		case 1:
			m.Payload = append([]byte(nil), v...)
		case 2:
			m.Count = uint32(n)
		}
	})
}

func (m *EchoResponse) marshal() []byte {
	var b []byte
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	if m.Index != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Index))
	}
	if m.Server != "" {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, m.Server)
	}
	return b
}

func (m *EchoResponse) unmarshal(b []byte) error {
	*m = EchoResponse{}
	return walk(b, func(num protowire.Number, v []byte, n uint64) {
		switch num {
		case 1:
			m.Payload = append([]byte(nil), v...)
		case 2:
			m.Index = uint32(n)
		case 3:
			m.Server = string(v)
		}
	})
}

// walk calls field for each field of a message: v holds bytes fields, n varints.
// Unknown fields and types are skipped, as protobuf requires.
func walk(b []byte, field func(num protowire.Number, v []byte, n uint64)) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("failed to parse tag: %w", protowire.ParseError(l))
		}
		b = b[l:]
		switch typ {
		case protowire.BytesType:
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return fmt.Errorf("failed to parse field %d: %w", num, protowire.ParseError(l))
			}
			field(num, v, 0)
			b = b[l:]
		case protowire.VarintType:
			n, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return fmt.Errorf("failed to parse field %d: %w", num, protowire.ParseError(l))
			}
			field(num, nil, n)
			b = b[l:]
		default:
			l := protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return fmt.Errorf("failed to skip field %d: %w", num, protowire.ParseError(l))
			}
			b = b[l:]
		}
	}
	return nil
}

type message interface {
	marshal() []byte
	unmarshal([]byte) error
}

// Codec encodes this package's messages. It is named "proto" because its wire format
// is protobuf's. Use it with grpc.ForceServerCodec on a server that only serves this
// package's service; the client in this package sets it on each call.
type Codec struct{}

// Marshal encodes an *EchoRequest or *EchoResponse.
func (Codec) Marshal(v any) ([]byte, error) {
	m, ok := v.(message)
	if !ok {
		return nil, fmt.Errorf("echopb cannot marshal %T", v)
	}
	return m.marshal(), nil
}

// Unmarshal decodes into an *EchoRequest or *EchoResponse.
func (Codec) Unmarshal(data []byte, v any) error {
	m, ok := v.(message)
	if !ok {
		return fmt.Errorf("echopb cannot unmarshal into %T", v)
	}
	return m.unmarshal(data)
}

// Name returns "proto".
func (Codec) Name() string { return "proto" }

// EchoServer is the server side of the service.
type EchoServer interface {
	Echo(ctx context.Context, req *EchoRequest) (*EchoResponse, error)
	EchoStream(req *EchoRequest, send func(*EchoResponse) error) error
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*EchoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(
			srv any,
			ctx context.Context,
			dec func(any) error,
			interceptor grpc.UnaryServerInterceptor,
		) (any, error) {
			req := new(EchoRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(EchoServer).Echo(ctx, req.(*EchoRequest))
			}
			if interceptor == nil {
				return call(ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + ServiceName + "/Echo"}
			return interceptor(ctx, req, info, call)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "EchoStream",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(EchoRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			send := func(m *EchoResponse) error { return stream.SendMsg(m) }
			return srv.(EchoServer).EchoStream(req, send)
		},
	}},
	Metadata: "echo.proto",
}

// RegisterEchoServer registers srv on s.
func RegisterEchoServer(s grpc.ServiceRegistrar, srv EchoServer) {
	s.RegisterService(&serviceDesc, srv)
}

// EchoClient calls the service over cc. It is safe for concurrent use.
type EchoClient struct {
	cc grpc.ClientConnInterface
}

// NewEchoClient returns a client using cc.
func NewEchoClient(cc grpc.ClientConnInterface) *EchoClient {
	return &EchoClient{cc: cc}
}

// Echo calls the unary method.
func (c *EchoClient) Echo(
	ctx context.Context,
	req *EchoRequest,
	opts ...grpc.CallOption,
) (*EchoResponse, error) {
	resp := new(EchoResponse)
	opts = append(opts, grpc.ForceCodec(Codec{}))
	if err := c.cc.Invoke(ctx, "/"+ServiceName+"/Echo", req, resp, opts...); err != nil {
		return nil, err
	}
	return resp, nil
}

// EchoStream calls the server-streaming method and returns every response.
func (c *EchoClient) EchoStream(
	ctx context.Context,
	req *EchoRequest,
	opts ...grpc.CallOption,
) ([]*EchoResponse, error) {
	opts = append(opts, grpc.ForceCodec(Codec{}))
	stream, err := c.cc.NewStream(ctx, &serviceDesc.Streams[0], "/"+ServiceName+"/EchoStream", opts...)
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	var out []*EchoResponse
	for {
		resp := new(EchoResponse)
		if err := stream.RecvMsg(resp); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, resp)
	}
}
