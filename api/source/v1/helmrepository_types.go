package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmRepository types.
const (
	// HelmRepositoryTypeDefault is an HTTP(S) repository with an
	// index.yaml.
	HelmRepositoryTypeDefault = "default"
	// HelmRepositoryTypeOCI is an OCI registry; charts are looked up by
	// tag, with no index.
	HelmRepositoryTypeOCI = "oci"
)

// Providers of a HelmRepository's spec.provider, as Flux names them.
const (
	// HelmRepositoryProviderGeneric takes static credentials from
	// spec.secretRef, or none (the default).
	HelmRepositoryProviderGeneric = "generic"
)

// DefaultHelmRepositoryInterval is how often a HelmRepository without
// spec.interval is checked, as in Flux.
const DefaultHelmRepositoryInterval = time.Minute

// AccessFrom is Flux's access control list for references from other
// namespaces. Flux documents it as not implemented; Sluice accepts it
// and it has no effect either.
type AccessFrom struct {
	// NamespaceSelectors select the namespaces allowed.
	NamespaceSelectors []NamespaceSelector `json:"namespaceSelectors"`
}

// NamespaceSelector selects namespaces by label.
type NamespaceSelector struct {
	// MatchLabels are the labels a namespace has.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// HelmRepository is a Helm chart repository: an HTTP(S) index or an OCI
// registry that HelmCharts and HelmReleases take charts from.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=helmrepo,categories=all
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec.type != 'oci' || self.spec.url.startsWith('oci://')",message="spec.url of an oci HelmRepository must start with oci://"
// +kubebuilder:validation:XValidation:rule="self.spec.type == 'oci' || self.spec.url.startsWith('http://') || self.spec.url.startsWith('https://')",message="spec.url of a default HelmRepository must be http:// or https://"
type HelmRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HelmRepositorySpec   `json:"spec"`
	Status HelmRepositoryStatus `json:"status,omitempty"`
}

// HelmRepositoryList is a list of HelmRepositories.
//
// +kubebuilder:object:root=true
type HelmRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmRepository `json:"items"`
}

// HelmRepositorySpec says where the charts are and how to reach them.
type HelmRepositorySpec struct {
	// URL of the repository: http(s):// for an index, oci:// for a
	// registry.
	// +kubebuilder:validation:Pattern="^(http|https|oci)://.*$"
	URL string `json:"url"`

	// Type is default (an index.yaml) or oci.
	// +kubebuilder:validation:Enum=default;oci
	// +kubebuilder:default=default
	// +optional
	Type string `json:"type,omitempty"`

	// SecretRef names a Secret with username and password, or for type
	// oci a kubernetes.io/dockerconfigjson Secret. Its deprecated TLS keys
	// (certFile, keyFile and caFile, or tls.crt, tls.key and ca.crt) are
	// read as certSecretRef's when that is not set, as Flux still does.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret with ca.crt, and tls.crt and tls.key
	// for client certificates.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// Insecure allows plain HTTP to an OCI registry.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// PassCredentials sends the secretRef's credentials to chart URLs on
	// other hosts than the repository's too (a CDN, say); by default they
	// go to the repository's host only, as in Helm and Flux.
	// +optional
	PassCredentials bool `json:"passCredentials,omitempty"`

	// Interval between two index downloads; 1m when unset, as in Flux.
	// An OCI repository has no index and ignores it.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Interval metav1.Duration `json:"interval,omitempty"`

	// Timeout of one download.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Suspend stops downloads.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Provider of the credentials: generic (the default) takes them from
	// spec.secretRef. Flux's cloud providers (aws, azure, gcp) log in to
	// a registry with the cloud identity of the controller's pod; Sluice
	// takes no cloud identities, so the CRD refuses them.
	// +kubebuilder:validation:Enum=generic;aws;azure;gcp
	// +kubebuilder:validation:XValidation:rule="self == 'generic'",message="spec.provider aws, azure and gcp are not supported: Sluice takes no cloud identities; use generic with the registry's credentials in spec.secretRef"
	// +kubebuilder:default=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// AccessFrom is accepted and has no effect, as in Flux, which
	// documents it as not implemented.
	// +optional
	AccessFrom *AccessFrom `json:"accessFrom,omitempty"`
}

// HelmRepositoryStatus is what the last download produced.
type HelmRepositoryStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Artifact is the last index, by digest; an OCI repository has none.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`

	// LastHandledReconcileAt is the last ReconcileRequestAnnotation value
	// acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// GetConditions returns the status conditions.
func (r *HelmRepository) GetConditions() []metav1.Condition { return r.Status.Conditions }
