package v1beta3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider types. Each is one service, sent to by one file of pkg/notify.
const (
	// SlackProvider posts to a Slack incoming webhook, or with a bot token
	// (the Secret's token) to chat.postMessage.
	SlackProvider = "slack"
	// MSTeamsProvider posts an Adaptive Card to a Teams Workflows webhook.
	MSTeamsProvider = "msteams"
	// DiscordProvider posts an embed to a Discord webhook.
	DiscordProvider = "discord"
	// RocketProvider posts to a Rocket.Chat incoming webhook.
	RocketProvider = "rocket"
	// GoogleChatProvider posts a card to a Google Chat space webhook.
	GoogleChatProvider = "googlechat"
	// GenericProvider posts the event as JSON, Flux's event format, with
	// the headers of the Secret's headers key.
	GenericProvider = "generic"
	// GenericHMACProvider is generic with an X-Signature header:
	// sha256=<hex HMAC-SHA256 of the body keyed by the Secret's token>.
	GenericHMACProvider = "generic-hmac"
	// AlertmanagerProvider posts an alert to Alertmanager's
	// /api/v2/alerts, labelled with the object and its labels.
	AlertmanagerProvider = "alertmanager"
	// GitHubProvider sets a commit status on the revision of the event
	// through GitHub's REST API; the address is the repository URL.
	GitHubProvider = "github"
	// GitLabProvider sets a commit status through GitLab's REST API; the
	// address is the project URL.
	GitLabProvider = "gitlab"
	// GrafanaProvider posts an annotation to Grafana's /api/annotations.
	GrafanaProvider = "grafana"
	// TelegramProvider sends a message through the Bot API's sendMessage
	// to the chat in spec.channel; the Secret's token is the bot token.
	TelegramProvider = "telegram"
)

// Provider is a service that notifications are sent to.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Provider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProviderSpec `json:"spec"`
	Status Status       `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (p *Provider) GetConditions() []metav1.Condition { return p.Status.Conditions }

// ProviderList is a list of Providers.
//
// +kubebuilder:object:root=true
type ProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Provider `json:"items"`
}

// ProviderSpec says where and how notifications are sent.
//
// +kubebuilder:validation:XValidation:rule="!(self.type in ['github', 'gitlab', 'alertmanager', 'grafana', 'generic', 'generic-hmac']) || has(self.address) || has(self.secretRef)",message="spec.address or spec.secretRef (with an address key) is required for this type",fieldPath=".address"
// +kubebuilder:validation:XValidation:rule="self.type != 'generic-hmac' || has(self.secretRef)",message="spec.secretRef with a token key is required for generic-hmac",fieldPath=".secretRef"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['github', 'gitlab', 'telegram']) || has(self.secretRef)",message="spec.secretRef with a token key is required for this type",fieldPath=".secretRef"
// +kubebuilder:validation:XValidation:rule="self.type != 'telegram' || has(self.channel)",message="spec.channel (the chat id) is required for telegram",fieldPath=".channel"
type ProviderSpec struct {
	// Type of the service.
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;googlechat;generic;generic-hmac;alertmanager;github;gitlab;grafana;telegram
	Type string `json:"type"`

	// Interval is accepted for Flux manifests; a Provider is not polled.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Channel to post to: a Slack channel, a Telegram chat id.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Channel string `json:"channel,omitempty"`

	// Username the messages are posted as, where the service allows it.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Username string `json:"username,omitempty"`

	// Address is the service's URL: a webhook, Alertmanager's
	// /api/v2/alerts, a repository for commit statuses, Grafana's
	// /api/annotations. The Secret's address key overrides it.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="spec.address must be an http or https URL"
	// +optional
	Address string `json:"address,omitempty"`

	// Timeout bounds one request to the service; default 15s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Proxy is the HTTP(S) proxy used to reach the service.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="spec.proxy must be an http or https URL"
	// +optional
	Proxy string `json:"proxy,omitempty"`

	// SecretRef names a Secret in the Provider's namespace. Its keys:
	// address (overrides spec.address), token (a bot token, an API token,
	// the HMAC key), username and password (basic auth), proxy (overrides
	// spec.proxy) and headers (a YAML map of HTTP headers, for generic).
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret with ca.crt, the CA that signs the
	// service's certificate, and optionally tls.crt and tls.key for mutual
	// TLS.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// Suspend stops sending: an Alert to a suspended Provider sends
	// nothing.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Status reports whether a Provider or an Alert can deliver.
type Status struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold Ready (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
