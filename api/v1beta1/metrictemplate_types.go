package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricProviderType names a metrics backend.
//
// +kubebuilder:validation:Enum=prometheus;influxdb;datadog;externalmetrics;stackdriver;cloudwatch;newrelic;graphite;dynatrace;keptn;splunk;web
type MetricProviderType string

// MetricTemplate holds a query that a Canary metric runs against a metrics
// backend. The query is a Go text/template rendered for each Canary.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MetricTemplateSpec `json:"spec"`
	Status ProviderStatus     `json:"status,omitempty"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// MetricTemplateSpec is the desired state of a MetricTemplate.
type MetricTemplateSpec struct {
	// Provider is the backend the query runs against.
	Provider MetricTemplateProvider `json:"provider"`

	// Query is a Go text/template. It may call name, namespace, target,
	// service, ingress, route, interval and variables.
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
}

// MetricTemplateProvider is a metrics backend and how to reach it.
//
// +kubebuilder:validation:XValidation:rule="!(self.type in ['prometheus', 'graphite', 'influxdb', 'dynatrace', 'web']) || has(self.address)",message="address is required for this provider type",fieldPath=".address"
// +kubebuilder:validation:XValidation:rule="self.type != 'cloudwatch' || has(self.region)",message="region is required for the cloudwatch provider",fieldPath=".region"
// +kubebuilder:validation:XValidation:rule="self.type != 'web' || has(self.jsonPath)",message="jsonPath is required for the web provider",fieldPath=".jsonPath"
// +kubebuilder:validation:XValidation:rule="!(has(self.method) || has(self.jsonPath)) || self.type == 'web'",message="method and jsonPath apply to the web provider only",fieldPath=".method"
type MetricTemplateProvider struct {
	// Type of the backend.
	Type MetricProviderType `json:"type"`

	// Address of the backend's API.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="address must be an http or https URL"
	Address string `json:"address,omitempty"`

	// Headers added to each request to the backend.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`

	// SecretRef names a Secret in the template's namespace that holds the
	// backend's credentials, under the provider's documented keys.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// Region of the backend, for cloud providers.
	// +optional
	Region string `json:"region,omitempty"`

	// InsecureSkipVerify skips verification of the backend's TLS
	// certificate.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// Timeout of one query, as a duration; defaults to 30s.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Timeout string `json:"timeout,omitempty"`

	// Method is the HTTP method of the web provider: GET (default) or POST.
	// A POST sends the rendered query as its body; a GET appends the
	// rendered query to the address.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST
	Method string `json:"method,omitempty"`

	// JSONPath selects the value in the web provider's JSON answer, in
	// kubectl's JSONPath syntax, such as {.data.value}.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	JSONPath string `json:"jsonPath,omitempty"`
}

// ProviderStatus is the observed state of a MetricTemplate or an
// AlertProvider: whether its backend was reached with its credentials.
type ProviderStatus struct {
	// ObservedGeneration is the generation last acted upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions of the provider.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
