// Package v1 holds the source.sluice.dev/v1 API: the sources the embedded
// sync core pulls desired state from. Field names and meanings follow
// Flux's source.toolkit.fluxcd.io/v1, so a Flux manifest is migrated by
// changing its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=source.sluice.dev
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ReconcileRequestAnnotation asks a sync-core object to reconcile now when
// set to any new value (by convention a timestamp). It is Flux's, so
// the flux CLI and Flux receivers work with Sluice too; the value acted on
// is echoed in status.lastHandledReconcileAt.
const ReconcileRequestAnnotation = "reconcile.fluxcd.io/requestedAt"

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "source.sluice.dev", Version: "v1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &GitRepository{}, &GitRepositoryList{}, &HelmRepository{}, &HelmRepositoryList{}, &HelmChart{}, &HelmChartList{}, &OCIRepository{}, &OCIRepositoryList{}, &Bucket{}, &BucketList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Condition reasons of a GitRepository.
const (
	ReasonSucceeded            = "Succeeded"
	ReasonAuthenticationFailed = "AuthenticationFailed"
	ReasonGitOperationFailed   = "GitOperationFailed"
	ReasonSuspended            = "Suspended"
)

// Condition reasons of a HelmChart, as Flux names them.
const (
	// ReasonChartPullSucceeded: the chart was pulled from a
	// HelmRepository.
	ReasonChartPullSucceeded = "ChartPullSucceeded"
	// ReasonChartPackageSucceeded: the chart was loaded from a
	// GitRepository's artifact.
	ReasonChartPackageSucceeded = "ChartPackageSucceeded"
	// ReasonChartPullError: the HelmRepository has no such chart or
	// version, or could not be reached.
	ReasonChartPullError = "ChartPullError"
	// ReasonChartPackageError: the GitRepository's artifact holds no
	// loadable chart at spec.chart.
	ReasonChartPackageError = "ChartPackageError"
	// ReasonValuesFilesError: a file of spec.valuesFiles is missing or
	// is not YAML.
	ReasonValuesFilesError = "ValuesFilesError"
	// ReasonArtifactFailed: the source does not exist or has no artifact
	// yet.
	ReasonArtifactFailed = "ArtifactFailed"
)
