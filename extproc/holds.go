package extproc

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// holdsOptions configure the activation calls made while requests are held.
type holdsOptions struct {
	ActivationCallTimeout   time.Duration
	ActivationBackoffBase   time.Duration
	ActivationBackoffMax    time.Duration
	ActivationRetryInterval time.Duration
}

// holds counts the requests held per Service, enforces the cap, and runs one
// activation loop per Service while any request for it is held. Safe for
// concurrent use; close ends every loop.
type holds struct {
	log       logr.Logger
	opts      holdsOptions
	client    ActivationClient
	readiness *Readiness
	metrics   *Metrics

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// mu guards services.
	mu       sync.Mutex
	services map[ServiceKey]*holdCount
}

// holdCount is one Service's held requests; guarded by holds.mu.
type holdCount struct {
	n          int
	activating bool
	// wake is closed, and replaced, when n drops to zero, so that a sleeping
	// activation loop notices at once that nobody waits any more.
	wake chan struct{}
}

func newHolds(
	log logr.Logger,
	opts holdsOptions,
	client ActivationClient,
	readiness *Readiness,
	metrics *Metrics,
) *holds {
	return &holds{
		log:       log,
		opts:      opts,
		client:    client,
		readiness: readiness,
		metrics:   metrics,
		done:      make(chan struct{}),
		services:  map[ServiceKey]*holdCount{},
	}
}

// acquire counts one more held request for t, and starts t's activation loop
// if none runs. It returns false, counting nothing, when t's cap is reached.
func (h *holds) acquire(t *Target) bool {
	h.mu.Lock()
	c := h.services[t.Service]
	if c == nil {
		c = &holdCount{wake: make(chan struct{})}
		h.services[t.Service] = c
	}
	if c.n >= t.HeldCap {
		h.mu.Unlock()
		return false
	}
	c.n++
	start := !c.activating && !h.closing()
	if start {
		c.activating = true
		h.wg.Add(1)
	}
	h.mu.Unlock()

	if start {
		go func() {
			defer h.wg.Done()
			h.activationLoop(t)
		}()
	}
	return true
}

// release counts one held request for svc as ended.
func (h *holds) release(svc ServiceKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.services[svc]
	if c == nil || c.n == 0 {
		return
	}
	c.n--
	if c.n > 0 {
		return
	}
	close(c.wake)
	c.wake = make(chan struct{})
	if !c.activating {
		delete(h.services, svc)
	}
}

// stopActivation is asked by svc's activation loop before each round. When
// nobody waits it marks the loop ended and returns true; otherwise it returns
// the channel that signals the next time nobody waits.
func (h *holds) stopActivation(svc ServiceKey) (bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.services[svc]
	if c == nil {
		return true, nil
	}
	if c.n == 0 || h.closing() {
		c.activating = false
		if c.n == 0 {
			delete(h.services, svc)
		}
		return true, nil
	}
	return false, c.wake
}

// held returns how many requests are held for svc.
func (h *holds) held(svc ServiceKey) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.services[svc]; c != nil {
		return c.n
	}
	return 0
}

// closing reports whether close was called.
func (h *holds) closing() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// close ends every activation loop and waits for them. Held requests are not
// affected; acquire still counts them but starts no new loop.
func (h *holds) close() {
	h.closeOnce.Do(func() { close(h.done) })
	h.wg.Wait()
}
