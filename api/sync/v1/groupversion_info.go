// Package v1 holds the sync.sluice.dev/v1 API: the Kustomizations the
// embedded sync core applies (HelmReleases are in v2, as Flux's are). Field names and meanings follow Flux's
// kustomize.toolkit.fluxcd.io/v1, so a Flux manifest is migrated by
// changing its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=sync.sluice.dev
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "sync.sluice.dev", Version: "v1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Kustomization{}, &KustomizationList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Labels the sync core sets on each object a Kustomization applies,
// naming that Kustomization, as Flux's kustomize.toolkit.fluxcd.io/name
// and /namespace do: a Canary's status change finds the Kustomization to
// wake through them, and the dashboard the revision that applied it.
const (
	// AppliedByGroup prefixes the labels (the ssa owner group).
	AppliedByGroup = "sync.sluice.dev"
	// AppliedByNameLabel names the Kustomization.
	AppliedByNameLabel = AppliedByGroup + "/name"
	// AppliedByNamespaceLabel is the Kustomization's namespace.
	AppliedByNamespaceLabel = AppliedByGroup + "/namespace"
)
