// Package v1beta3 holds the notification.sluice.dev/v1beta3 API: the
// Provider, a service that receives notifications (a chat, Alertmanager,
// a Git host's commit statuses, Grafana), and the Alert, which sends the
// Events of chosen Sluice objects to a Provider. Field names and meanings
// follow Flux's notification.toolkit.fluxcd.io/v1beta3, so a Flux
// manifest is migrated by changing its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=notification.sluice.dev
package v1beta3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "notification.sluice.dev", Version: "v1beta3"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Provider{}, &ProviderList{}, &Alert{}, &AlertList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// ReadyCondition is the kstatus condition of Providers and Alerts.
const ReadyCondition = "Ready"

// Reasons of a Provider's Ready condition.
const (
	// ReasonResolved: the Secrets and the address resolve, and no delivery
	// has failed since the Provider or its Secret last changed.
	ReasonResolved = "Resolved"
	// ReasonSecretNotFound: spec.secretRef names no Secret.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonCertSecretNotFound: spec.certSecretRef names no Secret.
	ReasonCertSecretNotFound = "CertSecretNotFound"
	// ReasonInvalidCertificate: the Secret of spec.certSecretRef holds no
	// usable ca.crt, or a tls.crt and tls.key that do not load.
	ReasonInvalidCertificate = "InvalidCertificate"
	// ReasonAddressNotFound: neither spec.address nor the Secret's address
	// key holds an address.
	ReasonAddressNotFound = "AddressNotFound"
	// ReasonInvalidAddress: the address is not an http or https URL, or
	// not one the type can use (a commit status needs a repository URL).
	ReasonInvalidAddress = "InvalidAddress"
	// ReasonTokenNotFound: the type needs a token and the Secret has none.
	ReasonTokenNotFound = "TokenNotFound"
	// ReasonInvalidSpec: another field cannot work, such as a Telegram
	// Provider without spec.channel.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDeliveryFailed: the last notification was not delivered,
	// retries included.
	ReasonDeliveryFailed = "DeliveryFailed"
	// ReasonSuspended: spec.suspend is true; nothing is sent.
	ReasonSuspended = "Suspended"
)

// Reasons of an Alert's Ready condition.
const (
	// ReasonProviderReady: the Alert's Provider is ready.
	ReasonProviderReady = "ProviderReady"
	// ReasonProviderNotFound: spec.providerRef names no Provider.
	ReasonProviderNotFound = "ProviderNotFound"
	// ReasonProviderNotReady: the Provider exists and is not ready; the
	// message carries its reason.
	ReasonProviderNotReady = "ProviderNotReady"
	// ReasonInvalidRegex: an entry of spec.inclusionList or
	// spec.exclusionList is not a regular expression.
	ReasonInvalidRegex = "InvalidRegex"
)
