package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elasti-mesh/elasti/integration/cluster"
	"github.com/elasti-mesh/elasti/integration/podnet"
	"github.com/elasti-mesh/elasti/integration/testapp"
)

// appLabels select the test app's pods in every test namespace.
var appLabels = map[string]string{"app": "testapp"}

const appPort = 8080

func podTemplate(o testapp.ContainerOptions) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{testapp.Container(o)},
			TerminationGracePeriodSeconds: ptr.To[int64](5),
		},
	}
}

func newDeployment(ns string, replicas int32, o testapp.ContainerOptions) client.Object {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "testapp", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: podTemplate(o),
		},
	}
}

func newStatefulSet(ns string, replicas int32, o testapp.ContainerOptions) client.Object {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "testapp", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: "testapp",
			Selector:    &metav1.LabelSelector{MatchLabels: appLabels},
			Template:    podTemplate(o),
		},
	}
}

func newService(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "testapp", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: appLabels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrPort()}},
		},
	}
}

// deploy creates the Service and the workload in ns.
func deploy(t testing.TB, c *cluster.Cluster, workload client.Object) {
	t.Helper()
	ctx := t.Context()
	if err := c.Client.Create(ctx, newService(workload.GetNamespace())); err != nil {
		t.Fatalf("failed to create service: %v", err)
	}
	if err := c.Client.Create(ctx, workload); err != nil {
		t.Fatalf("failed to create workload: %v", err)
	}
}

// scale sets replicas through the scale subresource, as an autoscaler would.
func scale(t testing.TB, c *cluster.Cluster, workload client.Object, replicas int32) {
	t.Helper()
	s := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	err := c.Client.SubResource("scale").Update(t.Context(), workload, client.WithSubResourceBody(s))
	if err != nil {
		t.Fatalf("failed to scale to %d: %v", replicas, err)
	}
}

// get answers GET path from the pod at podIP, through its loopback address.
func get(ctx context.Context, podIP netip.Addr, path string) (int, http.Header, string, error) {
	lo, ok := podnet.Loopback(podIP)
	if !ok {
		return 0, nil, "", fmt.Errorf("%s is not a pod IP", podIP)
	}
	url := "http://" + netip.AddrPortFrom(lo, appPort).String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body), err
}

var httpClient = podnet.NewHTTPClient(5 * time.Second)

// podPIDs returns the process ids of the running containers of the namespace's pods.
func podPIDs(t testing.TB, c *cluster.Cluster, ns string) []int {
	t.Helper()
	var pods corev1.PodList
	if err := c.Client.List(t.Context(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatalf("failed to list pods: %v", err)
	}
	var pids []int
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			pid, err := strconv.Atoi(strings.TrimPrefix(cs.ContainerID, "process://"))
			if err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitNoPods waits until the namespace has no pods left.
func waitNoPods(t testing.TB, c *cluster.Cluster, ns string, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			var pods corev1.PodList
			err := c.Client.List(ctx, &pods, client.InNamespace(ns))
			return err == nil && len(pods.Items) == 0, nil
		})
	if err != nil {
		t.Fatalf("pods of %q still exist: %v", ns, err)
	}
}

func processExists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestScaleZeroAndBack runs the scale-to-zero cycle against each kind of workload: N
// replicas with a startup delay become N ready endpoints that answer HTTP; 0 replicas
// leave no endpoint and no process; 1 replica serves again.
func TestScaleZeroAndBack(t *testing.T) {
	c := cluster.Shared(t)
	opts := testapp.ContainerOptions{StartupDelay: 2 * time.Second}
	tests := []struct {
		name     string
		workload func(ns string, replicas int32, o testapp.ContainerOptions) client.Object
	}{
		{name: "Deployment", workload: newDeployment},
		{name: "StatefulSet", workload: newStatefulSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := c.NewNamespace(t)
			workload := tt.workload(ns, 3, opts)
			deploy(t, c, workload)

			ips, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 3, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, ip := range ips {
				if !podnet.Prefix.Contains(ip) {
					t.Errorf("endpoint %s is outside the pod range %s", ip, podnet.Prefix)
				}
				code, header, _, err := get(t.Context(), ip, "/")
				if err != nil || code != http.StatusOK {
					t.Fatalf("GET / on %s = %d, %v, want 200", ip, code, err)
				}
				names[header.Get(testapp.NameHeader)] = true
			}
			if len(names) != 3 {
				t.Errorf("endpoints answered as %v, want 3 distinct pods", names)
			}
			pids := podPIDs(t, c, ns)
			if len(pids) != 3 {
				t.Fatalf("running processes = %v, want 3", pids)
			}

			scale(t, c, workload, 0)
			if _, err := c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 0, 60*time.Second); err != nil {
				t.Fatal(err)
			}
			waitNoPods(t, c, ns, 60*time.Second)
			for _, pid := range pids {
				if processExists(pid) {
					t.Errorf("process %d still exists after scaling to zero", pid)
				}
			}
			for _, ip := range ips {
				if _, _, _, err := get(t.Context(), ip, "/"); err == nil {
					t.Errorf("GET / on %s succeeded after scaling to zero", ip)
				}
			}

			scale(t, c, workload, 1)
			ips, err = c.WaitForReadyEndpoints(t.Context(), ns, "testapp", 1, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code, _, _, err := get(t.Context(), ips[0], "/"); err != nil || code != http.StatusOK {
				t.Errorf("GET / on %s after scaling to 1 = %d, %v, want 200", ips[0], code, err)
			}
		})
	}
}

func intstrPort() intstr.IntOrString { return intstr.FromString("http") }
