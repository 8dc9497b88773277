package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/elasti-mesh/elasti/integration/podnet"
)

// registerNode creates the Node (or takes over an existing one), marks it Ready and
// removes the not-ready taint that admission puts on new nodes, which nothing else
// would remove since no node lifecycle controller runs.
func (a *Agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.opts.NodeName,
			Labels: map[string]string{
				corev1.LabelHostname:   a.opts.NodeName,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
	}
	_, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create node %q: %w", a.opts.NodeName, err)
	}

	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	now := metav1.NewTime(time.Now())
	status := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type:               corev1.NodeReady,
			Status:             corev1.ConditionTrue,
			Reason:             "AgentReady",
			Message:            "the local node agent runs pods as processes",
			LastHeartbeatTime:  now,
			LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: podnet.NodeIP.String()},
			{Type: corev1.NodeHostName, Address: a.opts.NodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: runtime.GOOS,
			Architecture:    runtime.GOARCH,
			KubeletVersion:  "v1.37.2",
		},
	}
	if err := a.patch(ctx, "nodes", "", a.opts.NodeName, map[string]any{"status": status}, "status"); err != nil {
		return fmt.Errorf("failed to report status of node %q: %w", a.opts.NodeName, err)
	}
	if err := a.patch(ctx, "nodes", "", a.opts.NodeName, map[string]any{"spec": map[string]any{"taints": nil}}, ""); err != nil {
		return fmt.Errorf("failed to clear taints of node %q: %w", a.opts.NodeName, err)
	}
	return nil
}

// patch sends a JSON merge patch to a node or pod, or their status subresource.
func (a *Agent) patch(ctx context.Context, resource, namespace, name string, body any, subresource string) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("failed to encode patch: %w", err)
	}
	var subs []string
	if subresource != "" {
		subs = []string{subresource}
	}
	opts := metav1.PatchOptions{}
	switch resource {
	case "nodes":
		_, err = a.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, data, opts, subs...)
	case "pods":
		_, err = a.client.CoreV1().Pods(namespace).Patch(ctx, name, types.MergePatchType, data, opts, subs...)
	default:
		return fmt.Errorf("cannot patch %q", resource)
	}
	return err
}

func (a *Agent) nodeIP() string { return podnet.NodeIP.String() }
