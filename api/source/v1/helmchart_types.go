package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reconcile strategies of a HelmChart.
const (
	// ReconcileStrategyChartVersion makes a new artifact when the chart's
	// version changes.
	ReconcileStrategyChartVersion = "ChartVersion"
	// ReconcileStrategyRevision makes a new artifact when the source's
	// revision changes too: a chart in Git is re-released on every
	// commit, without a version bump (flux2#1427).
	ReconcileStrategyRevision = "Revision"
)

// HelmChart is a chart, by name and version range from a HelmRepository or
// by path from a GitRepository, loaded for HelmReleases.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hc,categories=all
// +kubebuilder:printcolumn:name="Chart",type=string,JSONPath=`.spec.chart`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HelmChart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HelmChartSpec   `json:"spec"`
	Status HelmChartStatus `json:"status,omitempty"`
}

// HelmChartList is a list of HelmCharts.
//
// +kubebuilder:object:root=true
type HelmChartList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmChart `json:"items"`
}

// HelmChartSpec names a chart and where it comes from.
//
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",message="spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository': signatures are checked on charts from an OCI registry",fieldPath=".verify"
// +kubebuilder:validation:XValidation:rule="self.sourceRef.kind != 'HelmRepository' || !has(self.version) || size(self.version) == 0 || self.version.matches('^[[:space:]]*(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?(([[:space:]]*(,|[|][|])[[:space:]]*|[[:space:]]+)(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?)*[[:space:]]*$')",message="spec.version must be a semver range, such as 6.x, >=6.0.0 <7.0.0 or 6.5.0",fieldPath=".version"
type HelmChartSpec struct {
	// Chart is the chart's name in a HelmRepository, or its path in a
	// GitRepository.
	// +kubebuilder:validation:MinLength=1
	Chart string `json:"chart"`

	// Version is a semver range over a HelmRepository's versions;
	// ignored for a GitRepository. The API server refuses a range that
	// does not parse (see the type's rule); 512 is the semver library's
	// own bound.
	// +kubebuilder:default="*"
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Version string `json:"version,omitempty"`

	// SourceRef names the HelmRepository, GitRepository or Bucket.
	SourceRef LocalHelmChartSourceReference `json:"sourceRef"`

	// Interval between two checks for a new version.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// ReconcileStrategy is ChartVersion or Revision.
	// +kubebuilder:validation:Enum=ChartVersion;Revision
	// +kubebuilder:default=ChartVersion
	// +optional
	ReconcileStrategy string `json:"reconcileStrategy,omitempty"`

	// ValuesFiles replace the chart's values.yaml, merged in order, as in
	// Flux: values.yaml counts only when listed. A path is relative to
	// the chart in a HelmRepository, and to the root of a GitRepository's
	// or Bucket's artifact (then to the chart, for one the root lacks).
	// +optional
	ValuesFiles []string `json:"valuesFiles,omitempty"`

	// ValuesFile is deprecated in Flux for ValuesFiles: merged before
	// them.
	// +optional
	ValuesFile string `json:"valuesFile,omitempty"`

	// IgnoreMissingValuesFiles skips the values files the source does not
	// hold instead of failing; status.observedValuesFiles lists those
	// merged.
	// +optional
	IgnoreMissingValuesFiles bool `json:"ignoreMissingValuesFiles,omitempty"`

	// AccessFrom is accepted and has no effect, as in Flux, which
	// documents it as not implemented.
	// +optional
	AccessFrom *AccessFrom `json:"accessFrom,omitempty"`

	// Verify checks the signature of a chart from an OCI HelmRepository
	// (type oci) with cosign or notation before it is stored, as Flux
	// does; a chart from any other repository fails verification.
	// +optional
	Verify *HelmChartVerification `json:"verify,omitempty"`

	// Suspend stops checking for versions.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// HelmChartVerification says how to check a chart's signature.
//
// +kubebuilder:validation:XValidation:rule="self.provider != 'notation' || has(self.secretRef)",message="spec.verify.secretRef is required with provider notation: its Secret holds trustpolicy.json and the CA certificates",fieldPath=".secretRef"
type HelmChartVerification struct {
	// Provider is cosign or notation.
	// +kubebuilder:validation:Enum=cosign;notation
	// +kubebuilder:default=cosign
	Provider string `json:"provider"`

	// SecretRef names a Secret in the same namespace: for cosign, the
	// trusted public keys (*.pub); for notation, trustpolicy.json and
	// the CA certificates (*.crt, *.pem). Without it cosign verifies
	// keyless signatures against the public Sigstore root.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// MatchOIDCIdentity are the identities a cosign keyless signature
	// may carry: one whose issuer and subject both match is enough.
	// +optional
	MatchOIDCIdentity []OIDCIdentityMatch `json:"matchOIDCIdentity,omitempty"`
}

// OIDCIdentityMatch matches the issuer and subject of a keyless
// signature's Fulcio certificate, as Go regular expressions.
type OIDCIdentityMatch struct {
	// Issuer is a regular expression over the OIDC issuer.
	Issuer string `json:"issuer"`
	// Subject is a regular expression over the certificate's identity.
	Subject string `json:"subject"`
}

// LocalHelmChartSourceReference names a source in the HelmChart's
// namespace.
type LocalHelmChartSourceReference struct {
	// APIVersion of the source.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the source.
	// +kubebuilder:validation:Enum=HelmRepository;GitRepository;Bucket
	Kind string `json:"kind"`

	// Name of the source.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// HelmChartStatus is the chart last loaded.
type HelmChartStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedSourceArtifactRevision is the source revision the chart was
	// loaded from.
	// +optional
	ObservedSourceArtifactRevision string `json:"observedSourceArtifactRevision,omitempty"`

	// ObservedChartName is the name in the chart's Chart.yaml.
	// +optional
	ObservedChartName string `json:"observedChartName,omitempty"`

	// ObservedValuesFiles are the values files (valuesFile, then
	// valuesFiles) merged into the chart last loaded: with
	// ignoreMissingValuesFiles, those the source held.
	// +optional
	ObservedValuesFiles []string `json:"observedValuesFiles,omitempty"`

	// Artifact is the loaded chart: its revision is the chart version,
	// with "+<source revision>" under the Revision strategy.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`

	// LastHandledReconcileAt is the last ReconcileRequestAnnotation value
	// acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// GetConditions returns the status conditions.
func (c *HelmChart) GetConditions() []metav1.Condition { return c.Status.Conditions }
