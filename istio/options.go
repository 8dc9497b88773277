package istio

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultClusterDomain is the cluster's DNS domain unless RouteSwitchOptions says
// otherwise.
const DefaultClusterDomain = "cluster.local"

// RouteSwitchOptions configure a RouteSwitch. The zero value works.
type RouteSwitchOptions struct {
	// ClusterDomain is the cluster's DNS domain, the tail of a Service's fully
	// qualified name. Defaults to DefaultClusterDomain.
	ClusterDomain string

	// Namespaces limits the VirtualServices the switch reads and rewrites to these
	// namespaces. Defaults to every namespace; routes in other namespaces that send
	// to a Service are then left alone.
	Namespaces []string

	// FieldManager names the switch in the managedFields of what it writes.
	// Defaults to ManagedByValue.
	FieldManager string
}

// Validate reports options that cannot work, with what to change.
func (o *RouteSwitchOptions) Validate() error {
	if o.ClusterDomain != "" {
		if errs := validation.IsDNS1123Subdomain(o.ClusterDomain); len(errs) > 0 {
			return fmt.Errorf("cluster domain %q is not a DNS name: %v", o.ClusterDomain, errs)
		}
	}
	for _, ns := range o.Namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("namespace %q is not a namespace name: %v", ns, errs)
		}
	}
	if len(o.FieldManager) > 128 {
		return fmt.Errorf("field manager %q is longer than 128 characters", o.FieldManager)
	}
	return nil
}

// withDefaults returns a copy of o with every unset field at its default.
func (o RouteSwitchOptions) withDefaults() RouteSwitchOptions {
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	if o.FieldManager == "" {
		o.FieldManager = ManagedByValue
	}
	o.Namespaces = append([]string(nil), o.Namespaces...)
	return o
}
