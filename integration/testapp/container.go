package testapp

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Image is the image name the local node agent runs the test app for. Tags are
// ignored.
const Image = "elasti.test/testapp"

// ContainerOptions shape the container Container returns.
type ContainerOptions struct {
	// Port is the container port. Defaults to 8080.
	Port int32
	// StartupDelay and ReadyDelay set the app's STARTUP_DELAY and READY_DELAY.
	StartupDelay, ReadyDelay time.Duration
	// ShutdownDelay sets SHUTDOWN_DELAY.
	ShutdownDelay time.Duration
	// ProbePeriodSeconds is the readiness probe period. Defaults to 1.
	ProbePeriodSeconds int32
}

// Container returns a test app container named "app" with an httpGet readiness probe
// on /ready that turns unready after one failure.
func Container(o ContainerOptions) corev1.Container {
	if o.Port == 0 {
		o.Port = 8080
	}
	if o.ProbePeriodSeconds == 0 {
		o.ProbePeriodSeconds = 1
	}
	return corev1.Container{
		Name:  "app",
		Image: Image,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: o.Port}},
		Env: []corev1.EnvVar{
			{Name: "STARTUP_DELAY", Value: o.StartupDelay.String()},
			{Name: "READY_DELAY", Value: o.ReadyDelay.String()},
			{Name: "SHUTDOWN_DELAY", Value: o.ShutdownDelay.String()},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready",
				Port: intstr.FromString("http"),
			}},
			PeriodSeconds:    o.ProbePeriodSeconds,
			FailureThreshold: 1,
			SuccessThreshold: 1,
			TimeoutSeconds:   1,
		},
	}
}
