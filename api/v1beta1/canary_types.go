package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Defaults that the engine applies when a field is left out. The schema sets
// the ones it can; these are for code that reads a Canary before defaulting
// (for example a Canary built in memory by a test or the CLI).
const (
	// DefaultProgressDeadlineSeconds is how long a rollout may make no
	// progress before it is rolled back.
	DefaultProgressDeadlineSeconds = 600
	// DefaultAnalysisInterval is the time between two analysis steps.
	DefaultAnalysisInterval = "1m"
	// MinAnalysisInterval is the shortest analysis interval accepted.
	MinAnalysisInterval = "10s"
	// DefaultMetricInterval is the query window of a metric.
	DefaultMetricInterval = "1m"
	// DefaultReadyThreshold is the percentage of available replicas that
	// makes a workload ready.
	DefaultReadyThreshold = 100
	// DefaultSessionAffinityMaxAge is the lifetime of the session affinity
	// cookie, in seconds (one day).
	DefaultSessionAffinityMaxAge = 86400
	// DefaultWebhookTimeout is how long a webhook call may take.
	DefaultWebhookTimeout = "10s"
)

// Built-in metric names. They run queries chosen by the canary's router
// against the default or spec.metricsServer Prometheus.
const (
	// MetricRequestSuccessRate is the percentage of non-5xx responses.
	MetricRequestSuccessRate = "request-success-rate"
	// MetricRequestDuration is the 99th percentile request duration in
	// milliseconds.
	MetricRequestDuration = "request-duration"
)

// Canary wraps a workload (Deployment or DaemonSet) and drives its releases:
// it keeps a -primary copy that serves production, runs every new revision of
// the workload as the canary, shifts traffic step by step while metrics and
// webhooks agree, then promotes it or rolls it back.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.analysis.interval`,priority=1
// +kubebuilder:printcolumn:name="Mirror",type=boolean,JSONPath=`.spec.analysis.mirror`,priority=1
// +kubebuilder:printcolumn:name="StepWeight",type=string,JSONPath=`.spec.analysis.stepWeight`,priority=1
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.analysis.stepWeights`,priority=1
// +kubebuilder:printcolumn:name="MaxWeight",type=string,JSONPath=`.spec.analysis.maxWeight`,priority=1
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,format=date-time,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanarySpec   `json:"spec"`
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

// Provider names the mesh or ingress that routes traffic between the primary
// and the canary. The list is Flagger's, so that every Flagger manifest is
// accepted; a provider Sluice has no router for is reported in the Canary's
// status, never silently replaced by another.
//
// +kubebuilder:validation:Enum=apisix;appmesh;"appmesh:v1beta2";contour;"gatewayapi:v1";"gatewayapi:v1beta1";gloo;istio;knative;kubernetes;kuma;linkerd;nginx;osm;skipper;"smi:v1alpha1";"smi:v1alpha2";"smi:v1alpha3";traefik
type Provider string

// CanarySpec is the desired behaviour of a Canary.
//
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !(self.provider in ['nginx', 'skipper']) || has(self.ingressRef)",message="ingressRef is required when provider is nginx or skipper",fieldPath=".ingressRef"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'apisix' || has(self.routeRef)",message="routeRef is required when provider is apisix",fieldPath=".routeRef"
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind != 'Service' || !has(self.service.name) || self.service.name == self.targetRef.name",message="service.name must be the target's name when targetRef.kind is Service: the target Service is the apex",fieldPath=".service.name"
// +kubebuilder:validation:XValidation:rule="(self.targetRef.kind == 'Service' && self.targetRef.apiVersion.startsWith('serving.knative.dev/')) == (has(self.provider) && self.provider == 'knative')",message="provider knative and a Knative Service target (apiVersion serving.knative.dev/v1, kind Service) go together",fieldPath=".provider"
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind != 'Service' || !has(self.autoscalerRef)",message="autoscalerRef cannot be set when targetRef.kind is Service: a Service has no replicas",fieldPath=".autoscalerRef"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'appmesh' || (has(self.service.meshName) && size(self.service.meshName) > 0)",message="service.meshName is required when provider is appmesh",fieldPath=".service.meshName"
type CanarySpec struct {
	// Provider overrides the operator's default traffic provider for this
	// Canary.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// MetricsServer overrides the operator's default Prometheus address for
	// the built-in metrics of this Canary.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="metricsServer must be an http or https URL"
	MetricsServer string `json:"metricsServer,omitempty"`

	// TargetRef is the workload this Canary releases.
	TargetRef TargetReference `json:"targetRef"`

	// AutoscalerRef is the autoscaler of the target. Sluice makes a -primary
	// copy of it for the primary workload.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// IngressRef is the Ingress that the nginx and skipper providers clone
	// into <ingress>-canary.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.kind == 'Ingress'",message="ingressRef.kind must be Ingress",fieldPath=".kind"
	IngressRef *LocalObjectReference `json:"ingressRef,omitempty"`

	// RouteRef is the APISIX route that the apisix provider manages.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.kind == 'ApisixRoute'",message="routeRef.kind must be ApisixRoute",fieldPath=".kind"
	RouteRef *LocalObjectReference `json:"routeRef,omitempty"`

	// UpstreamRef is the Gloo Upstream whose settings are copied into the
	// upstreams generated for the gloo provider.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.kind == 'Upstream'",message="upstreamRef.kind must be Upstream",fieldPath=".kind"
	UpstreamRef *CrossNamespaceObjectReference `json:"upstreamRef,omitempty"`

	// Service describes the Services and routing objects generated for the
	// target.
	Service CanaryService `json:"service"`

	// Analysis describes how a new revision is checked and how traffic moves
	// to it.
	Analysis *CanaryAnalysis `json:"analysis"`

	// ProgressDeadlineSeconds is the longest a rollout may make no progress
	// before it is rolled back.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// SkipAnalysis promotes a new revision without running metrics or
	// webhooks, once the canary is ready. Setting it during an analysis ends
	// that analysis with a promotion.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// RevertOnDeletion restores the target workload, the apex Service and the
	// routing objects to their original state when the Canary is deleted.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// Suspend stops all work on this Canary; an analysis in progress is paused
	// where it is until the Canary is resumed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// TargetReference names the workload a Canary releases, in the Canary's
// namespace.
type TargetReference struct {
	// APIVersion of the workload, for example apps/v1.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`

	// Kind of the workload.
	// +kubebuilder:validation:Enum=Deployment;DaemonSet;Service
	Kind string `json:"kind"`

	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// AutoscalerReference names the autoscaler of the target workload.
type AutoscalerReference struct {
	// APIVersion of the autoscaler, for example autoscaling/v2.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`

	// Kind of the autoscaler.
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	Kind string `json:"kind"`

	// Name of the autoscaler.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// PrimaryScalerQueries maps a trigger id of a ScaledObject to the query
	// used by the primary's copy. Without it, the target's name in each query
	// is replaced with the primary's.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`

	// PrimaryScalerReplicas overrides the replica bounds of the primary's
	// autoscaler.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas overrides the replica bounds of an autoscaler.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not be greater than maxReplicas",fieldPath=".minReplicas"
type ScalerReplicas struct {
	// MinReplicas is the lower replica bound.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the upper replica bound.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// LocalObjectReference names an object in the Canary's namespace.
type LocalObjectReference struct {
	// APIVersion of the referent.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`

	// Kind of the referent.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`

	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// CrossNamespaceObjectReference names an object in any namespace; an empty
// namespace means the Canary's.
type CrossNamespaceObjectReference struct {
	// APIVersion of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the referent.
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the referent; defaults to the Canary's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// CanaryService describes the ClusterIP Services (<name>, <name>-primary and
// <name>-canary) and the mesh or ingress objects generated for the target.
type CanaryService struct {
	// Name of the apex Service; defaults to targetRef.name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// Port of the generated Services.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// PortName of the generated Services' port; defaults to http. Use grpc or
	// http2 for gRPC.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	PortName string `json:"portName,omitempty"`

	// TargetPort is the container port, by number or name; defaults to port.
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`

	// AppProtocol of the generated Services' port. tcp makes the Istio
	// provider write a TCP route.
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`

	// TrafficDistribution is copied to the generated Services'
	// spec.trafficDistribution.
	// +optional
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	TrafficDistribution string `json:"trafficDistribution,omitempty"`

	// PortDiscovery adds every other container port of the target to the
	// generated Services.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`

	// Headless makes the generated Services headless.
	// +optional
	Headless bool `json:"headless,omitempty"`

	// Timeout of HTTP and gRPC requests on the generated route, as a
	// duration such as 30s.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Timeout string `json:"timeout,omitempty"`

	// BackendTimeout is the Gateway API HTTPRoute timeouts.backendRequest.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	BackendTimeout string `json:"backendTimeout,omitempty"`

	// Gateways of the generated Istio VirtualService; defaults to the mesh
	// gateway.
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// GatewayRefs are the parents of the generated Gateway API route:
	// Gateways, or Services for mesh (GAMMA) routing.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	GatewayRefs []gatewayv1.ParentReference `json:"gatewayRefs,omitempty"`

	// RouteRef names an existing Gateway API HTTPRoute or GRPCRoute to adopt
	// instead of generating one. Sluice then edits only the backendRefs and
	// the match rules it owns and keeps every other rule, filter, hostname
	// and parentRef the user wrote; revertOnDeletion restores the route as
	// it was.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.kind in ['HTTPRoute', 'GRPCRoute']",message="service.routeRef.kind must be HTTPRoute or GRPCRoute",fieldPath=".kind"
	RouteRef *LocalObjectReference `json:"routeRef,omitempty"`

	// Hosts of the generated Istio VirtualService or Gateway API HTTPRoute;
	// defaults to the apex Service name.
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// Delegation generates an Istio VirtualService without hosts and
	// gateways, for use as a delegate.
	// +optional
	Delegation bool `json:"delegation,omitempty"`

	// TrafficPolicy of the generated Istio DestinationRules.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`

	// Match conditions of the generated route.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Match []HTTPMatchRequest `json:"match,omitempty"`

	// Rewrite of the URI or authority on the generated route.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`

	// Retries policy of the generated route.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`

	// Headers operations on the generated route.
	// +optional
	Headers *Headers `json:"headers,omitempty"`

	// Mirror adds static Gateway API RequestMirror filters to the generated
	// route, independent of analysis mirroring.
	// +optional
	Mirror []gatewayv1.HTTPRequestMirrorFilter `json:"mirror,omitempty"`

	// CorsPolicy of the generated Istio VirtualService.
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`

	// MeshName of the generated App Mesh objects.
	// +optional
	MeshName string `json:"meshName,omitempty"`

	// Backends of the generated App Mesh virtual nodes.
	// +optional
	Backends []string `json:"backends,omitempty"`

	// Apex metadata is set on the apex Service and on the generated mesh or
	// ingress objects.
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`

	// Primary metadata is set on the <name>-primary Service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`

	// Canary metadata is set on the <name>-canary Service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`

	// UnmanagedMetadata lists label and annotation keys that Sluice never
	// adds, changes or removes on the objects it generates.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata holds labels and annotations to set on a generated object.
type CustomMetadata struct {
	// Labels to set.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations to set.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata lists metadata keys owned by someone else.
type UnmanagedMetadata struct {
	// Labels keys.
	// +optional
	Labels []string `json:"labels,omitempty"`

	// Annotations keys.
	// +optional
	Annotations []string `json:"annotations,omitempty"`
}

// CanaryAnalysis describes how a new revision is checked and how traffic
// moves to it. The strategy follows from the fields set: stepWeight or
// stepWeights make a progressive canary; iterations with match make an A/B
// test; iterations alone make a blue/green switch (mirrored when mirror is
// set).
//
// +kubebuilder:validation:XValidation:rule="!(has(self.stepWeight) && has(self.stepWeights))",message="stepWeight and stepWeights are mutually exclusive",fieldPath=".stepWeights"
// +kubebuilder:validation:XValidation:rule="has(self.iterations) || has(self.stepWeight) || has(self.stepWeights)",message="one of iterations (A/B testing, blue/green) or stepWeight or stepWeights (canary) is required"
// +kubebuilder:validation:XValidation:rule="!has(self.iterations) || !(has(self.stepWeight) || has(self.stepWeights))",message="iterations cannot be combined with stepWeight or stepWeights",fieldPath=".iterations"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || !has(self.maxWeight) || self.stepWeight <= self.maxWeight",message="stepWeight must not be greater than maxWeight",fieldPath=".stepWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorWeight) || (has(self.mirror) && self.mirror)",message="mirrorWeight requires mirror: true",fieldPath=".mirrorWeight"
type CanaryAnalysis struct {
	// Interval between two analysis steps, as a duration of at least 10s.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('10s')",message="interval must be a duration of at least 10s, such as 30s or 1m"
	Interval string `json:"interval,omitempty"`

	// Iterations is the number of analysis steps of an A/B test or a
	// blue/green switch.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Iterations int `json:"iterations,omitempty"`

	// Mirror shadows traffic to the canary: during a blue/green switch, or
	// for one step before a progressive canary starts (Istio).
	// +optional
	Mirror bool `json:"mirror,omitempty"`

	// MirrorWeight is the percentage of traffic mirrored, where the provider
	// supports it; defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MirrorWeight int `json:"mirrorWeight,omitempty"`

	// MaxWeight is the highest canary weight of a progressive canary;
	// defaults to 100, or to the last of stepWeights.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxWeight int `json:"maxWeight,omitempty"`

	// StepWeight is how much the canary weight grows at each step.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	StepWeight int `json:"stepWeight,omitempty"`

	// StepWeights lists the canary weights of each step, in ascending order;
	// the last one is the highest.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self.isSorted()",message="stepWeights must be in ascending order"
	StepWeights []int `json:"stepWeights,omitempty"`

	// StepWeightPromotion is how much traffic moves back to the primary at
	// each step of a promotion; by default it moves at once.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`

	// Threshold is the number of failed checks that rolls the canary back;
	// 0 means 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	Threshold int `json:"threshold,omitempty"`

	// PrimaryReadyThreshold is the percentage of the primary's replicas that
	// must be available for it to be ready.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`

	// CanaryReadyThreshold is the percentage of the canary's replicas that
	// must be available for it to be ready.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	CanaryReadyThreshold *int `json:"canaryReadyThreshold,omitempty"`

	// Alerts routes this Canary's notifications to AlertProviders.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Alerts []CanaryAlert `json:"alerts,omitempty"`

	// Metrics are checked at each analysis step.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(m, self.exists_one(n, n.name == m.name))",message="metric names must be unique: each has its own result in status.metrics"
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// NoData says what a step does when a metric returns no value, for the
	// metrics that set no noData of their own; defaults to fail.
	// +optional
	NoData NoDataPolicy `json:"noData,omitempty"`

	// Webhooks are called at the points their type names.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// Match conditions send the matching traffic to the canary during an A/B
	// test.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Match []HTTPMatchRequest `json:"match,omitempty"`

	// SessionAffinity keeps users that reached the canary on the canary.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// SessionAffinity pins users to the version they first reached during a
// progressive canary, by cookie.
//
// +kubebuilder:validation:XValidation:rule="!has(self.primaryCookieName) || self.primaryCookieName != self.cookieName",message="primaryCookieName must differ from cookieName",fieldPath=".primaryCookieName"
type SessionAffinity struct {
	// CookieName is the name of the cookie that pins a user to the canary.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	CookieName string `json:"cookieName"`

	// PrimaryCookieName is the name of the cookie that pins a user to the
	// primary for one analysis step.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`

	// MaxAge is the lifetime of the canary cookie in seconds.
	// +optional
	// +kubebuilder:default=86400
	// +kubebuilder:validation:Minimum=1
	MaxAge int `json:"maxAge,omitempty"`

	// Domain attribute of the cookies.
	// +optional
	Domain string `json:"domain,omitempty"`

	// Path attribute of the cookies.
	// +optional
	Path string `json:"path,omitempty"`

	// HTTPOnly attribute of the cookies.
	// +optional
	HTTPOnly bool `json:"httpOnly,omitempty"`

	// Secure attribute of the cookies.
	// +optional
	Secure bool `json:"secure,omitempty"`

	// Partitioned attribute of the cookies.
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`

	// SameSite attribute of the cookies.
	// +optional
	// +kubebuilder:validation:Enum=Strict;Lax;None
	SameSite string `json:"sameSite,omitempty"`
}

// CanaryMetric is a check run at each analysis step: a built-in metric
// (request-success-rate, request-duration) or a query from a MetricTemplate,
// compared with a range.
//
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.templateRef) || has(self.query)",message="a metric that is not built in (request-success-rate, request-duration) needs templateRef",fieldPath=".templateRef"
// +kubebuilder:validation:XValidation:rule="!(has(self.templateRef) && has(self.query))",message="templateRef and query are mutually exclusive",fieldPath=".query"
// +kubebuilder:validation:XValidation:rule="has(self.thresholdRange) || has(self.threshold)",message="thresholdRange is required: a metric with no bounds can never fail",fieldPath=".thresholdRange"
type CanaryMetric struct {
	// Name of the metric; request-success-rate and request-duration are
	// built in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Interval is the query window, as a duration. A window of zero
	// renders queries such as rate(x[0s]) that no backend answers.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') || duration(self) > duration('0s')",message="interval must be longer than zero"
	Interval string `json:"interval,omitempty"`

	// Threshold is the highest accepted value.
	//
	// Deprecated: use thresholdRange.max.
	// +optional
	Threshold *float64 `json:"threshold,omitempty"`

	// ThresholdRange is the accepted range of the metric's value.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`

	// Query is an inline Prometheus query.
	//
	// Deprecated: use templateRef.
	// +optional
	Query string `json:"query,omitempty"`

	// TemplateRef names the MetricTemplate that holds the query.
	// +optional
	TemplateRef *CrossNamespaceObjectReference `json:"templateRef,omitempty"`

	// TemplateVariables are handed to the template as variables.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`

	// NoData says what a step does when the query returns no value;
	// defaults to analysis.noData.
	// +optional
	NoData NoDataPolicy `json:"noData,omitempty"`
}

// Range is the metric's accepted range; nil is unbounded. The deprecated
// threshold is a max.
func (m CanaryMetric) Range() (min, max *float64) {
	if r := m.ThresholdRange; r != nil {
		min, max = r.Min, r.Max
	}
	if max == nil {
		max = m.Threshold
	}
	return min, max
}

// NoDataPolicy says what an analysis step does with a metric that returned
// no data.
//
// +kubebuilder:validation:Enum=fail;hold;skip
type NoDataPolicy string

// No-data policies.
const (
	// NoDataFail counts the step as a failed check.
	NoDataFail NoDataPolicy = "fail"
	// NoDataHold neither advances nor counts the step, until the data comes
	// back or progressDeadlineSeconds runs out, which rolls back.
	NoDataHold NoDataPolicy = "hold"
	// NoDataSkip ignores the metric for the step: the only policy that lets
	// a release advance without the metric's data.
	NoDataSkip NoDataPolicy = "skip"
)

// CanaryThresholdRange is the accepted range of a metric's value; a value
// below min or above max fails the check.
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange needs min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="thresholdRange.min must not be greater than thresholdRange.max",fieldPath=".min"
type CanaryThresholdRange struct {
	// Min is the lowest accepted value.
	// +optional
	Min *float64 `json:"min,omitempty"`

	// Max is the highest accepted value.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// AlertSeverity filters the alerts an AlertProvider receives.
//
// +kubebuilder:validation:Enum="";info;warn;error
type AlertSeverity string

// Alert severities; a provider at one level receives that level and above.
const (
	SeverityInfo  AlertSeverity = "info"
	SeverityWarn  AlertSeverity = "warn"
	SeverityError AlertSeverity = "error"
)

// CanaryAlert sends this Canary's notifications to an AlertProvider.
type CanaryAlert struct {
	// Name of the alert.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Severity is the lowest severity sent: info (all), warn or error.
	// +optional
	// +kubebuilder:default=info
	Severity AlertSeverity `json:"severity,omitempty"`

	// ProviderRef names the AlertProvider.
	ProviderRef CrossNamespaceObjectReference `json:"providerRef"`
}

// HookType says when a webhook is called and what its answer means.
//
// +kubebuilder:validation:Enum="";confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type HookType string

// Webhook types.
const (
	// ConfirmRolloutHook gates the start of a new revision: the rollout waits
	// until the hook answers 2xx.
	ConfirmRolloutHook HookType = "confirm-rollout"
	// PreRolloutHook runs before traffic reaches the canary; a failure is a
	// failed check.
	PreRolloutHook HookType = "pre-rollout"
	// RolloutHook runs at each analysis step; a failure is a failed check.
	RolloutHook HookType = "rollout"
	// ConfirmTrafficIncreaseHook gates each weight increase.
	ConfirmTrafficIncreaseHook HookType = "confirm-traffic-increase"
	// ConfirmPromotionHook gates the promotion.
	ConfirmPromotionHook HookType = "confirm-promotion"
	// PostRolloutHook runs after the rollout succeeded or failed.
	PostRolloutHook HookType = "post-rollout"
	// RollbackHook rolls the canary back when it answers 2xx.
	RollbackHook HookType = "rollback"
	// EventHook receives every event Sluice records for the Canary.
	EventHook HookType = "event"
)

// CanaryWebhook is an HTTP call made during a rollout.
type CanaryWebhook struct {
	// Type says when the webhook is called; empty means rollout.
	// +optional
	Type HookType `json:"type,omitempty"`

	// Name of the webhook.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// URL the payload is posted to.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="url must be an http or https URL"
	URL string `json:"url"`

	// MuteAlert mutes the alerts this webhook would cause.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`

	// Timeout of one call, as a duration. A timeout of zero would fail
	// every call before it is sent.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') || duration(self) > duration('0s')",message="timeout must be longer than zero"
	Timeout string `json:"timeout,omitempty"`

	// Retries is how many times a failed call is retried.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Retries int `json:"retries,omitempty"`

	// DisableTLS skips verification of the webhook's TLS certificate.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`

	// Metadata is sent in the payload.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}

// CanaryWebhookPayload is the JSON body posted to webhooks.
type CanaryWebhookPayload struct {
	// Name of the Canary.
	Name string `json:"name"`

	// Namespace of the Canary.
	Namespace string `json:"namespace"`

	// Phase of the Canary.
	Phase CanaryPhase `json:"phase"`

	// Checksum identifies the revision under analysis: a hash of
	// lastAppliedSpec and trackedConfigs.
	Checksum string `json:"checksum"`

	// Metadata of the webhook.
	Metadata map[string]string `json:"metadata,omitempty"`
}
