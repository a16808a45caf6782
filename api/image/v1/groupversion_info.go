// Package v1 holds the image.sluice.dev/v1 API: image automation that
// scans registries, picks the latest tag by a policy and writes it to
// Git. Field names and meanings follow Flux's image.toolkit.fluxcd.io/v1,
// so a Flux manifest is migrated by changing its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=image.sluice.dev
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "image.sluice.dev", Version: "v1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&ImageRepository{}, &ImageRepositoryList{},
		&ImagePolicy{}, &ImagePolicyList{},
		&ImageUpdateAutomation{}, &ImageUpdateAutomationList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Condition reasons of the image kinds. Ready is the only condition type
// they write, with Reconciling or Stalled beside it (kstatus).
const (
	// ReasonSucceeded: the last scan, selection or run worked.
	ReasonSucceeded = "Succeeded"
	// ReasonSuspended: spec.suspend is set.
	ReasonSuspended = "Suspended"
	// ReasonAuthenticationFailed: the registry or the Git server refused
	// the credentials, or the credentials Secret cannot be read.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonImageNotFound: the registry does not know the image.
	ReasonImageNotFound = "ImageNotFound"
	// ReasonUnreachable: the registry did not answer.
	ReasonUnreachable = "Unreachable"
	// ReasonInvalidSpec: a field cannot be used (an image name, a regular
	// expression, a semver range, a template); the message names it.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDependencyNotReady: the ImageRepository or GitRepository
	// referred to has no result yet.
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonNoMatchingTag: no scanned tag satisfies the policy.
	ReasonNoMatchingTag = "NoMatchingTag"
	// ReasonPolicyNotFound: a setter marker names an ImagePolicy that does
	// not exist.
	ReasonPolicyNotFound = "PolicyNotFound"
	// ReasonInvalidFile: a file under spec.update.path is not valid YAML.
	ReasonInvalidFile = "InvalidFile"
	// ReasonGitOperationFailed: clone, commit or push failed.
	ReasonGitOperationFailed = "GitOperationFailed"
	// ReasonPushRejected: the Git server refused the push (permissions,
	// a protected branch).
	ReasonPushRejected = "PushRejected"
	// ReasonCanaryReverted: a Canary failed a tag this automation wrote,
	// and the last promoted tag was written back.
	ReasonCanaryReverted = "CanaryReverted"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}
