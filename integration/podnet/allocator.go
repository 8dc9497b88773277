package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// ErrExhausted is returned by Allocate when every address in Prefix is in use.
var ErrExhausted = errors.New("pod address range exhausted")

// NodeIP is the address the node reports; no pod gets it.
var NodeIP = Prefix.Addr().Next()

// Allocator hands out pod IPs from Prefix. Addresses are handed out in order and
// reused only after the range wraps around, so a new pod never inherits the address of
// one that just ended.
//
// Several clusters may run on one machine at once (go test runs packages in
// parallel) and they share 127.0.0.0/8, so an address is leased machine-wide: the
// allocator holds an flock on a file named after it in LockDir while it is allocated.
// The kernel drops the lock when the process ends, so a crashed test leaks nothing.
//
// The zero value is ready to use and it is safe for concurrent use.
type Allocator struct {
	// LockDir holds the lease files. Defaults to elasti-podnet in os.TempDir().
	LockDir string

	// mu guards next and leases.
	mu     sync.Mutex
	next   netip.Addr
	leases map[netip.Addr]*os.File
}

// Allocate returns a pod IP that no allocator on this machine holds.
func (a *Allocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if a.leases == nil {
		a.leases = map[netip.Addr]*os.File{}
	}
	dir := a.LockDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "elasti-podnet")
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to create lease folder: %w", err)
	}

	size := 1 << (32 - Prefix.Bits())
	for range size {
		if !a.next.IsValid() || !Prefix.Contains(a.next) {
			a.next = NodeIP.Next()
		}
		ip := a.next
		a.next = a.next.Next()
		if a.leases[ip] != nil || !isUsable(ip) {
			continue
		}
		lease, err := lease(dir, ip)
		if err != nil {
			return netip.Addr{}, err
		}
		if lease != nil {
			a.leases[ip] = lease
			return ip, nil
		}
	}
	return netip.Addr{}, ErrExhausted
}

// lease takes the machine-wide lease on ip, or returns nil if another holds it.
func lease(dir string, ip netip.Addr) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ip.String()), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("failed to open lease of %s: %w", ip, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to lock lease of %s: %w", ip, err)
	}
	return f, nil
}

// Release returns ip to the pool. Releasing an address that is not allocated does
// nothing.
func (a *Allocator) Release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.leases[ip]; f != nil {
		f.Close()
		delete(a.leases, ip)
	}
}

// isUsable skips the network address, the node address and .0/.255 host parts, which
// some tools treat specially.
func isUsable(ip netip.Addr) bool {
	b := ip.As4()
	return ip != Prefix.Addr() && ip != NodeIP && b[3] != 0 && b[3] != 255
}
