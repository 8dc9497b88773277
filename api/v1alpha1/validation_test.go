package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// validSpec returns a spec every rule accepts; each bad case changes one thing.
func validSpec() map[string]any {
	return map[string]any{
		"service": "web",
		"scaleTargetRef": map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
		},
		"triggers": []any{map[string]any{
			"type": "prometheus",
			"metadata": map[string]any{
				"query":         `sum(rate(istio_requests_total{destination_service="web.default.svc.cluster.local"}[1m]))`,
				"serverAddress": "http://prometheus.monitoring:9090",
				"threshold":     "0.01",
			},
		}},
		"autoscaler":    map[string]any{"type": "keda", "name": "web"},
		"enabledPeriod": map[string]any{"schedule": "0 22 * * *", "duration": "12h"},
		"probeResponse": []any{map[string]any{
			"method":   "GET",
			"path":     map[string]any{"type": "Exact", "value": "/healthz"},
			"response": map[string]any{"status": int64(200), "body": `{"ok":true}`},
		}},
	}
}

func newElastiService(ns string, spec map[string]any) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "elasti.truefoundry.com/v1alpha1",
		"kind":       "ElastiService",
		"metadata":   map[string]any{"generateName": "bad-", "namespace": ns},
		"spec":       spec,
	}}
	return obj
}

func trigger(spec map[string]any) map[string]any {
	return spec["triggers"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
}

func sub(spec map[string]any, field string) map[string]any {
	return spec[field].(map[string]any)
}

func probe(spec map[string]any) map[string]any {
	return spec["probeResponse"].([]any)[0].(map[string]any)
}

func TestInvalidSpecsAreRejected(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name   string
		change func(spec map[string]any)
		want   string
	}{
		{"non-numeric threshold", func(s map[string]any) { trigger(s)["threshold"] = "low" },
			"threshold must be a non-negative number written as a string"},
		{"negative threshold", func(s map[string]any) { trigger(s)["threshold"] = "-1" },
			"threshold must be a non-negative number written as a string"},
		{"threshold as a YAML number", func(s map[string]any) { trigger(s)["threshold"] = 0.5 },
			"must be of type string"},
		{"trigger without query", func(s map[string]any) { delete(trigger(s), "query") },
			"spec.triggers[0].metadata.query: Required value"},
		{"blank query", func(s map[string]any) { trigger(s)["query"] = "   " },
			"query must not be blank"},
		{"server address without scheme", func(s map[string]any) {
			trigger(s)["serverAddress"] = "prometheus:9090"
		}, "serverAddress must be an http or https URL"},
		{"unknown trigger type", func(s map[string]any) {
			s["triggers"].([]any)[0].(map[string]any)["type"] = "cpu"
		}, `Unsupported value: "cpu": supported values: "prometheus"`},
		{"unknown autoscaler type", func(s map[string]any) { sub(s, "autoscaler")["type"] = "vpa" },
			`Unsupported value: "vpa": supported values: "keda", "hpa"`},
		{"autoscaler without name", func(s map[string]any) { delete(sub(s, "autoscaler"), "name") },
			"spec.autoscaler.name: Required value"},
		{"cron with words", func(s map[string]any) { sub(s, "enabledPeriod")["schedule"] = "every night" },
			"schedule must be a cron expression of five fields"},
		{"cron with four fields", func(s map[string]any) { sub(s, "enabledPeriod")["schedule"] = "0 22 * *" },
			"schedule must be a cron expression of five fields"},
		{"cron with six fields", func(s map[string]any) {
			sub(s, "enabledPeriod")["schedule"] = "0 0 22 * * *"
		}, "schedule must be a cron expression of five fields"},
		{"duration in words", func(s map[string]any) { sub(s, "enabledPeriod")["duration"] = "8 hours" },
			"duration must be a positive duration"},
		{"zero duration", func(s map[string]any) { sub(s, "enabledPeriod")["duration"] = "0s" },
			"duration must be a positive duration"},
		{"unsupported kind", func(s map[string]any) { sub(s, "scaleTargetRef")["kind"] = "DaemonSet" },
			`Unsupported value: "DaemonSet"`},
		{"rollout with apps/v1", func(s map[string]any) { sub(s, "scaleTargetRef")["kind"] = "Rollout" },
			"apiVersion does not match kind"},
		{"deployment with argo group", func(s map[string]any) {
			sub(s, "scaleTargetRef")["apiVersion"] = "argoproj.io/v1alpha1"
		}, "apiVersion does not match kind"},
		{"target without name", func(s map[string]any) { delete(sub(s, "scaleTargetRef"), "name") },
			"spec.scaleTargetRef.name: Required value"},
		{"zero min replicas", func(s map[string]any) { s["minTargetReplicas"] = int64(0) },
			"spec.minTargetReplicas: Invalid value: 0: spec.minTargetReplicas in body should be greater than or equal to 1"},
		{"cooldown over a week", func(s map[string]any) { s["cooldownPeriod"] = int64(604801) },
			"spec.cooldownPeriod in body should be less than or equal to 604800"},
		{"negative cooldown", func(s map[string]any) { s["cooldownPeriod"] = int64(-5) },
			"spec.cooldownPeriod in body should be greater than or equal to 0"},
		{"service not a DNS label", func(s map[string]any) { s["service"] = "Web_Service" },
			"service must be the name of a Service"},
		{"missing service", func(s map[string]any) { delete(s, "service") },
			"spec.service: Required value"},
		{"hold timeout too long", func(s map[string]any) { s["holdTimeout"] = "10m" },
			"holdTimeout must be a duration between 1s and 5m"},
		{"hold timeout in words", func(s map[string]any) { s["holdTimeout"] = "a while" },
			"holdTimeout must be a duration between 1s and 5m"},
		{"zero held-request cap", func(s map[string]any) { s["maxHeldRequests"] = int64(0) },
			"spec.maxHeldRequests in body should be greater than or equal to 1"},
		{"probe status below 200", func(s map[string]any) {
			probe(s)["response"].(map[string]any)["status"] = int64(99)
		}, "should be greater than or equal to 200"},
		{"probe path without slash", func(s map[string]any) {
			probe(s)["path"].(map[string]any)["value"] = "healthz"
		}, "an Exact or PathPrefix path must start with '/'"},
		{"probe unknown method", func(s map[string]any) { probe(s)["method"] = "FETCH" },
			`Unsupported value: "FETCH"`},
		{"probe without response", func(s map[string]any) { delete(probe(s), "response") },
			"spec.probeResponse[0].response: Required value"},
	}

	good := newElastiService(ns, validSpec())
	if err := k8s.Create(context.Background(), good); err != nil {
		t.Fatalf("the valid base spec was rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec()
			tt.change(spec)
			err := k8s.Create(context.Background(), newElastiService(ns, spec))
			if err == nil {
				t.Fatalf("Create() = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Create() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
