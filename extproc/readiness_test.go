package extproc

import (
	"testing"
	"time"
)

func TestReadinessReleasesAfterDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	r := NewReadiness(delay)
	defer r.Close()
	svc := ServiceKey{"ns", "a"}

	_, _, ch := r.State(svc)
	r.SetSlice(svc, "s1", false)
	start := time.Now()
	r.SetSlice(svc, "s1", true)
	if !r.EndpointsReady(svc) || r.Released(svc) {
		t.Fatalf("after ready slice: endpointsReady %v released %v, want true false",
			r.EndpointsReady(svc), r.Released(svc))
	}
	select {
	case <-ch:
		if got := time.Since(start); got < delay {
			t.Errorf("released after %v, want at least %v", got, delay)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not released within 5s")
	}

	// Not ready again: a fresh, open channel for the next waiters.
	r.DeleteSlice(svc, "s1")
	released, _, ch2 := r.State(svc)
	if released {
		t.Fatal("still released after the last slice went away")
	}
	select {
	case <-ch2:
		t.Fatal("new channel already closed")
	default:
	}
}

func TestReadinessFlapCancelsRelease(t *testing.T) {
	const delay = 200 * time.Millisecond
	r := NewReadiness(delay)
	defer r.Close()
	svc := ServiceKey{"ns", "a"}
	_, _, ch := r.State(svc)

	r.SetSlice(svc, "s1", true)
	time.Sleep(delay / 2)
	r.SetSlice(svc, "s1", false)
	r.SetSlice(svc, "s1", true) // the delay starts over here
	restart := time.Now()

	select {
	case <-ch:
		if got := time.Since(restart); got < delay {
			t.Errorf("released %v after becoming ready again, want at least %v", got, delay)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not released within 5s")
	}
}
