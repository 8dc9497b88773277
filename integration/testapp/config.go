// Package testapp is the program the local test cluster runs for pods whose image is
// Image: an HTTP, WebSocket and gRPC (h2c) server with the knobs scale-from-zero tests
// need, such as a delay before it listens and a readiness switch.
package testapp

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Config holds the test app's settings. The node agent passes them as environment
// variables; each field names its variable.
type Config struct {
	// ListenAddr is the IP to listen on (LISTEN_ADDR). Defaults to 127.0.0.1.
	ListenAddr string
	// Port is the TCP port for HTTP, WebSocket and gRPC (PORT). Defaults to 8080.
	Port int
	// StartupDelay is how long the app waits before it listens (STARTUP_DELAY, a Go
	// duration). Defaults to zero.
	StartupDelay time.Duration
	// ReadyDelay is how long after listening /ready starts to answer 200 (READY_DELAY).
	// Defaults to zero.
	ReadyDelay time.Duration
	// ShutdownDelay is how long the app keeps serving after SIGTERM before it closes its
	// listener (SHUTDOWN_DELAY). Defaults to zero.
	ShutdownDelay time.Duration
	// Name identifies the instance in responses (POD_NAME). Defaults to the host name.
	Name string
}

// Address returns host:port to listen on.
func (c Config) Address() string {
	return net.JoinHostPort(c.ListenAddr, strconv.Itoa(c.Port))
}

// ConfigFromEnv reads a Config from the environment, applying defaults.
func ConfigFromEnv() (Config, error) {
	c := Config{ListenAddr: os.Getenv("LISTEN_ADDR"), Port: 8080, Name: os.Getenv("POD_NAME")}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1"
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if v := os.Getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("failed to parse PORT %q: %w", v, err)
		}
		c.Port = p
	}
	for name, dst := range map[string]*time.Duration{
		"STARTUP_DELAY":  &c.StartupDelay,
		"READY_DELAY":    &c.ReadyDelay,
		"SHUTDOWN_DELAY": &c.ShutdownDelay,
	} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("failed to parse %s %q: %w", name, v, err)
		}
		*dst = d
	}
	return c, nil
}
