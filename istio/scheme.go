package istio

import (
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// AddToScheme adds Istio's networking.istio.io/v1 types (VirtualService,
// DestinationRule, Gateway and the rest) to s. The route switch itself reads and
// writes VirtualServices as unstructured objects and needs no scheme entry; this is
// for callers that want the typed objects.
func AddToScheme(s *runtime.Scheme) error {
	return networkingv1.AddToScheme(s)
}
