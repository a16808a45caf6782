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
type HelmChartSpec struct {
	// Chart is the chart's name in a HelmRepository, or its path in a
	// GitRepository.
	// +kubebuilder:validation:MinLength=1
	Chart string `json:"chart"`

	// Version is a semver range over a HelmRepository's versions;
	// ignored for a GitRepository.
	// +kubebuilder:default="*"
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

	// ValuesFiles, relative to the chart, are merged in order over its
	// values.yaml.
	// +optional
	ValuesFiles []string `json:"valuesFiles,omitempty"`

	// Suspend stops checking for versions.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
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
