package podnet

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

func TestLoopback(t *testing.T) {
	tests := []struct {
		podIP  string
		want   string
		wantOK bool
	}{
		{podIP: "198.18.0.2", want: "127.18.0.2", wantOK: true},
		{podIP: "198.19.255.254", want: "127.19.255.254", wantOK: true},
		{podIP: "198.20.0.1", wantOK: false},
		{podIP: "127.18.0.2", wantOK: false},
		{podIP: "10.0.0.1", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.podIP, func(t *testing.T) {
			got, ok := Loopback(netip.MustParseAddr(tt.podIP))
			if ok != tt.wantOK {
				t.Fatalf("Loopback(%s) ok = %v, want %v", tt.podIP, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if got.String() != tt.want {
				t.Errorf("Loopback(%s) = %s, want %s", tt.podIP, got, tt.want)
			}
			back, ok := PodIP(got)
			if !ok || back.String() != tt.podIP {
				t.Errorf("PodIP(%s) = %s, %v, want %s", got, back, ok, tt.podIP)
			}
		})
	}
}

func TestAllocatorSkipsNodeAndReuseOnlyAfterWrap(t *testing.T) {
	a := Allocator{LockDir: t.TempDir()}
	first, err := a.Allocate()
	if err != nil {
		t.Fatalf("Allocate() error = %v", err)
	}
	if first == NodeIP || !Prefix.Contains(first) {
		t.Fatalf("Allocate() = %s, want an address in %s other than %s", first, Prefix, NodeIP)
	}
	a.Release(first)
	second, err := a.Allocate()
	if err != nil {
		t.Fatalf("Allocate() error = %v", err)
	}
	if second == first {
		t.Errorf("Allocate() after Release = %s, want a fresh address", second)
	}
}

func TestDialContextRefusesRoutableAddresses(t *testing.T) {
	if _, err := DialContext(context.Background(), "tcp", "192.0.2.1:80"); err == nil {
		t.Fatal("DialContext(192.0.2.1:80) error = nil, want a refusal")
	}

	// A listener on a mapped loopback address is reachable through its pod IP.
	ln, err := net.Listen("tcp", "127.18.0.9:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	pod := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), uint16(port))
	conn, err := DialContext(context.Background(), "tcp", pod.String())
	if err != nil {
		t.Fatalf("DialContext(%s) error = %v", pod, err)
	}
	conn.Close()
}

// TestAllocatorsShareTheMachine checks that two allocators, standing for two clusters
// on one machine, never hand out the same address.
func TestAllocatorsShareTheMachine(t *testing.T) {
	dir := t.TempDir()
	a, b := &Allocator{LockDir: dir}, &Allocator{LockDir: dir}
	seen := map[netip.Addr]bool{}
	for range 5 {
		for _, alloc := range []*Allocator{a, b} {
			ip, err := alloc.Allocate()
			if err != nil {
				t.Fatalf("Allocate() error = %v", err)
			}
			if seen[ip] {
				t.Fatalf("Allocate() = %s, already held by the other allocator", ip)
			}
			seen[ip] = true
		}
	}
}
