package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReadyEndpoints returns the pod IPs of the ready endpoints in the EndpointSlices of a
// Service, sorted.
func (c *Cluster) ReadyEndpoints(ctx context.Context, namespace, service string) ([]netip.Addr, error) {
	var list discoveryv1.EndpointSliceList
	err := c.Client.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: service})
	if err != nil {
		return nil, fmt.Errorf("failed to list EndpointSlices of %q: %w", namespace+"/"+service, err)
	}
	var out []netip.Addr
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					out = append(out, ip)
				}
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// WaitForReadyEndpoints polls until the Service has exactly n ready endpoints and
// returns their pod IPs, or fails after timeout.
func (c *Cluster) WaitForReadyEndpoints(
	ctx context.Context,
	namespace, service string,
	n int,
	timeout time.Duration,
) ([]netip.Addr, error) {
	var got []netip.Addr
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			var err error
			got, err = c.ReadyEndpoints(ctx, namespace, service)
			return err == nil && len(got) == n, nil
		})
	if err != nil {
		return got, fmt.Errorf("service %q has %d ready endpoints, want %d: %w",
			namespace+"/"+service, len(got), n, err)
	}
	return got, nil
}
