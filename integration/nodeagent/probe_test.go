package nodeagent

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestProberFollowsThresholds runs a probe against a real server on a pod loopback
// address whose health the test switches, and checks the reported transitions.
func TestProberFollowsThresholds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.18.3.4:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	var healthy atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" || !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	port := ln.Addr().(*net.TCPAddr).Port
	spec := &corev1.Container{
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromString("http"),
			}},
			PeriodSeconds:    1,
			FailureThreshold: 2,
		},
	}
	reports := make(chan bool, 4)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go newProber(spec, netip.MustParseAddr("127.18.3.4")).run(ctx, func(ready bool) { reports <- ready })

	healthy.Store(true)
	expect := func(want bool, within time.Duration) {
		t.Helper()
		select {
		case got := <-reports:
			if got != want {
				t.Fatalf("prober reported ready=%v, want %v", got, want)
			}
		case <-time.After(within):
			t.Fatalf("prober reported nothing within %s, want ready=%v", within, want)
		}
	}
	expect(true, 2*time.Second)

	// Two failures in a row, one second apart, are needed.
	began := time.Now()
	healthy.Store(false)
	expect(false, 4*time.Second)
	if elapsed := time.Since(began); elapsed < 900*time.Millisecond {
		t.Errorf("unready after %s, want two failed checks a period apart", elapsed)
	}
}

// TestProberWaitsInitialDelay checks that no check runs before initialDelaySeconds.
func TestProberWaitsInitialDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.18.3.5:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	spec := &corev1.Container{ReadinessProbe: &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
			Port: intstr.FromInt32(int32(ln.Addr().(*net.TCPAddr).Port)),
		}},
		InitialDelaySeconds: 1,
		PeriodSeconds:       1,
	}}
	reports := make(chan bool, 1)
	began := time.Now()
	go newProber(spec, netip.MustParseAddr("127.18.3.5")).run(t.Context(), func(ready bool) { reports <- ready })
	select {
	case <-reports:
		if elapsed := time.Since(began); elapsed < time.Second {
			t.Errorf("ready after %s, want after the 1s initial delay", elapsed)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("prober never reported ready")
	}
}

func TestProgramIgnoresTags(t *testing.T) {
	a := &Agent{opts: Options{Programs: map[string]string{"elasti.test/testapp": "/bin/app"}}}
	tests := []struct {
		image  string
		wantOK bool
	}{
		{image: "elasti.test/testapp", wantOK: true},
		{image: "elasti.test/testapp:v2", wantOK: true},
		{image: "elasti.test/testapp@sha256:abcd", wantOK: true},
		{image: "elasti.test/other", wantOK: false},
		{image: "localhost:5000/testapp", wantOK: false},
	}
	for _, tt := range tests {
		if _, ok := a.program(tt.image); ok != tt.wantOK {
			t.Errorf("program(%q) ok = %v, want %v", tt.image, ok, tt.wantOK)
		}
	}
}

func TestDeletionGrace(t *testing.T) {
	five, two := int64(5), int64(2)
	tests := []struct {
		name string
		pod  corev1.Pod
		want time.Duration
	}{
		{name: "default", want: 30 * time.Second},
		{name: "spec", pod: corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &five}}, want: 5 * time.Second},
		{
			name: "deletion overrides spec",
			pod: func() corev1.Pod {
				p := corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &five}}
				p.DeletionGracePeriodSeconds = &two
				return p
			}(),
			want: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deletionGrace(&tt.pod); got != tt.want {
				t.Errorf("deletionGrace() = %s, want %s", got, tt.want)
			}
		})
	}
}
