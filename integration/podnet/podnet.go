// Package podnet maps the addresses pods report to the Kubernetes API onto the loopback
// addresses where their processes really listen.
//
// The API server refuses loopback addresses in EndpointSlices, so the local node agent
// reports pod IPs from Prefix, a benchmarking range that is never routed, and runs each
// pod's processes on the loopback address with the same last 17 bits:
// 198.18.a.b listens on 127.18.a.b and 198.19.a.b on 127.19.a.b. Everything that sends
// traffic to a pod (tests, the Envoy emulator) dials through Loopback or DialContext;
// nothing dials a pod IP itself.
package podnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Prefix is the range pod IPs are taken from (RFC 2544 benchmarking range).
var Prefix = netip.MustParsePrefix("198.18.0.0/15")

// loopbackPrefix is the image of Prefix in 127.0.0.0/8.
var loopbackPrefix = netip.MustParsePrefix("127.18.0.0/15")

// Loopback returns the loopback address where the pod with podIP listens. It reports
// false for addresses outside Prefix.
func Loopback(podIP netip.Addr) (netip.Addr, bool) {
	return swapFirstOctet(podIP.Unmap(), Prefix, 127)
}

// PodIP is the inverse of Loopback.
func PodIP(loopback netip.Addr) (netip.Addr, bool) {
	return swapFirstOctet(loopback.Unmap(), loopbackPrefix, 198)
}

func swapFirstOctet(a netip.Addr, from netip.Prefix, octet byte) (netip.Addr, bool) {
	if !from.Contains(a) {
		return netip.Addr{}, false
	}
	b := a.As4()
	b[0] = octet
	return netip.AddrFrom4(b), true
}

// LoopbackHostPort maps "podIP:port" to "loopback:port". Host names and addresses
// outside Prefix are an error.
func LoopbackHostPort(address string) (string, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return "", fmt.Errorf("failed to parse pod address %q: %w", address, err)
	}
	lo, ok := Loopback(ap.Addr())
	if !ok {
		return "", fmt.Errorf("address %q is not a pod address in %s", address, Prefix)
	}
	return netip.AddrPortFrom(lo, ap.Port()).String(), nil
}

// DialContext dials address, rewriting a pod IP to its loopback address. It refuses
// every destination that is not on 127.0.0.0/8 after the rewrite, so no test traffic
// can leave the machine. It has the signature of net.Dialer.DialContext.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("failed to parse address %q: %w", address, err)
	}
	addr := ap.Addr().Unmap()
	if lo, ok := Loopback(addr); ok {
		addr = lo
	}
	if !addr.IsLoopback() {
		return nil, fmt.Errorf("refusing to dial %q: not a pod or loopback address", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, netip.AddrPortFrom(addr, ap.Port()).String())
}

// NewHTTPClient returns an HTTP client whose connections go through DialContext, so
// URLs may name pod IPs directly. Redirects are not followed.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         DialContext,
			DisableKeepAlives:   true,
			MaxIdleConnsPerHost: -1,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
