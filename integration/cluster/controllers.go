package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitForControllers returns once the controller-manager acts on objects: a probe
// Service in the default namespace gets its EndpointSlice, which needs the
// EndpointSlice controller's informers synced.
func (c *Cluster) waitForControllers(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "elasti-harness-probe", Namespace: metav1.NamespaceDefault},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"elasti.test/probe": "none"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
	if err := c.Client.Create(ctx, svc); err != nil {
		return fmt.Errorf("failed to create probe service: %w", err)
	}
	defer c.Client.Delete(context.WithoutCancel(ctx), svc)

	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			var slices discoveryv1.EndpointSliceList
			err := c.Client.List(ctx, &slices, client.InNamespace(svc.Namespace),
				client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name})
			return err == nil && len(slices.Items) > 0, nil
		})
	if err != nil {
		return fmt.Errorf("controller-manager did not act on a probe service: %w", err)
	}
	return nil
}
