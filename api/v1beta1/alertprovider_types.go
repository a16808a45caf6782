package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProviderType names a chat service that receives alerts.
//
// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat
type AlertProviderType string

// Reasons of an AlertProvider's Ready condition.
const (
	// AlertProviderReasonResolved: the Secret and the address resolve, and
	// no delivery has failed since.
	AlertProviderReasonResolved = "Resolved"
	// AlertProviderReasonSecretNotFound: spec.secretRef names no Secret.
	AlertProviderReasonSecretNotFound = "SecretNotFound"
	// AlertProviderReasonAddressNotFound: neither spec.address nor the
	// Secret's address key holds an address.
	AlertProviderReasonAddressNotFound = "AddressNotFound"
	// AlertProviderReasonInvalidAddress: the address is not an http or
	// https URL.
	AlertProviderReasonInvalidAddress = "InvalidAddress"
	// AlertProviderReasonInvalidSpec: the spec cannot work, such as a
	// Slack bot token without spec.channel.
	AlertProviderReasonInvalidSpec = "InvalidSpec"
	// AlertProviderReasonDeliveryFailed: the last alert was not delivered,
	// retries included.
	AlertProviderReasonDeliveryFailed = "DeliveryFailed"
)

// AlertProvider is a chat service that Canaries send alerts to.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlertProviderSpec `json:"spec"`
	Status ProviderStatus    `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (p *AlertProvider) GetConditions() []metav1.Condition {
	return p.Status.Conditions
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

// AlertProviderSpec is the desired state of an AlertProvider.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="one of address or secretRef is required",fieldPath=".address"
type AlertProviderSpec struct {
	// Type of the chat service.
	Type AlertProviderType `json:"type"`

	// Channel to post to.
	// +optional
	// +kubebuilder:default=general
	Channel string `json:"channel,omitempty"`

	// Username the alerts are posted as.
	// +optional
	// +kubebuilder:default=sluice
	Username string `json:"username,omitempty"`

	// Address is the service's webhook URL.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="address must be an http or https URL"
	Address string `json:"address,omitempty"`

	// Proxy is the HTTP(S) proxy used to reach the service.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="proxy must be an http or https URL"
	Proxy string `json:"proxy,omitempty"`

	// SecretRef names a Secret in the provider's namespace. Its key address
	// overrides spec.address, and its optional key token is a bot token.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// MessageTemplate replaces the default alert text. It is a Go
	// text/template over the alert: .Name, .Namespace, .Target, .Phase,
	// .Weight, .FailedChecks, .Reason, .Message, .Severity, .Cluster, and
	// .Metric (.Name, .Value, .Min, .Max) when a metric failed. range,
	// template and define are refused, and the text is cut at 4000 bytes;
	// a template that fails falls back to the default text.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	MessageTemplate string `json:"messageTemplate,omitempty"`
}
