package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImageRepository is an image in a registry whose tags are scanned at an
// interval, for ImagePolicies to choose from.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Tags",type=integer,JSONPath=`.status.lastScanResult.tagCount`
// +kubebuilder:printcolumn:name="Last scan",type=date,JSONPath=`.status.lastScanResult.scanTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImageRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImageRepositorySpec   `json:"spec"`
	Status ImageRepositoryStatus `json:"status,omitempty"`
}

// ImageRepositoryList is a list of ImageRepositories.
//
// +kubebuilder:object:root=true
type ImageRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageRepository `json:"items"`
}

// ImageRepositorySpec is which image to scan, how and how often.
type ImageRepositorySpec struct {
	// Image is the repository to scan, without a tag: registry host,
	// optional port, and path; Docker Hub when the host is omitted.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="spec.image must not have a digest"
	Image string `json:"image"`

	// Interval between two scans.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout of one scan; defaults to the interval, as in Flux.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// SecretRef names a kubernetes.io/dockerconfigjson Secret with the
	// registry's credentials.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// ServiceAccountName names a ServiceAccount whose imagePullSecrets
	// are used as credentials too.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// CertSecretRef names a Secret with the TLS material for the
	// registry: ca.crt, and tls.crt with tls.key for a client
	// certificate.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// Insecure allows plain HTTP.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// ExclusionList holds regular expressions; matching tags are dropped.
	// +kubebuilder:default:={"^.*\\.sig$"}
	// +kubebuilder:validation:MaxItems=25
	// +optional
	ExclusionList []string `json:"exclusionList,omitempty"`

	// Provider of the registry's credentials. Only generic is supported:
	// the credentials come from secretRef and serviceAccountName.
	// +kubebuilder:validation:Enum=generic
	// +kubebuilder:default:=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// Suspend stops scanning.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ImageRepositoryStatus is what the last scan found.
type ImageRepositoryStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// CanonicalImageName is the image with its registry spelled out.
	// +optional
	CanonicalImageName string `json:"canonicalImageName,omitempty"`

	// LastScanResult sums up the last successful scan.
	// +optional
	LastScanResult *ScanResult `json:"lastScanResult,omitempty"`

	// ObservedExclusionList is the exclusion list of the last scan.
	// +optional
	ObservedExclusionList []string `json:"observedExclusionList,omitempty"`

	// LastHandledReconcileAt is the last reconcile request annotation
	// value acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// ScanResult sums up one scan.
type ScanResult struct {
	// Revision is a digest of the tag list; it changes when a tag is
	// added or removed.
	// +optional
	Revision string `json:"revision,omitempty"`

	// TagCount is how many tags were kept.
	TagCount int `json:"tagCount"`

	// ScanTime is when the scan ran.
	// +optional
	ScanTime metav1.Time `json:"scanTime,omitempty"`

	// LatestTags are up to ten tags, in reverse alphabetical order.
	// +optional
	LatestTags []string `json:"latestTags,omitempty"`
}

// GetConditions returns the status conditions.
func (r *ImageRepository) GetConditions() []metav1.Condition { return r.Status.Conditions }
