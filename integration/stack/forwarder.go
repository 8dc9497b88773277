package stack

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// forwarder is a TCP front for a set of replicas, standing for a Kubernetes
// Service: each new connection goes to the first live backend; connections
// already open stay with their backend until either side closes them, as with
// a pod that is terminating.
type forwarder struct {
	ln net.Listener

	// mu guards backends.
	mu       sync.Mutex
	backends []string
}

func newForwarder(ctx context.Context) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go f.serve()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) setBackends(b []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = append([]string(nil), b...)
}

func (f *forwarder) serve() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.pipe(conn)
	}
}

// pipe connects a client to the first backend that accepts, or closes it, as
// a Service with no ready endpoint refuses connections.
func (f *forwarder) pipe(client net.Conn) {
	defer client.Close()
	f.mu.Lock()
	backends := f.backends
	f.mu.Unlock()

	var upstream net.Conn
	for _, b := range backends {
		c, err := net.DialTimeout("tcp", b, time.Second)
		if err == nil {
			upstream = c
			break
		}
	}
	if upstream == nil {
		return
	}
	defer upstream.Close()

	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); closeWrite(client); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
