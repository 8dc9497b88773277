package nodeagent

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// prober runs one container's readiness probe with the kubelet's semantics: the first
// check after initialDelaySeconds, then one every periodSeconds, a check failing when
// it takes longer than timeoutSeconds, and readiness changing after successThreshold
// successes or failureThreshold failures in a row. Only httpGet and tcpSocket probes
// are run; exec and grpc probes always succeed here.
type prober struct {
	probe  *corev1.Probe
	ports  []corev1.ContainerPort
	target netip.Addr
}

func newProber(spec *corev1.Container, loopback netip.Addr) *prober {
	return &prober{probe: spec.ReadinessProbe, ports: spec.Ports, target: loopback}
}

// run reports readiness changes until ctx ends. Readiness starts false.
func (p *prober) run(ctx context.Context, report func(ready bool)) {
	if p.probe == nil {
		report(true)
		return
	}
	if sleepCtx(ctx, seconds(p.probe.InitialDelaySeconds, 0)) != nil {
		return
	}
	period := seconds(p.probe.PeriodSeconds, 10)
	successThreshold := max(int(p.probe.SuccessThreshold), 1)
	failureThreshold := max(int(p.probe.FailureThreshold), 1)

	ready := false
	successes, failures := 0, 0
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		if p.check(ctx) {
			successes, failures = successes+1, 0
			if !ready && successes >= successThreshold {
				ready = true
				report(true)
			}
		} else {
			successes, failures = 0, failures+1
			if ready && failures >= failureThreshold {
				ready = false
				report(false)
			}
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// check runs the probe once against the pod's loopback address.
func (p *prober) check(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, seconds(p.probe.TimeoutSeconds, 1))
	defer cancel()

	switch h := p.probe.ProbeHandler; {
	case h.HTTPGet != nil:
		return p.checkHTTP(ctx, h.HTTPGet)
	case h.TCPSocket != nil:
		port, ok := p.port(h.TCPSocket.Port)
		if !ok {
			return false
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(p.target, port).String())
		if err != nil {
			return false
		}
		conn.Close()
		return true
	default:
		return true
	}
}

func (p *prober) checkHTTP(ctx context.Context, g *corev1.HTTPGetAction) bool {
	port, ok := p.port(g.Port)
	if !ok {
		return false
	}
	url := "http://" + netip.AddrPortFrom(p.target, port).String() + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// probeClient never reuses connections, like the kubelet's, so a probe sees a process
// that stopped listening at once.
var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// port resolves a numeric or named container port.
func (p *prober) port(v intstr.IntOrString) (uint16, bool) {
	if v.Type == intstr.Int {
		return uint16(v.IntVal), v.IntVal > 0 && v.IntVal < 65536
	}
	if n, err := strconv.Atoi(v.StrVal); err == nil {
		return uint16(n), n > 0 && n < 65536
	}
	for _, cp := range p.ports {
		if cp.Name == v.StrVal {
			return uint16(cp.ContainerPort), true
		}
	}
	return 0, false
}

func seconds(v int32, fallback int) time.Duration {
	if v <= 0 {
		return time.Duration(fallback) * time.Second
	}
	return time.Duration(v) * time.Second
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
