package extproc

import (
	"sync"
	"time"
)

// Readiness tracks, per Service, whether it has ready endpoints, and releases
// the requests waiting for it once it has had them for the propagation delay.
//
// The delay exists because a released request goes to whatever endpoints the
// proxy holds at that moment: the EndpointSlice change must first travel through
// the mesh's control plane (which batches pushes for about 100ms) to every proxy.
// Releasing earlier turns a held request into a 503 "no healthy upstream".
//
// It is safe for concurrent use; the zero value is not usable, use NewReadiness.
// States are kept for every Service ever seen, a few hundred bytes each; they are
// not collected when a Service goes away.
type Readiness struct {
	delay time.Duration

	// mu guards services and closed.
	mu       sync.Mutex
	services map[ServiceKey]*serviceState
	closed   bool
}

// serviceState is one Service's readiness. Its fields are guarded by
// Readiness.mu.
type serviceState struct {
	// slices maps an EndpointSlice name to whether it has a ready endpoint.
	slices map[string]bool
	// endpointsReady is true when any slice has a ready endpoint.
	endpointsReady bool
	// released is true once endpoints have been ready for the delay.
	released bool
	// releasedCh is closed on release and replaced when the Service stops
	// being ready, so every waiter is woken by one close.
	releasedCh chan struct{}
	// timer fires the release; nil when none is pending.
	timer *time.Timer
	// gen counts timers set, so that a timer that fires after it was stopped
	// and replaced does nothing.
	gen uint64
}

// NewReadiness returns a tracker that releases waiters delay after a Service's
// endpoints become ready.
func NewReadiness(delay time.Duration) *Readiness {
	return &Readiness{delay: delay, services: map[ServiceKey]*serviceState{}}
}

// SetSlice records whether the EndpointSlice named slice of svc has a ready
// endpoint.
func (r *Readiness) SetSlice(svc ServiceKey, slice string, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(svc)
	s.slices[slice] = ready
	r.updateLocked(svc, s)
}

// DeleteSlice forgets the EndpointSlice named slice of svc.
func (r *Readiness) DeleteSlice(svc ServiceKey, slice string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(svc)
	delete(s.slices, slice)
	r.updateLocked(svc, s)
}

// State returns whether svc is released (ready, delay passed), whether it has
// ready endpoints at all, and a channel closed when it is released. The channel
// is already closed when released is true.
func (r *Readiness) State(svc ServiceKey) (released, endpointsReady bool, ch <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(svc)
	return s.released, s.endpointsReady, s.releasedCh
}

// Released reports whether requests for svc may go through.
func (r *Readiness) Released(svc ServiceKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.services[svc]
	return ok && s.released
}

// EndpointsReady reports whether svc has a ready endpoint, delay or not.
func (r *Readiness) EndpointsReady(svc ServiceKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.services[svc]
	return ok && s.endpointsReady
}

// Close stops pending release timers. Waiters are not woken: they end on their
// own timeouts or contexts.
func (r *Readiness) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, s := range r.services {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
}

// stateLocked returns svc's state, creating it; r.mu must be held.
func (r *Readiness) stateLocked(svc ServiceKey) *serviceState {
	s, ok := r.services[svc]
	if !ok {
		s = &serviceState{slices: map[string]bool{}, releasedCh: make(chan struct{})}
		r.services[svc] = s
	}
	return s
}

// updateLocked recomputes svc's readiness after a slice changed and acts on
// the edges; r.mu must be held.
func (r *Readiness) updateLocked(svc ServiceKey, s *serviceState) {
	ready := false
	for _, sliceReady := range s.slices {
		if sliceReady {
			ready = true
			break
		}
	}
	if ready == s.endpointsReady {
		return
	}
	s.endpointsReady = ready

	if !ready {
		// Not ready again: cancel a pending release, and give future waiters a
		// fresh channel if the previous one was already closed.
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		if s.released {
			s.released = false
			s.releasedCh = make(chan struct{})
		}
		return
	}
	if r.closed || s.released {
		return
	}
	if r.delay <= 0 {
		r.releaseLocked(s)
		return
	}
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(r.delay, func() { r.fire(svc, s, gen) })
}

// fire releases s when its timer runs, unless the timer was cancelled since.
func (r *Readiness) fire(svc ServiceKey, s *serviceState, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.services[svc] != s || s.gen != gen || s.timer == nil || !s.endpointsReady {
		return
	}
	s.timer = nil
	r.releaseLocked(s)
}

// releaseLocked wakes every waiter of s at once; r.mu must be held.
func (r *Readiness) releaseLocked(s *serviceState) {
	s.released = true
	close(s.releasedCh)
}
