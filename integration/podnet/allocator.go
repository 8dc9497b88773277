package podnet

import (
	"errors"
	"net/netip"
	"sync"
)

// ErrExhausted is returned by Allocate when every address in Prefix is in use.
var ErrExhausted = errors.New("pod address range exhausted")

// Allocator hands out pod IPs from Prefix. Addresses are handed out in order and
// reused only after the range wraps around, so a new pod never inherits the address of
// one that just ended. The first address is kept for the node. The zero value is ready
// to use and it is safe for concurrent use.
type Allocator struct {
	// mu guards next and used.
	mu   sync.Mutex
	next netip.Addr
	used map[netip.Addr]bool
}

// NodeIP is the address the node reports; no pod gets it.
var NodeIP = Prefix.Addr().Next()

// Allocate returns an unused pod IP.
func (a *Allocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if a.used == nil {
		a.used = map[netip.Addr]bool{}
	}
	size := 1 << (32 - Prefix.Bits())
	for range size {
		if !a.next.IsValid() || !Prefix.Contains(a.next) {
			a.next = NodeIP.Next()
		}
		ip := a.next
		a.next = a.next.Next()
		if !a.used[ip] && isUsable(ip) {
			a.used[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, ErrExhausted
}

// Release returns ip to the pool. Releasing an address that is not allocated does
// nothing.
func (a *Allocator) Release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, ip)
}

// isUsable skips the network address, the node address and .0/.255 host parts, which
// some tools treat specially.
func isUsable(ip netip.Addr) bool {
	b := ip.As4()
	return ip != Prefix.Addr() && ip != NodeIP && b[3] != 0 && b[3] != 255
}
