package envoyemu

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Lag is how long an EndpointSlice change takes to reach the emulated proxy,
// standing for xDS propagation. The zero value applies changes at once.
type Lag struct {
	// Min is the shortest lag.
	Min time.Duration
	// Max is the longest lag; when above Min, each change waits a uniformly
	// random time between the two.
	Max time.Duration
}

func (l Lag) next() time.Duration {
	if l.Max <= l.Min {
		return l.Min
	}
	return l.Min + rand.N(l.Max-l.Min)
}

// endpointTable holds the endpoints the proxy has received, per Service. Changes
// are applied after the lag, in the order they happened, as an xDS stream
// delivers them. Safe for concurrent use.
type endpointTable struct {
	lag Lag

	mu sync.Mutex
	// Guarded by mu: the applied slices, the sequence number of the latest
	// scheduled and applied change, and when the latest change falls due.
	applied    map[types.NamespacedName][]discoveryv1.EndpointSlice
	scheduled  map[types.NamespacedName]uint64
	appliedSeq map[types.NamespacedName]uint64
	due        map[types.NamespacedName]time.Time
	timers     map[*time.Timer]struct{}
	stopped    bool

	next atomic.Uint64 // round-robin counter
}

func newEndpointTable(lag Lag) *endpointTable {
	return &endpointTable{
		lag:        lag,
		applied:    map[types.NamespacedName][]discoveryv1.EndpointSlice{},
		scheduled:  map[types.NamespacedName]uint64{},
		appliedSeq: map[types.NamespacedName]uint64{},
		due:        map[types.NamespacedName]time.Time{},
		timers:     map[*time.Timer]struct{}{},
	}
}

// update schedules the Service's current slices to be applied after the lag.
// slices must not be modified afterwards.
func (t *endpointTable) update(svc types.NamespacedName, slices []discoveryv1.EndpointSlice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.scheduled[svc]++
	seq := t.scheduled[svc]

	// A later change never overtakes an earlier one.
	at := time.Now().Add(t.lag.next())
	if prev := t.due[svc]; at.Before(prev) {
		at = prev
	}
	t.due[svc] = at

	var timer *time.Timer
	timer = time.AfterFunc(time.Until(at), func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.timers, timer)
		if seq > t.appliedSeq[svc] {
			t.appliedSeq[svc] = seq
			t.applied[svc] = slices
		}
	})
	t.timers[timer] = struct{}{}
}

// stop cancels every pending change.
func (t *endpointTable) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for timer := range t.timers {
		timer.Stop()
	}
	t.timers = nil
}

// addresses returns the ready, not terminating pod addresses ("ip:port") of a
// Service port, as the proxy currently knows them.
func (t *endpointTable) addresses(svc types.NamespacedName, port corev1.ServicePort) []string {
	t.mu.Lock()
	slices := t.applied[svc]
	t.mu.Unlock()

	var out []string
	for _, s := range slices {
		target, ok := slicePort(s, port)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if !usable(ep) {
				continue
			}
			for _, addr := range ep.Addresses {
				out = append(out, net.JoinHostPort(addr, strconv.Itoa(int(target))))
			}
		}
	}
	return out
}

// pick returns one address round-robin, or false when there is none.
func (t *endpointTable) pick(svc types.NamespacedName, port corev1.ServicePort) (string, bool) {
	addrs := t.addresses(svc, port)
	if len(addrs) == 0 {
		return "", false
	}
	return addrs[int(t.next.Add(1)%uint64(len(addrs)))], true
}

// slicePort finds the slice's port for a Service port, by name as the
// EndpointSlice API pairs them.
func slicePort(s discoveryv1.EndpointSlice, port corev1.ServicePort) (int32, bool) {
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		if (p.Name == nil && port.Name == "") || (p.Name != nil && *p.Name == port.Name) {
			return *p.Port, true
		}
	}
	return 0, false
}

// usable reports whether an endpoint may receive traffic: ready (nil counts as
// ready, per the API) and not terminating.
func usable(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	if c.Ready != nil && !*c.Ready {
		return false
	}
	return c.Terminating == nil || !*c.Terminating
}
