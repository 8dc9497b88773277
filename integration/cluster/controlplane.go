package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/elasti-mesh/elasti/integration/proc"
)

// controllers are the kube-controller-manager controllers the tests rely on.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"endpointslice-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"horizontal-pod-autoscaler-controller",
}

// startProcess starts a child whose output goes to name.log in the cluster's folder.
func (c *Cluster) startProcess(name, path string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(proc.Spec{
		Path:    path,
		Args:    args,
		Env:     []string{"HOME=" + c.Dir, "PATH=/usr/bin:/bin"},
		Dir:     c.Dir,
		LogPath: filepath.Join(c.Dir, name+".log"),
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, namedProcess{name: name, p: p})
	c.mu.Unlock()
	return p, nil
}

func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	client, peer := ports[0], ports[1]
	clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	p, err := c.startProcess("etcd", filepath.Join(c.opts.AssetsDir, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=4294967296",
		"--log-level=warn",
	)
	if err != nil {
		return "", err
	}
	err = waitHTTP(ctx, http.DefaultClient, clientURL+"/health", p, func(body string) bool {
		return strings.Contains(body, `"health":"true"`)
	})
	if err != nil {
		return "", fmt.Errorf("etcd did not become healthy: %w", err)
	}
	return clientURL, nil
}

func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	p, err := c.startProcess("kube-apiserver", filepath.Join(c.opts.AssetsDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file="+c.pki.serverCert,
		"--tls-private-key-file="+c.pki.serverKey,
		"--client-ca-file="+c.pki.caCert,
		"--service-account-key-file="+c.pki.saKey,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// The ServiceAccount admission plugin would reject pods until a controller
		// created each namespace's default ServiceAccount; the agent mounts no tokens.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--storage-media-type=application/vnd.kubernetes.protobuf",
		"--v=1",
	)
	if err != nil {
		return err
	}

	c.Config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.caPEM,
			CertData: c.pki.adminPEM,
			KeyData:  c.pki.adminKeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}
	httpClient, err := c.adminHTTPClient()
	if err != nil {
		return err
	}
	err = waitHTTP(ctx, httpClient, c.Config.Host+"/readyz", p, func(body string) bool {
		return strings.TrimSpace(body) == "ok"
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	return c.writeKubeconfig()
}

func (c *Cluster) adminHTTPClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(c.pki.adminPEM, c.pki.adminKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("failed to load admin certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(c.pki.caPEM)
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      roots,
			Certificates: []tls.Certificate{cert},
		}},
	}, nil
}

// writeKubeconfig writes an admin kubeconfig for the controller-manager and for people
// who want to look at a kept cluster with kubectl.
func (c *Cluster) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["elasti"] = &clientcmdapi.Cluster{
		Server:                   c.Config.Host,
		CertificateAuthorityData: c.pki.caPEM,
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: c.pki.adminPEM,
		ClientKeyData:         c.pki.adminKeyPEM,
	}
	cfg.Contexts["elasti"] = &clientcmdapi.Context{Cluster: "elasti", AuthInfo: "admin"}
	cfg.CurrentContext = "elasti"
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, c.KubeconfigPath); err != nil {
		return fmt.Errorf("failed to write kubeconfig: %w", err)
	}
	return nil
}

func (c *Cluster) startControllerManager() error {
	_, err := c.startProcess("kube-controller-manager",
		filepath.Join(c.opts.AssetsDir, "kube-controller-manager"),
		"--kubeconfig="+c.KubeconfigPath,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+c.pki.saKey,
		"--root-ca-file="+c.pki.caCert,
		"--cluster-cidr=198.18.0.0/15",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-service-endpoint-syncs=10",
		"--v=1",
	)
	return err
}

// waitHTTP polls url until ok accepts the body, p exits, or ctx ends.
func waitHTTP(
	ctx context.Context,
	client *http.Client,
	url string,
	p *proc.Process,
	ok func(body string) bool,
) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			select {
			case <-p.Done():
				return false, fmt.Errorf("process exited: %v", p.Err())
			default:
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			last = string(body)
			return ok(last), nil
		})
	if err != nil {
		return fmt.Errorf("%w (last answer: %q)", err, last)
	}
	return nil
}

// freePorts returns n loopback TCP ports that were free a moment ago. Another process
// may take one before it is used; the child then fails to start and says so in its log.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("failed to find a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
