package scaler

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// verdicts holds the latest trigger verdict of each service. It is safe for
// concurrent use; the zero value is not, use newVerdicts.
type verdicts struct {
	// mu guards byService.
	mu        sync.RWMutex
	byService map[types.NamespacedName]verdict
}

func newVerdicts() *verdicts {
	return &verdicts{byService: map[types.NamespacedName]verdict{}}
}

// get returns the service's latest verdict, and false when it has none yet.
func (v *verdicts) get(key types.NamespacedName) (verdict, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	got, ok := v.byService[key]
	return got, ok
}

// set stores a verdict and reports whether it differs in substance from the one
// it replaces (or there was none), so that only changes wake the reconciler.
func (v *verdicts) set(key types.NamespacedName, next verdict) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	prev, ok := v.byService[key]
	v.byService[key] = next
	return !ok || prev.Active != next.Active || prev.Idle != next.Idle ||
		errString(prev.Err) != errString(next.Err)
}

// forget drops a service's verdict.
func (v *verdicts) forget(key types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.byService, key)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
