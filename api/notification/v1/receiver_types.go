package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Receiver types: how a call proves it comes from the sender.
const (
	// GenericReceiver trusts any call to its secret path.
	GenericReceiver = "generic"
	// GenericHMACReceiver checks the X-Signature header, an HMAC of the
	// body keyed by the token: "sha1=<hex>", "sha256=<hex>" or
	// "sha512=<hex>".
	GenericHMACReceiver = "generic-hmac"
	// GenericOIDCReceiver checks "Authorization: Bearer <ID token>": a
	// JWT signed by a key its issuer publishes (OIDC discovery), issued
	// by one of spec.oidcProviders for its audience, current, and whose
	// claims make every validation true. It has no Secret.
	GenericOIDCReceiver = "generic-oidc"
	// GitHubReceiver checks X-Hub-Signature-256, GitHub's HMAC-SHA256 of
	// the body, and filters on X-GitHub-Event.
	GitHubReceiver = "github"
	// GitLabReceiver checks X-Gitlab-Token against the token and filters
	// on X-Gitlab-Event.
	GitLabReceiver = "gitlab"
	// BitbucketReceiver checks X-Hub-Signature, Bitbucket Server's
	// "sha256=<hex>" HMAC-SHA256 of the body keyed by the token, and
	// filters on X-Event-Key. Its "diagnostics:ping" is answered and never
	// triggers.
	BitbucketReceiver = "bitbucket"
	// HarborReceiver checks that the Authorization header is the token,
	// as Harbor's webhook "Auth Header" sends it.
	HarborReceiver = "harbor"
	// DockerHubReceiver trusts its secret path, as Docker Hub signs
	// nothing, and checks the body is a push: an https callback_url,
	// push_data.tag and repository.repo_name.
	DockerHubReceiver = "dockerhub"
	// QuayReceiver trusts its secret path, as Quay signs nothing, and
	// checks the body is a repository push: docker_url and updated_tags.
	QuayReceiver = "quay"
	// GCRReceiver checks a Google Pub/Sub push: the Authorization header
	// is "Bearer <ID token>", an RS256 JWT signed by one of Google's
	// published keys, issued by accounts.google.com for the Secret's
	// "audience" key to the service account in its "email" key, with a
	// verified email and not expired. The message's data must be a
	// registry notification (base64 JSON with an action).
	GCRReceiver = "gcr"
	// NexusReceiver checks X-Nexus-Webhook-Signature, Nexus's hex
	// HMAC-SHA1 of the body keyed by the token.
	NexusReceiver = "nexus"
	// ACRReceiver trusts its secret path, as Azure Container Registry
	// signs nothing, and checks the body is a registry event: an action
	// and, but for "ping", target.repository. A ping never triggers.
	ACRReceiver = "acr"
	// CDEventsReceiver trusts its secret path, checks the body is a
	// CDEvent (context id, source, type dev.cdevents.<subject>.<predicate>.<version>,
	// timestamp and spec version; a subject with an id) and filters on
	// the CloudEvents Ce-Type header.
	CDEventsReceiver = "cdevents"
)

// DefaultOIDCAudience is the aud claim a generic-oidc token must carry
// when its provider names no audience, as in Flux.
const DefaultOIDCAudience = "notification-controller"

// Receiver is a webhook endpoint: a verified call asks the named sources,
// Kustomizations, HelmReleases and image kinds to reconcile now.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Receiver struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReceiverSpec   `json:"spec"`
	Status ReceiverStatus `json:"status,omitempty"`
}

// ReceiverList is a list of Receivers.
//
// +kubebuilder:object:root=true
type ReceiverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Receiver `json:"items"`
}

// ReceiverSpec says who may call and what a call reconciles.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)",message="spec.oidcProviders needs at least one provider when spec.type is generic-oidc",fieldPath=".oidcProviders"
// +kubebuilder:validation:XValidation:rule="self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0",message="spec.oidcProviders can only be set when spec.type is generic-oidc",fieldPath=".oidcProviders"
// +kubebuilder:validation:XValidation:rule="self.type != 'generic-oidc' || !has(self.secretRef)",message="spec.secretRef cannot be set when spec.type is generic-oidc: the token authenticates the call",fieldPath=".secretRef"
// +kubebuilder:validation:XValidation:rule="self.type == 'generic-oidc' || has(self.secretRef)",message="spec.secretRef is required when spec.type is not generic-oidc",fieldPath=".secretRef"
type ReceiverSpec struct {
	// Type of the sender, which decides how a call is verified.
	// +kubebuilder:validation:Enum=generic;generic-hmac;generic-oidc;github;gitlab;bitbucket;harbor;dockerhub;quay;gcr;nexus;acr;cdevents
	Type string `json:"type"`

	// Interval at which the Receiver's own status is refreshed.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +kubebuilder:default:="10m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Events the sender names (X-GitHub-Event, X-Gitlab-Event,
	// X-Event-Key for bitbucket, Ce-Type for cdevents) that trigger;
	// empty means all. The other types have no event header and ignore
	// it. GitHub's and Bitbucket's pings are answered and never trigger.
	// +optional
	Events []string `json:"events,omitempty"`

	// Resources to reconcile on a verified call.
	// +kubebuilder:validation:MinItems=1
	Resources []CrossNamespaceObjectReference `json:"resources"`

	// ResourceFilter is a CEL expression, over res (a resource's
	// apiVersion, kind and metadata) and req (the call's JSON body, or an
	// empty map when the body is not JSON), and for generic-oidc claims
	// (the verified token's claims), that a resource must make true to be
	// asked to reconcile, as Flux's does.
	// +optional
	ResourceFilter string `json:"resourceFilter,omitempty"`

	// SecretRef names a Secret in the Receiver's namespace whose "token"
	// key is the shared secret; the webhook path is derived from it. A
	// gcr Receiver also needs the "email" and "audience" keys: the
	// Pub/Sub subscription's service account and audience. Required for
	// every type but generic-oidc, which must not set it: its path is
	// derived from the name and namespace alone.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// OIDCProviders are the issuers whose ID tokens a generic-oidc
	// Receiver accepts: the one whose issuerURL is the token's iss claim
	// verifies it.
	// +listType=map
	// +listMapKey=issuerURL
	// +optional
	OIDCProviders []OIDCProvider `json:"oidcProviders,omitempty"`

	// Suspend stops the Receiver from acting on calls.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// OIDCProvider is an issuer of ID tokens that a generic-oidc Receiver
// accepts, and what a token of it must show.
type OIDCProvider struct {
	// IssuerURL is the issuer: its keys are found by OIDC discovery at
	// <issuerURL>/.well-known/openid-configuration, and a token's iss
	// claim must be exactly it.
	// +kubebuilder:validation:Pattern="^https?://"
	IssuerURL string `json:"issuerURL"`

	// Audience is the aud claim a token must carry; "notification-controller"
	// when unset, as in Flux.
	// +optional
	Audience string `json:"audience,omitempty"`

	// Variables are CEL expressions over claims (the token's claims) and
	// vars (the variables before them), evaluated in order and exposed to
	// the next ones and to the validations as vars.<name>.
	// +optional
	Variables []OIDCVariable `json:"variables,omitempty"`

	// Validations are CEL boolean expressions over claims and vars that
	// must all be true for a call to be accepted: a valid signature alone
	// proves only which issuer signed, and a public issuer signs for
	// anyone on its platform.
	// +kubebuilder:validation:MinItems=1
	Validations []OIDCValidation `json:"validations"`
}

// GetAudience is the aud claim a token of the provider must carry.
func (p *OIDCProvider) GetAudience() string {
	if p.Audience != "" {
		return p.Audience
	}
	return DefaultOIDCAudience
}

// OIDCVariable is a named CEL expression over a token's claims.
type OIDCVariable struct {
	// Name of the variable, read as vars.<name>.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Expression gives the variable's value.
	// +kubebuilder:validation:MinLength=1
	Expression string `json:"expression"`
}

// OIDCValidation is a CEL boolean expression a token's claims must make
// true, and what the caller is told when they do not.
type OIDCValidation struct {
	// Expression must be true for the call to be accepted.
	// +kubebuilder:validation:MinLength=1
	Expression string `json:"expression"`

	// Message is what a caller whose token makes the expression false is
	// told.
	// +kubebuilder:validation:MinLength=1
	Message string `json:"message"`
}

// CrossNamespaceObjectReference names an object to reconcile, or with
// name "*" every object of the kind with matchLabels.
//
// +kubebuilder:validation:XValidation:rule="self.name != '*' || has(self.matchLabels)",message="name '*' needs matchLabels"
type CrossNamespaceObjectReference struct {
	// APIVersion of the object; defaults to the kind's Sluice version.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the object.
	// +kubebuilder:validation:Enum=GitRepository;HelmRepository;HelmChart;OCIRepository;Bucket;Kustomization;HelmRelease;ImageRepository;ImagePolicy;ImageUpdateAutomation
	Kind string `json:"kind"`

	// Name of the object, or "*" with matchLabels.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the object; defaults to the Receiver's.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// MatchLabels selects the objects when name is "*".
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// Filter is a CEL expression over res, req and, for generic-oidc,
	// claims, as spec.resourceFilter is, that the objects of this entry
	// must also make true to be asked to reconcile.
	// +optional
	Filter string `json:"filter,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ReceiverStatus reports whether the Receiver listens, and where.
type ReceiverStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// LastHandledReconcileAt is the last reconcile request annotation
	// (reconcile.fluxcd.io/requestedAt) on the Receiver that was acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// Conditions hold Ready (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// WebhookPath is the path the sender calls:
	// /hook/sha256(token+name+namespace), as in Flux; a generic-oidc
	// Receiver has no token, and its path is /hook/sha256(name+namespace).
	// +optional
	WebhookPath string `json:"webhookPath,omitempty"`
}

// GetConditions returns the status conditions.
func (r *Receiver) GetConditions() []metav1.Condition { return r.Status.Conditions }
