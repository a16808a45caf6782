package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitRepository is a Git repository the sync core fetches at a ref, at an
// interval, for Kustomizations to apply.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gitrepo,categories=all
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GitRepositorySpec   `json:"spec"`
	Status GitRepositoryStatus `json:"status,omitempty"`
}

// GitRepositoryList is a list of GitRepositories.
//
// +kubebuilder:object:root=true
type GitRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitRepository `json:"items"`
}

// GitRepositorySpec is what to fetch and how often.
type GitRepositorySpec struct {
	// URL of the repository: http, https or ssh.
	// +kubebuilder:validation:Pattern="^(http|https|ssh)://.*$"
	URL string `json:"url"`

	// SecretRef names a Secret in the same namespace with the credentials:
	// username and password or bearerToken for HTTPS; identity,
	// known_hosts and an optional password for SSH.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Interval between two fetches.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout of one fetch.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Reference selects the commit; defaults to the master branch.
	// +optional
	Reference *GitRepositoryRef `json:"ref,omitempty"`

	// Ignore holds .gitignore patterns that replace the default exclusions.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Suspend stops fetching.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// SparseCheckout lists the folders to keep; the artifact holds only
	// the files below them.
	// +optional
	SparseCheckout []string `json:"sparseCheckout,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// GitRepositoryRef selects a commit: commit wins over semver, semver over
// tag, and tag over branch.
type GitRepositoryRef struct {
	// Branch to follow.
	// +optional
	Branch string `json:"branch,omitempty"`

	// Name is a full Git reference to check out, such as
	// refs/heads/main, refs/tags/v1.0.0 or refs/pull/420/head; it wins
	// over Branch, Tag and SemVer.
	// +kubebuilder:validation:Pattern="^refs/.+"
	// +optional
	Name string `json:"name,omitempty"`

	// Tag to check out.
	// +optional
	Tag string `json:"tag,omitempty"`

	// SemVer is a range over the tags; the highest match is checked out.
	// +optional
	SemVer string `json:"semver,omitempty"`

	// Commit is a full SHA-1; with branch, only that branch is fetched.
	// +optional
	// +kubebuilder:validation:Pattern="^[0-9a-f]{40}$"
	Commit string `json:"commit,omitempty"`
}

// GitRepositoryStatus is what the last fetch produced.
type GitRepositoryStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Artifact is the last fetched tree.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`

	// LastHandledReconcileAt is the last ReconcileRequestAnnotation value
	// acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// Artifact names a fetched tree.
type Artifact struct {
	// Revision in Flux's format: main@sha1:<hash>, v1.0.0@sha1:<hash> or
	// sha1:<hash>.
	Revision string `json:"revision"`

	// Digest of the filtered tree, sha256:<hex>.
	Digest string `json:"digest"`

	// LastUpdateTime is when the revision was fetched.
	LastUpdateTime metav1.Time `json:"lastUpdateTime"`

	// Metadata of an OCIRepository's artifact is its manifest's
	// annotations (org.opencontainers.image.source, .revision,
	// .created), as Flux copies them.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}

// GetConditions returns the status conditions.
func (r *GitRepository) GetConditions() []metav1.Condition { return r.Status.Conditions }
