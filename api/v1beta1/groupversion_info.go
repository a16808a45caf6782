// Package v1beta1 holds the sluice.dev/v1beta1 API: Canary, MetricTemplate,
// AlertProvider and ReleasePolicy. Field names and meanings follow Flagger's
// flagger.app/v1beta1, so a Flagger manifest is migrated by changing its
// apiVersion; ReleasePolicy, which Flagger has no counterpart of, governs
// when Canaries may release.
//
// +kubebuilder:object:generate=true
// +groupName=sluice.dev
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1beta1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Canary{}, &CanaryList{},
		&MetricTemplate{}, &MetricTemplateList{},
		&AlertProvider{}, &AlertProviderList{},
		&ReleasePolicy{}, &ReleasePolicyList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
