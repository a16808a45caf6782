package v1beta3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Alert sends the Events of chosen objects to a Provider.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Alert struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlertSpec `json:"spec"`
	Status Status    `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (a *Alert) GetConditions() []metav1.Condition { return a.Status.Conditions }

// AlertList is a list of Alerts.
//
// +kubebuilder:object:root=true
type AlertList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Alert `json:"items"`
}

// Event severities an Alert sends from.
const (
	// SeverityInfo sends every Event.
	SeverityInfo = "info"
	// SeverityError sends Warning Events only.
	SeverityError = "error"
)

// AlertSpec says which Events go to which Provider.
type AlertSpec struct {
	// ProviderRef names the Provider, in the Alert's namespace.
	ProviderRef LocalObjectReference `json:"providerRef"`

	// EventSeverity is the lowest severity sent: info sends every Event,
	// error only Warning ones.
	// +kubebuilder:validation:Enum=info;error
	// +kubebuilder:default=info
	// +optional
	EventSeverity string `json:"eventSeverity,omitempty"`

	// EventSources are the objects whose Events are sent.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	EventSources []CrossNamespaceObjectReference `json:"eventSources"`

	// InclusionList holds regular expressions; when set, only Events whose
	// message matches one of them are sent.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	InclusionList []string `json:"inclusionList,omitempty"`

	// ExclusionList holds regular expressions; an Event whose message
	// matches one of them is not sent.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	ExclusionList []string `json:"exclusionList,omitempty"`

	// EventMetadata is added to each Event's metadata. A key the Event
	// already has keeps the Event's value.
	// +optional
	EventMetadata map[string]string `json:"eventMetadata,omitempty"`

	// Summary is added to each Event's metadata as summary; Flux
	// deprecates it for eventMetadata.summary.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Summary string `json:"summary,omitempty"`

	// Suspend stops the Alert from sending.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// CrossNamespaceObjectReference selects the objects of one kind whose
// Events are sent: one by name, or with name "*" all of the kind in the
// namespace, narrowed by matchLabels.
type CrossNamespaceObjectReference struct {
	// APIVersion of the object; any version of the kind's group matches.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the object.
	// +kubebuilder:validation:Enum=Canary;MetricTemplate;AlertProvider;GitRepository;HelmRepository;HelmChart;OCIRepository;Bucket;Kustomization;HelmRelease;ImageRepository;ImagePolicy;ImageUpdateAutomation;Receiver;Provider;Alert
	Kind string `json:"kind"`

	// Name of the object, or "*" for all of the kind.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the object; defaults to the Alert's.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// MatchLabels narrows name "*" to the objects with these labels.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}
