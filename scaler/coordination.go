package scaler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// serviceState is the scaler's in-memory state of one service, shared by the
// reconciler and the activation server.
type serviceState struct {
	// scaleMu serializes decisions that read the replica count and then write it,
	// so an activation never lands between a scale-down's last check and its write.
	scaleMu sync.Mutex

	// mu guards the fields below it.
	mu sync.Mutex
	// lastActivation is when the latest activation call arrived.
	lastActivation time.Time
	// holdSince is when routes were switched to hold for a pending scale-down;
	// zero when none is pending.
	holdSince time.Time
	// readySince is when a service in hold with replicas was first seen with a
	// ready endpoint; zero while it has none.
	readySince time.Time
	// atZero is whether the latest /scale read or write of the workload saw zero
	// replicas. It only picks the fast path of an activation, which tests the
	// replica count again in its write, so a stale value costs time, not safety.
	atZero bool
	// flight is the activation under way, shared by concurrent callers.
	flight *activationFlight
	// warned holds the warning reasons already recorded as events.
	warned map[string]bool
}

// activationFlight is one activation that concurrent callers wait on together.
type activationFlight struct {
	done   chan struct{}
	result activationResult
}

// states holds the serviceState of every service. It is safe for concurrent use.
type states struct {
	// mu guards byService.
	mu        sync.Mutex
	byService map[types.NamespacedName]*serviceState
}

func newStates() *states {
	return &states{byService: map[types.NamespacedName]*serviceState{}}
}

// get returns the service's state, creating it on first use.
func (s *states) get(key types.NamespacedName) *serviceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byService[key]
	if !ok {
		st = &serviceState{}
		s.byService[key] = st
	}
	return st
}

// forget drops a deleted service's state.
func (s *states) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byService, key)
}

// noteScale records the replica count the workload was last seen or set at.
func (st *serviceState) noteScale(spec int32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.atZero = spec == 0
}

// seenAtZero reports whether the workload was last seen or set at zero replicas.
func (st *serviceState) seenAtZero() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.atZero
}

// activatedSince reports whether an activation arrived at or after t.
func (st *serviceState) activatedSince(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.lastActivation.Before(t)
}

func (st *serviceState) pendingHold() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.holdSince
}

func (st *serviceState) setPendingHold(t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.holdSince = t
}

// readyFor records whether the service has a ready endpoint now and returns how
// long it has had one without a break (zero when it has none).
func (st *serviceState) readyFor(ready bool, now time.Time) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !ready {
		st.readySince = time.Time{}
		return 0
	}
	if st.readySince.IsZero() {
		st.readySince = now
	}
	return now.Sub(st.readySince)
}
