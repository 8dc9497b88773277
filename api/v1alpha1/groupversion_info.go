// Package v1alpha1 holds the ElastiService API, elasti.truefoundry.com/v1alpha1.
//
// The group, version, kind and JSON field names are those of TrueFoundry's Elasti,
// so a manifest written for Elasti applies unchanged. Fields this project adds are
// optional and default to values that keep Elasti's behaviour.
//
// +kubebuilder:object:generate=true
// +groupName=elasti.truefoundry.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the ElastiService API.
	GroupVersion = schema.GroupVersion{Group: "elasti.truefoundry.com", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ElastiService{}, &ElastiServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
