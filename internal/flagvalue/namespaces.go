// Package flagvalue holds flag kinds both elasti programs take.
package flagvalue

import (
	"flag"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Namespaces registers a flag that takes a comma-separated list of namespace
// names and appends each one to into. Blanks around names and empty entries are
// ignored; a name that cannot be a namespace fails the parse, so a typo stops the
// program at start with what to fix rather than quietly watching nothing.
func Namespaces(fs *flag.FlagSet, name, usage string, into *[]string) {
	fs.Func(name, usage, func(v string) error {
		for _, ns := range strings.Split(v, ",") {
			ns = strings.TrimSpace(ns)
			if ns == "" {
				continue
			}
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				return fmt.Errorf("%q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
			}
			*into = append(*into, ns)
		}
		return nil
	})
}
