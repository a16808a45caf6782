// Package v2 holds the sync.sluice.dev/v2 API: the HelmReleases the
// embedded sync core releases. Field names and meanings follow Flux's
// helm.toolkit.fluxcd.io/v2, so a Flux manifest is migrated by changing
// the group of its apiVersion alone.
//
// +kubebuilder:object:generate=true
// +groupName=sync.sluice.dev
package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "sync.sluice.dev", Version: "v2"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &HelmRelease{}, &HelmReleaseList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Labels the sync core sets on each object a HelmRelease installs, naming
// that HelmRelease, as Flux's helm.toolkit.fluxcd.io/name and /namespace
// do: a Canary's status change finds the HelmRelease to wake through
// them, and the dashboard the release that applied it.
const (
	// AppliedByNameLabel names the HelmRelease.
	AppliedByNameLabel = "helm.sync.sluice.dev/name"
	// AppliedByNamespaceLabel is the HelmRelease's namespace.
	AppliedByNamespaceLabel = "helm.sync.sluice.dev/namespace"
)
