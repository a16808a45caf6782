package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Providers of a Bucket's spec.provider, as Flux names them.
const (
	// BucketProviderGeneric is any storage that speaks the S3 API, with
	// static keys or anonymously: the default.
	BucketProviderGeneric = "generic"
	// BucketProviderAmazon is Amazon S3. Sluice reaches it through the S3
	// API with the static keys of spec.secretRef, as generic does; the
	// instance and workload identities Flux also takes are out of scope.
	BucketProviderAmazon = "aws"
	// BucketProviderGoogle is Google Cloud Storage through its own API:
	// refused. Its S3 interoperability endpoint with HMAC keys is generic.
	BucketProviderGoogle = "gcp"
	// BucketProviderAzure is Azure Blob Storage: refused.
	BucketProviderAzure = "azure"
)

// Condition reasons of a Bucket, as Flux names them. Success is
// ReasonSucceeded; a Secret of spec.secretRef, spec.certSecretRef or
// spec.proxySecretRef that is missing or unusable, and keys the endpoint
// refuses, are ReasonAuthenticationFailed; an endpoint no client can be
// made for is ReasonURLInvalid; spec.suspend is ReasonSuspended.
const (
	// ReasonBucketOperationFailed: the objects could not be listed or
	// fetched: the endpoint cannot be reached, the bucket does not exist,
	// or it holds more than an artifact may.
	ReasonBucketOperationFailed = "BucketOperationFailed"
)

// Bucket is a bucket of an object storage that speaks the S3 API, such
// as MinIO, Ceph RGW, Amazon S3 or Google Cloud Storage's interoperability
// endpoint: its objects, under a prefix and filtered by ignore rules, are
// fetched at an interval as one artifact for Kustomizations and
// HelmCharts.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Bucket struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BucketSpec   `json:"spec"`
	Status BucketStatus `json:"status,omitempty"`
}

// BucketList is a list of Buckets.
//
// +kubebuilder:object:root=true
type BucketList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Bucket `json:"items"`
}

// BucketSpec is which bucket to fetch, how and how often. Flux's fields
// that need a cloud identity are kept, so that a Flux manifest reads, and
// refused by the API server with a message naming them.
//
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'aws' || has(self.secretRef)",message="spec.provider aws needs spec.secretRef with accesskey and secretkey: Sluice does not take AWS instance or workload identities",fieldPath=".provider"
// +kubebuilder:validation:XValidation:rule="!has(self.sts)",message="spec.sts is not supported: give static keys in spec.secretRef",fieldPath=".sts"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountName)",message="spec.serviceAccountName is not supported: give static keys in spec.secretRef",fieldPath=".serviceAccountName"
type BucketSpec struct {
	// Provider of the storage: generic (the default) for any S3 API, or
	// aws with the static keys of spec.secretRef. gcp and azure, which
	// need their own APIs and cloud identities, are refused.
	// +kubebuilder:validation:Enum=generic;aws;gcp;azure
	// +kubebuilder:validation:XValidation:rule="self == 'generic' || self == 'aws'",message="spec.provider gcp and azure are not supported: use generic with the storage's S3 endpoint and static keys"
	// +kubebuilder:default=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// BucketName is the name of the bucket.
	// +kubebuilder:validation:MinLength=1
	BucketName string `json:"bucketName"`

	// Endpoint is the storage's address, host[:port] with no scheme:
	// HTTPS unless spec.insecure is set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="!self.contains('/')",message="spec.endpoint is host[:port] with no scheme or path: set spec.insecure for plain HTTP"
	Endpoint string `json:"endpoint"`

	// STS is Flux's Security Token Service configuration: refused.
	// +optional
	STS *BucketSTSSpec `json:"sts,omitempty"`

	// Insecure allows plain HTTP to the endpoint.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Region of the bucket, for storages that need one in the
	// signature; empty asks the storage.
	// +optional
	Region string `json:"region,omitempty"`

	// Prefix filters the objects on the server: only keys that start
	// with it are listed. The files keep their whole keys as paths.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// SecretRef names a Secret in the same namespace with the static
	// keys, accesskey and secretkey. Without it requests are anonymous.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// ServiceAccountName is Flux's workload identity: refused.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// CertSecretRef names a Secret in the same namespace with the TLS
	// material for the endpoint: ca.crt, trusted besides the system
	// roots, and a client certificate in tls.crt and tls.key.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// ProxySecretRef names a Secret in the same namespace with the HTTP
	// proxy to reach the endpoint through: address, and optionally
	// username and password.
	// +optional
	ProxySecretRef *LocalObjectReference `json:"proxySecretRef,omitempty"`

	// Interval between two checks for changed objects.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout of one check and fetch.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Ignore holds .gitignore patterns that replace the default
	// exclusions, and take precedence over the bucket's root
	// .sourceignore object.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Suspend stops fetching.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BucketSTSSpec is Flux's Security Token Service configuration. Sluice
// refuses it; the type is kept so that a Flux manifest reads and the
// refusal names the field.
type BucketSTSSpec struct {
	// Provider of the Security Token Service: aws or ldap.
	// +kubebuilder:validation:Enum=aws;ldap
	Provider string `json:"provider"`

	// Endpoint of the Security Token Service.
	// +kubebuilder:validation:Pattern="^(http|https)://.*$"
	Endpoint string `json:"endpoint"`

	// SecretRef names a Secret with the STS credentials.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret with the TLS material for the STS
	// endpoint.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`
}

// BucketStatus is what the last fetch produced.
type BucketStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Artifact is the last fetched set of objects: its revision is
	// Flux's, sha256:<hex> over the sorted keys and etags, and its digest
	// is over the files' paths and contents.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`

	// LastHandledReconcileAt is the last ReconcileRequestAnnotation value
	// acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// GetConditions returns the status conditions.
func (b *Bucket) GetConditions() []metav1.Condition { return b.Status.Conditions }
