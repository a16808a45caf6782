package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Layer operations of an OCIRepository's spec.layerSelector.
const (
	// OCILayerExtract unpacks the selected layer (a tar+gzip) and keeps
	// the files spec.ignore leaves: the default.
	OCILayerExtract = "extract"
	// OCILayerCopy keeps the selected layer as it is, with no ignore
	// rules: a packaged Helm chart, for instance.
	OCILayerCopy = "copy"
)

// Condition reasons of an OCIRepository, as Flux names them. Success is
// ReasonSucceeded; a Secret of spec.secretRef or spec.certSecretRef that
// is missing or unusable, or credentials the registry refuses, are
// ReasonAuthenticationFailed; spec.suspend is ReasonSuspended.
const (
	// ReasonURLInvalid: spec.url is not a repository name.
	ReasonURLInvalid = "URLInvalid"
	// ReasonReadOperationFailed: the tags could not be listed, or none
	// matches spec.ref.semver.
	ReasonReadOperationFailed = "ReadOperationFailed"
	// ReasonOCIPullFailed: the tag or digest could not be resolved or the
	// artifact pulled, for instance a tag that does not exist.
	ReasonOCIPullFailed = "OCIArtifactPullFailed"
	// ReasonOCILayerOperationFailed: the artifact has no layer of
	// spec.layerSelector.mediaType, or its layer is not a tar+gzip that
	// can be unpacked.
	ReasonOCILayerOperationFailed = "OCIArtifactLayerOperationFailed"
)

// OCIRepository is an OCI artifact in a container registry, such as one
// `flux push artifact` or `sluicectl push artifact` made, or a Helm chart
// stored as OCI, fetched at a tag, semver range or digest, at an interval,
// for Kustomizations and HelmReleases.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ocirepo,categories=all
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OCIRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   OCIRepositorySpec   `json:"spec"`
	Status OCIRepositoryStatus `json:"status,omitempty"`
}

// OCIRepositoryList is a list of OCIRepositories.
//
// +kubebuilder:object:root=true
type OCIRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OCIRepository `json:"items"`
}

// OCIRepositorySpec is which artifact to fetch, how and how often.
type OCIRepositorySpec struct {
	// URL of the repository, oci://<registry>/<path>, without a tag or
	// digest: spec.ref selects the artifact.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('oci://')",message="spec.url must start with oci://"
	// +kubebuilder:validation:XValidation:rule="!self.substring(self.lastIndexOf('/') + 1).contains(':') && !self.contains('@')",message="spec.url must not have a tag or digest: set spec.ref"
	URL string `json:"url"`

	// Reference selects the artifact; defaults to the tag latest.
	// +optional
	Reference *OCIRepositoryRef `json:"ref,omitempty"`

	// LayerSelector picks the layer and what is done with it; defaults to
	// extracting the first layer.
	// +optional
	LayerSelector *OCILayerSelector `json:"layerSelector,omitempty"`

	// SecretRef names a Secret in the same namespace with the registry
	// credentials: a kubernetes.io/dockerconfigjson Secret, or username
	// and password.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret in the same namespace with the TLS
	// material for the registry: ca.crt, trusted besides the system
	// roots, and a client certificate in tls.crt and tls.key.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// Insecure allows plain HTTP to the registry.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Interval between two checks for a new artifact.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout of one fetch.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Ignore holds .gitignore patterns that replace the default
	// exclusions of an extracted layer, and take precedence over its
	// .sourceignore files.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Suspend stops fetching.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Provider of the registry credentials: generic (the default) takes
	// them from spec.secretRef. aws, azure and gcp, which mint them from
	// a cloud identity, are refused.
	// +kubebuilder:validation:Enum=generic;aws;azure;gcp
	// +kubebuilder:validation:XValidation:rule="self == 'generic'",message="spec.provider aws, azure and gcp are not supported: cloud identities are out of scope; use generic with spec.secretRef"
	// +kubebuilder:default=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// ServiceAccountName names a ServiceAccount in the same namespace
	// whose imagePullSecrets hold the registry credentials, when
	// spec.secretRef is not set.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// ProxySecretRef names a Secret in the same namespace with the HTTP
	// proxy for the registry: address, and optionally username and
	// password.
	// +optional
	ProxySecretRef *LocalObjectReference `json:"proxySecretRef,omitempty"`

	// Verify checks the signature of the artifact's manifest digest with
	// cosign or notation before the artifact is stored, as Flux does.
	// +optional
	Verify *OCIRepositoryVerification `json:"verify,omitempty"`
}

// OCIRepositoryVerification says how to check an artifact's signature.
//
// +kubebuilder:validation:XValidation:rule="self.provider != 'notation' || has(self.secretRef)",message="spec.verify.secretRef is required with provider notation: its Secret holds trustpolicy.json and the CA certificates",fieldPath=".secretRef"
type OCIRepositoryVerification struct {
	// Provider is cosign or notation.
	// +kubebuilder:validation:Enum=cosign;notation
	// +kubebuilder:default=cosign
	Provider string `json:"provider"`

	// SecretRef names a Secret in the same namespace: for cosign, the
	// trusted public keys, each in an entry ending in .pub; for notation,
	// trustpolicy.json and the CA certificates (*.crt, *.pem). Without it
	// cosign verifies keyless signatures.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// MatchOIDCIdentity are the identities a cosign keyless signature
	// may carry: one whose issuer and subject regular expressions both
	// match is enough.
	// +optional
	MatchOIDCIdentity []OIDCIdentityMatch `json:"matchOIDCIdentity,omitempty"`

	// TrustedRootSecretRef names a Secret in the same namespace whose
	// trusted_root.json is the Sigstore trusted root (Fulcio, Rekor,
	// timestamp authorities) of cosign keyless signatures; without it
	// the public Sigstore root is fetched over TUF.
	// +optional
	TrustedRootSecretRef *LocalObjectReference `json:"trustedRootSecretRef,omitempty"`
}

// OCIRepositoryRef selects the artifact: digest wins over semver, and
// semver over tag.
//
// +kubebuilder:validation:XValidation:rule="has(self.tag) || has(self.semver) || has(self.digest)",message="spec.ref must set one of tag, semver and digest"
// +kubebuilder:validation:XValidation:rule="!has(self.semverFilter) || has(self.semver)",message="spec.ref.semverFilter needs spec.ref.semver"
type OCIRepositoryRef struct {
	// Digest of the manifest to pull, sha256:<hex>.
	// +kubebuilder:validation:Pattern="^sha(256|384|512):[a-f0-9]{64,128}$"
	// +optional
	Digest string `json:"digest,omitempty"`

	// SemVer is a range over the tags; the highest match is pulled. The
	// API server refuses a range that does not parse, rather than a pull
	// failing on it; 512 is the semver library's own bound.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[[:space:]]*(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?(([[:space:]]*(,|[|][|])[[:space:]]*|[[:space:]]+)(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?)*[[:space:]]*$')",message="spec.ref.semver must be a semver range, such as >=1.0.0 <2.0.0, 1.2.x or ~1.2.3"
	SemVer string `json:"semver,omitempty"`

	// SemverFilter is a regular expression a tag must match to be
	// considered by SemVer.
	// +optional
	SemverFilter string `json:"semverFilter,omitempty"`

	// Tag to pull.
	// +optional
	Tag string `json:"tag,omitempty"`
}

// OCILayerSelector picks a layer of the artifact and says what to do with
// it.
type OCILayerSelector struct {
	// MediaType of the layer: the first layer with it is selected. Empty
	// selects the first layer.
	// +optional
	MediaType string `json:"mediaType,omitempty"`

	// Operation is extract (the default) or copy.
	// +kubebuilder:validation:Enum=extract;copy
	// +optional
	Operation string `json:"operation,omitempty"`
}

// OCIRepositoryStatus is what the last fetch produced.
type OCIRepositoryStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Artifact is the last fetched artifact: its revision is
	// <tag>@sha256:<manifest digest>, or sha256:<manifest digest> for
	// spec.ref.digest, and its metadata the manifest's annotations.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`

	// LastHandledReconcileAt is the last ReconcileRequestAnnotation value
	// acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// ObservedIgnore is the spec.ignore of the artifact.
	// +optional
	ObservedIgnore *string `json:"observedIgnore,omitempty"`

	// ObservedLayerSelector is the spec.layerSelector of the artifact.
	// +optional
	ObservedLayerSelector *OCILayerSelector `json:"observedLayerSelector,omitempty"`
}

// GetConditions returns the status conditions.
func (r *OCIRepository) GetConditions() []metav1.Condition { return r.Status.Conditions }

// LayerOperation is spec.layerSelector.operation, OCILayerExtract when
// unset.
func (r *OCIRepository) LayerOperation() string {
	if r.Spec.LayerSelector == nil || r.Spec.LayerSelector.Operation == "" {
		return OCILayerExtract
	}
	return r.Spec.LayerSelector.Operation
}
