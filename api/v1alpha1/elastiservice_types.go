package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ElastiServiceSpec describes a workload to scale to zero when idle and the
// Service whose traffic wakes it up again.
type ElastiServiceSpec struct {
	// ScaleTargetRef names the workload scaled between zero and minTargetReplicas.
	// +required
	ScaleTargetRef ScaleTargetRef `json:"scaleTargetRef"`

	// Service is the name of the Service, in the ElastiService's namespace, whose
	// traffic is held while the workload is at zero.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="service must be the name of a Service: lower case letters, digits and '-', starting with a letter"
	Service string `json:"service"`

	// MinTargetReplicas is the replica count the workload is brought up to when a
	// request arrives at zero. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	MinTargetReplicas int32 `json:"minTargetReplicas,omitempty"`

	// CooldownPeriod is how long, in seconds, the workload stays up after it was
	// created or last scaled up before it may go to zero. Defaults to 900.
	// It is a pointer so that an explicit 0 survives a round trip through Go.
	// +optional
	// +kubebuilder:default=900
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=604800
	CooldownPeriod *int32 `json:"cooldownPeriod,omitempty"`

	// Triggers decide when the workload is idle: it goes to zero only when every
	// trigger is below its threshold. With no triggers it never goes to zero.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Triggers []ScaleTrigger `json:"triggers,omitempty"`

	// Autoscaler names the KEDA ScaledObject or HorizontalPodAutoscaler that scales
	// the workload above zero, so that it can be paused while the workload is at zero.
	// +optional
	Autoscaler *AutoscalerSpec `json:"autoscaler,omitempty"`

	// EnabledPeriod limits scale-to-zero to a recurring window. Outside it the
	// workload is kept at minTargetReplicas or more. Without it, scale-to-zero is
	// always allowed.
	// +optional
	EnabledPeriod *EnabledPeriod `json:"enabledPeriod,omitempty"`

	// ProbeResponse lists requests answered locally while the workload is at zero,
	// without waking it: load balancer health checks and the like. Rules are tried
	// in order; the first match answers.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	ProbeResponse []ProbeResponseRule `json:"probeResponse,omitempty"`

	// HoldTimeout is how long a request that arrives while the workload is at zero
	// is held waiting for it to become ready. When it passes, the request is
	// answered 504. Defaults to 60s; at most 5m, since Envoy's default stream idle
	// timeout would end a longer hold.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="holdTimeout must be a duration between 1s and 5m, for example \"90s\""
	HoldTimeout *metav1.Duration `json:"holdTimeout,omitempty"`

	// MaxHeldRequests caps the requests held at once for this service by each
	// elasti-extproc replica. Requests over the cap are answered 503 with
	// Retry-After at once. Defaults to 1000.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxHeldRequests int32 `json:"maxHeldRequests,omitempty"`
}

// ScaleTargetRef names a workload that has a /scale subresource.
//
// +kubebuilder:validation:XValidation:rule="self.kind in ['Rollout', 'rollouts'] ? self.apiVersion == 'argoproj.io/v1alpha1' : self.apiVersion == 'apps/v1'",message="apiVersion does not match kind: Deployment and StatefulSet are apps/v1, Rollout is argoproj.io/v1alpha1"
type ScaleTargetRef struct {
	// APIVersion is apps/v1 for a Deployment or StatefulSet, argoproj.io/v1alpha1
	// for an Argo Rollout.
	// +required
	// +kubebuilder:validation:Enum=apps/v1;argoproj.io/v1alpha1
	APIVersion string `json:"apiVersion"`

	// Kind is Deployment, StatefulSet or Rollout. The lower-case plurals
	// deployments and rollouts are accepted for older manifests.
	// +required
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;Rollout;deployments;rollouts
	Kind string `json:"kind"`

	// Name is the workload's name, in the ElastiService's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="scaleTargetRef.name must be a valid object name: lower case letters, digits, '-' and '.'"
	Name string `json:"name"`
}

// TriggerType names a kind of scale trigger.
type TriggerType string

// TriggerPrometheus is a trigger whose value is a Prometheus instant query.
const TriggerPrometheus TriggerType = "prometheus"

// ScaleTrigger is one signal of activity. The workload is idle when its value is
// below the threshold.
type ScaleTrigger struct {
	// Type is the kind of trigger. Only prometheus is supported.
	// +required
	// +kubebuilder:validation:Enum=prometheus
	Type TriggerType `json:"type"`

	// Metadata holds the trigger's parameters.
	// +required
	Metadata TriggerMetadata `json:"metadata"`
}

// TriggerMetadata holds the parameters of a prometheus trigger. Keys it does not
// name are kept as written, so manifests with extra keys still apply.
//
// +kubebuilder:pruning:PreserveUnknownFields
type TriggerMetadata struct {
	// Query is a PromQL instant query that must return exactly one sample.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="query must not be blank"
	Query string `json:"query"`

	// ServerAddress is the base URL of the Prometheus server. When empty, the
	// scaler uses its configured default.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="serverAddress must be an http or https URL, for example http://prometheus.monitoring:9090"
	ServerAddress string `json:"serverAddress,omitempty"`

	// Threshold is the value, written as a string, below which the trigger counts
	// as idle.
	// +required
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$')",message="threshold must be a non-negative number written as a string, for example \"0.01\""
	Threshold string `json:"threshold"`

	// UptimeFilter is a label selector, such as container="prometheus", for the
	// up series that must read 1 before an idle value is trusted. Defaults to the
	// scaler's configured filter.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	UptimeFilter string `json:"uptimeFilter,omitempty"`

	// Headers are added to every query sent to the server, for authentication or
	// tenancy.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Headers map[string]string `json:"headers,omitempty"`
}

// AutoscalerType names the autoscaler that runs the workload above zero.
type AutoscalerType string

const (
	// AutoscalerKEDA is a KEDA ScaledObject; it is paused while the workload is at zero.
	AutoscalerKEDA AutoscalerType = "keda"
	// AutoscalerHPA is a HorizontalPodAutoscaler; it is inert at zero replicas and
	// left alone.
	AutoscalerHPA AutoscalerType = "hpa"
)

// AutoscalerSpec names the autoscaler that runs the workload above zero.
type AutoscalerSpec struct {
	// Type is keda or hpa.
	// +required
	// +kubebuilder:validation:Enum=keda;hpa
	Type AutoscalerType `json:"type"`

	// Name is the ScaledObject's or HorizontalPodAutoscaler's name, in the
	// ElastiService's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// EnabledPeriod is a recurring window during which scale-to-zero is allowed.
type EnabledPeriod struct {
	// Schedule is a five-field cron expression (minute hour day-of-month month
	// day-of-week), in UTC, at which each window opens. Defaults to "0 0 * * *".
	// +optional
	// +kubebuilder:default="0 0 * * *"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^\\\\s*([0-9A-Za-z*?/,-]+\\\\s+){4}[0-9A-Za-z*?/,-]+\\\\s*$')",message="schedule must be a cron expression of five fields (minute hour day month weekday), for example \"0 22 * * *\""
	Schedule string `json:"schedule,omitempty"`

	// Duration is how long each window stays open, as a Go duration such as "8h".
	// Defaults to "24h".
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) > duration('0s')",message="duration must be a positive duration such as \"30m\" or \"8h\""
	Duration string `json:"duration,omitempty"`
}

// PathMatchType says how a probe rule's path is compared with the request's.
// +kubebuilder:validation:Enum=Exact;PathPrefix;RegularExpression
type PathMatchType string

const (
	// PathMatchExact matches the path exactly, query string excluded.
	PathMatchExact PathMatchType = "Exact"
	// PathMatchPrefix matches the path or any path below it, element by element.
	PathMatchPrefix PathMatchType = "PathPrefix"
	// PathMatchRegularExpression matches the whole path against an RE2 expression.
	PathMatchRegularExpression PathMatchType = "RegularExpression"
)

// ProbeResponseRule is a request answered locally, without waking the workload.
// Every condition it sets must hold for it to match.
type ProbeResponseRule struct {
	// Method matches the request method. Any method matches when empty.
	// +optional
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS
	Method string `json:"method,omitempty"`

	// Path matches the request path. Defaults to the prefix "/".
	// +optional
	Path *ProbePathMatch `json:"path,omitempty"`

	// Headers must all be present with these exact values (names are compared
	// without regard to case).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Headers []NameValue `json:"headers,omitempty"`

	// QueryParams must all be present with these exact values.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	QueryParams []NameValue `json:"queryParams,omitempty"`

	// Response is what the matching request is answered with.
	// +required
	Response ProbeResponse `json:"response"`
}

// ProbePathMatch matches a request path.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'RegularExpression' || self.value.startsWith('/')",message="an Exact or PathPrefix path must start with '/'"
type ProbePathMatch struct {
	// Type is Exact, PathPrefix or RegularExpression. Defaults to PathPrefix.
	// +optional
	// +kubebuilder:default=PathPrefix
	Type PathMatchType `json:"type,omitempty"`

	// Value is the path, prefix or expression.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// NameValue is a header or query parameter and its exact value.
type NameValue struct {
	// Name of the header or query parameter.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Value it must have.
	// +required
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// ProbeResponse is a response served locally. The body is sent with
// Content-Type application/json.
type ProbeResponse struct {
	// Status is the HTTP status code, 200 to 599.
	// +required
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	Status int32 `json:"status"`

	// Body is the response body.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Body string `json:"body,omitempty"`
}

// Mode says where a service's traffic goes.
type Mode string

const (
	// ModeServe sends traffic straight to the workload's pods.
	ModeServe Mode = "serve"
	// ModeHold sends traffic through the hold route, where elasti-extproc holds it
	// until the workload is ready.
	ModeHold Mode = "hold"
)

// Condition types set on an ElastiService.
const (
	// ConditionReady is true when the ElastiService is fully reconciled: target and
	// Service found, routes in the state status.mode names.
	ConditionReady = "Ready"
	// ConditionTargetFound is false when the scale target or Service is missing or
	// of an unsupported kind.
	ConditionTargetFound = "TargetFound"
	// ConditionTriggersHealthy is false when a trigger cannot be evaluated; the
	// workload is then never scaled to zero.
	ConditionTriggersHealthy = "TriggersHealthy"
	// ConditionAutoscalerFound is false when the named autoscaler does not exist.
	ConditionAutoscalerFound = "AutoscalerFound"
)

// ElastiServiceStatus is the observed state of an ElastiService.
type ElastiServiceStatus struct {
	// Mode is serve when traffic goes to the workload, hold when it is held for a
	// scale-up.
	// +optional
	// +kubebuilder:validation:Enum=serve;hold
	Mode Mode `json:"mode,omitempty"`

	// LastScaledUpTime is when the workload was last brought up from zero.
	// +optional
	LastScaledUpTime *metav1.Time `json:"lastScaledUpTime,omitempty"`

	// LastReconciledTime is when the scaler last reconciled this object.
	// +optional
	LastReconciledTime *metav1.Time `json:"lastReconciledTime,omitempty"`

	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are the latest observations of the object's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// ElastiService scales a workload behind an Istio-routed Service to zero when it
// is idle and back up when a request for it arrives.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=es;elastis,categories=elasti
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Last Scale Up",type=date,JSONPath=`.status.lastScaledUpTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ElastiService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   ElastiServiceSpec   `json:"spec"`
	Status ElastiServiceStatus `json:"status,omitempty"`
}

// ElastiServiceList is a list of ElastiServices.
//
// +kubebuilder:object:root=true
type ElastiServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ElastiService `json:"items"`
}
