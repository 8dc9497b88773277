package testapp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elasti-mesh/elasti/integration/testapp/echopb"
)

// startApp runs the app on a free loopback port until the test ends and returns its
// base URL once it answers.
func startApp(t *testing.T, cfg Config) (string, chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to find a port: %v", err)
	}
	cfg.ListenAddr, cfg.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if cfg.Name == "" {
		cfg.Name = "app-1"
	}

	exits := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logr.Discard(), func(code int) { exits <- code }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() error = %v", err)
		}
	})

	base := "http://" + cfg.Address()
	deadline := time.Now().Add(5*time.Second + cfg.StartupDelay)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return base, exits
		}
		if time.Now().After(deadline) {
			t.Fatalf("app did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHTTPRoutes(t *testing.T) {
	base, _ := startApp(t, Config{})

	tests := []struct {
		method, path, body string
		wantCode           int
		wantBody           string
		wantLength         int64
	}{
		{method: "GET", path: "/", wantCode: 200, wantBody: "app-1\n", wantLength: -2},
		{method: "GET", path: "/status/418", wantCode: 418, wantLength: -2},
		{method: "GET", path: "/status/abc", wantCode: 400, wantLength: -2},
		{method: "GET", path: "/delay/10ms", wantCode: 200, wantBody: "delayed 10ms\n", wantLength: -2},
		{method: "GET", path: "/bytes/100000", wantCode: 200, wantLength: 100000},
		{method: "GET", path: "/stream/3", wantCode: 200, wantLength: -1},
		{method: "GET", path: "/drip?numbytes=3&duration=10ms", wantCode: 200, wantBody: "***", wantLength: -1},
		{method: "POST", path: "/echo", body: "hello", wantCode: 200, wantBody: "hello", wantLength: -2},
		{method: "POST", path: "/", body: "root", wantCode: 200, wantBody: "root", wantLength: -2},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s error = %v", tt.method, tt.path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			// -2 means any length; -1 means none announced (chunked).
			if tt.wantLength != -2 && resp.ContentLength != tt.wantLength {
				t.Errorf("ContentLength = %d, want %d", resp.ContentLength, tt.wantLength)
			}
			if tt.wantLength > 0 && int64(len(body)) != tt.wantLength {
				t.Errorf("read %d bytes, want %d", len(body), tt.wantLength)
			}
			if got := resp.Header.Get(NameHeader); got != "app-1" {
				t.Errorf("%s = %q, want %q", NameHeader, got, "app-1")
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestStreamLines(t *testing.T) {
	base, _ := startApp(t, Config{})
	resp, err := http.Get(base + "/stream/4")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	n := 0
	for ; dec.More(); n++ {
		var line struct{ ID int }
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if line.ID != n {
			t.Errorf("line %d has id %d", n, line.ID)
		}
	}
	if n != 4 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("got %d lines, transfer encoding %v; want 4 chunked lines", n, resp.TransferEncoding)
	}
}

func TestHeadersEcho(t *testing.T) {
	base, _ := startApp(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, base+"/headers", nil)
	req.Header.Set("X-Probe", "42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Headers http.Header }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Headers.Get("X-Probe") != "42" || got.Headers.Get("Host") == "" {
		t.Errorf("echoed headers = %v, want X-Probe: 42 and Host", got.Headers)
	}
}

func TestReadinessDelayAndSwitch(t *testing.T) {
	base, exits := startApp(t, Config{ReadyDelay: 300 * time.Millisecond})
	status := func() int {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			t.Fatalf("GET /ready error = %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("/ready before the delay = %d, want 503", got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for status() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/ready never answered 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, step := range []struct {
		path string
		want int
	}{{"/control/unready", 503}, {"/control/ready", 200}} {
		resp, err := http.Post(base+step.path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := status(); got != step.want {
			t.Errorf("/ready after %s = %d, want %d", step.path, got, step.want)
		}
	}

	resp, err := http.Post(base+"/exit/7", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case code := <-exits:
		if code != 7 {
			t.Errorf("exit code = %d, want 7", code)
		}
	case <-time.After(2 * time.Second):
		t.Error("/exit/7 did not exit")
	}
}

func TestStartupDelay(t *testing.T) {
	began := time.Now()
	startApp(t, Config{StartupDelay: 300 * time.Millisecond})
	if elapsed := time.Since(began); elapsed < 300*time.Millisecond {
		t.Errorf("app answered after %s, want after its 300ms startup delay", elapsed)
	}
}

func TestWebSocketEcho(t *testing.T) {
	base, _ := startApp(t, Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("Dial() error = %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for i, msg := range [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, 70000)} {
		typ := websocket.MessageText
		if i == 1 {
			typ = websocket.MessageBinary
		}
		if err := conn.Write(ctx, typ, msg); err != nil {
			t.Fatalf("Write() error = %v", err)
		}
		gotType, got, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("Read() error = %v", err)
		}
		if gotType != typ || !bytes.Equal(got, msg) {
			t.Errorf("echo %d = %v %d bytes, want %v %d bytes", i, gotType, len(got), typ, len(msg))
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestGRPCEchoOverH2C(t *testing.T) {
	base, _ := startApp(t, Config{})
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient() error = %v", err)
	}
	defer conn.Close()
	client := echopb.NewEchoClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	resp, err := client.Echo(ctx, &echopb.EchoRequest{Payload: []byte("ping")})
	if err != nil {
		t.Fatalf("Echo() error = %v", err)
	}
	if string(resp.Payload) != "ping" || resp.Server != "app-1" {
		t.Errorf("Echo() = %q from %q, want %q from %q", resp.Payload, resp.Server, "ping", "app-1")
	}

	stream, err := client.EchoStream(ctx, &echopb.EchoRequest{Payload: []byte("x"), Count: 5})
	if err != nil {
		t.Fatalf("EchoStream() error = %v", err)
	}
	if len(stream) != 5 {
		t.Fatalf("EchoStream() returned %d messages, want 5", len(stream))
	}
	for i, m := range stream {
		if m.Index != uint32(i) || string(m.Payload) != "x" {
			t.Errorf("message %d = index %d payload %q", i, m.Index, m.Payload)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("LISTEN_ADDR", "127.18.0.5")
	t.Setenv("PORT", "9000")
	t.Setenv("STARTUP_DELAY", "2s")
	t.Setenv("POD_NAME", "p")
	got, err := ConfigFromEnv()
	if err != nil {
		t.Fatalf("ConfigFromEnv() error = %v", err)
	}
	if got.Address() != "127.18.0.5:"+strconv.Itoa(9000) || got.StartupDelay != 2*time.Second || got.Name != "p" {
		t.Errorf("ConfigFromEnv() = %+v", got)
	}
	t.Setenv("PORT", "nope")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("ConfigFromEnv() with PORT=nope error = nil, want an error")
	}
}
