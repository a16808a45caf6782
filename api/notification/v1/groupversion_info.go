// Package v1 holds the notification.sluice.dev/v1 API: the Receiver, a
// webhook endpoint that Git hosts call on a push so that the sync core
// fetches at once instead of at its next interval. Field names and
// meanings follow Flux's notification.toolkit.fluxcd.io/v1, so a Flux
// manifest is migrated by changing its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=notification.sluice.dev
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "notification.sluice.dev", Version: "v1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Receiver{}, &ReceiverList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Condition reasons of a Receiver.
const (
	ReasonSucceeded     = "Succeeded"
	ReasonTokenNotFound = "TokenNotFound"
	// ReasonReconcileRequestFailed: a verified call could not ask its
	// resources to reconcile (a filter that fails on the call, a patch
	// refused). The caller gets 500; the Receiver gets a Warning Event.
	ReasonReconcileRequestFailed = "ReconcileRequestFailed"
	// ReasonOIDCIssuerUnavailable: a generic-oidc call could not be
	// verified because the issuer's discovery or keys could not be read.
	ReasonOIDCIssuerUnavailable = "OIDCIssuerUnavailable"
	// ReasonInvalidCELExpression is a CEL expression of the spec
	// (resourceFilter, a resource's filter, an OIDC provider's variable or
	// validation) that does not compile; calls get 503 until it is fixed.
	ReasonInvalidCELExpression = "InvalidCELExpression"
)
