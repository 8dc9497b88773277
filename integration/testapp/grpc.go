package testapp

import (
	"context"

	"github.com/elasti-mesh/elasti/integration/testapp/echopb"
)

// maxStreamCount bounds EchoStream so one request cannot run forever.
const maxStreamCount = 10000

type echoServer struct {
	name string
}

func (s echoServer) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Payload: req.Payload, Server: s.name}, nil
}

func (s echoServer) EchoStream(req *echopb.EchoRequest, send func(*echopb.EchoResponse) error) error {
	n := min(max(req.Count, 1), maxStreamCount)
	for i := range n {
		if err := send(&echopb.EchoResponse{Payload: req.Payload, Index: i, Server: s.name}); err != nil {
			return err
		}
	}
	return nil
}
