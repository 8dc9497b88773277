package nodeagent

import "strings"

// env is an ordered environment in which a later set replaces an earlier one.
type env struct {
	order  []string
	values map[string]string
}

func newEnv() *env { return &env{values: map[string]string{}} }

func (e *env) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.order = append(e.order, name)
	}
	e.values[name] = value
}

func (e *env) setPair(kv string) {
	name, value, _ := strings.Cut(kv, "=")
	e.set(name, value)
}

func (e *env) list() []string {
	out := make([]string, 0, len(e.order))
	for _, name := range e.order {
		out = append(out, name+"="+e.values[name])
	}
	return out
}
