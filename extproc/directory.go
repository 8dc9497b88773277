package extproc

import (
	"sync"

	"github.com/go-logr/logr"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// Directory indexes ElastiServices by the Service they govern. It is safe for
// concurrent use; the zero value is not usable, use NewDirectory.
type Directory struct {
	log logr.Logger

	// mu guards byService and byName.
	mu sync.RWMutex
	// byService maps a Service to the Targets of the ElastiServices naming it,
	// by ElastiService name. More than one is a user error; Get picks one
	// deterministically.
	byService map[ServiceKey]map[string]*Target
	// byName maps namespace/ElastiService name to the Service it named last.
	byName map[ServiceKey]ServiceKey
}

// NewDirectory returns an empty Directory. Invalid probe rules of the
// ElastiServices it is given are logged through log.
func NewDirectory(log logr.Logger) *Directory {
	return &Directory{
		log:       log,
		byService: map[ServiceKey]map[string]*Target{},
		byName:    map[ServiceKey]ServiceKey{},
	}
}

// Upsert records es, replacing what was recorded under its name. es is only
// read.
func (d *Directory) Upsert(es *v1alpha1.ElastiService) {
	t := NewTarget(d.log, es)
	name := ServiceKey{Namespace: es.Namespace, Name: es.Name}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(name)
	byName := d.byService[t.Service]
	if byName == nil {
		byName = map[string]*Target{}
		d.byService[t.Service] = byName
	}
	byName[es.Name] = t
	d.byName[name] = t.Service
}

// Delete forgets the ElastiService namespace/name.
func (d *Directory) Delete(namespace, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(ServiceKey{Namespace: namespace, Name: name})
}

// removeLocked forgets an ElastiService; d.mu must be held.
func (d *Directory) removeLocked(name ServiceKey) {
	svc, ok := d.byName[name]
	if !ok {
		return
	}
	delete(d.byName, name)
	delete(d.byService[svc], name.Name)
	if len(d.byService[svc]) == 0 {
		delete(d.byService, svc)
	}
}

// Get returns the Target governing svc, or nil. When several ElastiServices
// name the same Service, the one whose name sorts first wins.
func (d *Directory) Get(svc ServiceKey) *Target {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var best *Target
	for name, t := range d.byService[svc] {
		if best == nil || name < best.Name {
			best = t
		}
	}
	return best
}
