package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImageUpdateAutomation writes the tags its ImagePolicies chose into the
// files of a Git repository, commits and pushes. With onCanaryFailure:
// Revert, it also writes the last promoted tag back when a Canary rolls
// back a tag it wrote.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Last run",type=date,JSONPath=`.status.lastAutomationRunTime`
// +kubebuilder:printcolumn:name="Last push",type=string,JSONPath=`.status.lastPushCommit`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImageUpdateAutomation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImageUpdateAutomationSpec   `json:"spec"`
	Status ImageUpdateAutomationStatus `json:"status,omitempty"`
}

// ImageUpdateAutomationList is a list of ImageUpdateAutomations.
//
// +kubebuilder:object:root=true
type ImageUpdateAutomationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageUpdateAutomation `json:"items"`
}

// What an automation does when a Canary rolls back a tag it wrote.
const (
	// CanaryFailureIgnore leaves Git as it is.
	CanaryFailureIgnore = "Ignore"
	// CanaryFailureRevert commits the last promoted tag back, and makes
	// the policy skip the failed tag until a newer one appears.
	CanaryFailureRevert = "Revert"
)

// ImageUpdateAutomationSpec says which repository to update, where, how
// to commit and where to push.
type ImageUpdateAutomationSpec struct {
	// SourceRef names the GitRepository to update; its URL and
	// credentials are used to clone and push.
	SourceRef CrossNamespaceSourceReference `json:"sourceRef"`

	// GitSpec says what to check out, how to commit and where to push.
	// +optional
	GitSpec *GitSpec `json:"git,omitempty"`

	// Interval between two runs.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// PolicySelector selects the ImagePolicies whose markers are applied;
	// all in the namespace when empty.
	// +optional
	PolicySelector *metav1.LabelSelector `json:"policySelector,omitempty"`

	// Update says which files to update and how.
	// +kubebuilder:default:={"strategy":"Setters"}
	// +optional
	Update *UpdateStrategy `json:"update,omitempty"`

	// OnCanaryFailure says what happens when a Canary rolls back a tag
	// this automation wrote: Ignore leaves Git as it is; Revert commits
	// the Canary's last promoted tag back to the marked fields, naming
	// the Canary, the revision and the reason, and makes the ImagePolicy
	// skip the failed tag until a newer one appears.
	// +kubebuilder:validation:Enum=Ignore;Revert
	// +kubebuilder:default:=Ignore
	// +optional
	OnCanaryFailure string `json:"onCanaryFailure,omitempty"`

	// Suspend stops the automation.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// CrossNamespaceSourceReference names a source, by default in the
// automation's namespace.
type CrossNamespaceSourceReference struct {
	// APIVersion of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the referent; only GitRepository.
	// +kubebuilder:validation:Enum=GitRepository
	// +kubebuilder:default:=GitRepository
	Kind string `json:"kind"`

	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the referent; the automation's when empty.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// GitSpec says what to check out, how to commit and where to push.
type GitSpec struct {
	// Checkout names the ref to check out; the GitRepository's when
	// empty.
	// +optional
	Checkout *GitCheckoutSpec `json:"checkout,omitempty"`

	// Commit says who commits and with what message.
	Commit CommitSpec `json:"commit"`

	// Push says where to push; the checked-out branch when empty.
	// +optional
	Push *PushSpec `json:"push,omitempty"`
}

// GitCheckoutSpec names the ref to check out.
type GitCheckoutSpec struct {
	// Reference to check out.
	Reference GitRepositoryRef `json:"ref"`
}

// GitRepositoryRef selects a commit, as a GitRepository's ref does.
type GitRepositoryRef struct {
	// Branch to check out.
	// +optional
	Branch string `json:"branch,omitempty"`

	// Tag to check out.
	// +optional
	Tag string `json:"tag,omitempty"`

	// SemVer is a range over the tags; the highest match is checked out.
	// +optional
	SemVer string `json:"semver,omitempty"`

	// Name is a full reference, such as refs/heads/main.
	// +optional
	Name string `json:"name,omitempty"`

	// Commit is a full SHA-1.
	// +optional
	// +kubebuilder:validation:Pattern="^[0-9a-f]{40}$"
	Commit string `json:"commit,omitempty"`
}

// CommitSpec says who commits and with what message.
type CommitSpec struct {
	// Author of the commits.
	Author CommitUser `json:"author"`

	// SigningKey names a Secret whose git.asc holds an armored OpenPGP
	// private key to sign the commits with, and passphrase its
	// passphrase.
	// +optional
	SigningKey *SigningKey `json:"signingKey,omitempty"`

	// MessageTemplate is a Go text/template for the commit message, over
	// .AutomationObject, .Changed (Changes, FileChanges, Objects) and
	// .Values.
	// +optional
	MessageTemplate string `json:"messageTemplate,omitempty"`

	// MessageTemplateValues are given to the template as .Values.
	// +optional
	MessageTemplateValues map[string]string `json:"messageTemplateValues,omitempty"`
}

// CommitUser is a commit's author.
type CommitUser struct {
	// Name of the author.
	// +optional
	Name string `json:"name,omitempty"`

	// Email of the author.
	// +kubebuilder:validation:MinLength=1
	Email string `json:"email"`
}

// SigningKey names the Secret with an OpenPGP key.
type SigningKey struct {
	// SecretRef names the Secret.
	SecretRef LocalObjectReference `json:"secretRef"`
}

// PushSpec says where to push.
//
// +kubebuilder:validation:XValidation:rule="has(self.branch) || has(self.refspec)",message="set spec.git.push.branch or spec.git.push.refspec"
type PushSpec struct {
	// Branch to push to; created from the checked-out commit when
	// missing.
	// +optional
	Branch string `json:"branch,omitempty"`

	// Refspec to push, such as refs/heads/main:refs/heads/auto.
	// +optional
	Refspec string `json:"refspec,omitempty"`

	// Options are push options sent to the server.
	// +optional
	Options map[string]string `json:"options,omitempty"`
}

// Update strategies.
const (
	// UpdateStrategySetters updates the fields marked with
	// {"$imagepolicy": "namespace:name"} comments.
	UpdateStrategySetters = "Setters"
)

// UpdateStrategy says which files to update and how.
type UpdateStrategy struct {
	// Strategy of the update; only Setters.
	// +kubebuilder:validation:Enum=Setters
	// +kubebuilder:default:=Setters
	Strategy string `json:"strategy"`

	// Path of the folder to update, relative to the repository's root;
	// the whole repository when empty.
	// +optional
	Path string `json:"path,omitempty"`
}

// ImageUpdateAutomationStatus is what the last runs did.
type ImageUpdateAutomationStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastAutomationRunTime is when the automation last ran.
	// +optional
	LastAutomationRunTime *metav1.Time `json:"lastAutomationRunTime,omitempty"`

	// LastPushCommit is the SHA-1 of the last commit pushed.
	// +optional
	LastPushCommit string `json:"lastPushCommit,omitempty"`

	// LastPushTime is when the last commit was pushed.
	// +optional
	LastPushTime *metav1.Time `json:"lastPushTime,omitempty"`

	// ObservedPolicies are the policies the markers name, with the image
	// each chose at the last run.
	// +optional
	ObservedPolicies map[string]ImageRef `json:"observedPolicies,omitempty"`

	// ObservedSourceRevision is the revision of the source at the last
	// run.
	// +optional
	ObservedSourceRevision string `json:"observedSourceRevision,omitempty"`

	// CanaryFailures are the tags this automation wrote that a Canary
	// rolled back, newest last; with onCanaryFailure: Revert their
	// policies skip them.
	// +optional
	CanaryFailures []CanaryFailure `json:"canaryFailures,omitempty"`

	// LastHandledReconcileAt is the last reconcile request annotation
	// value acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// CanaryFailure is a tag a Canary rolled back.
type CanaryFailure struct {
	// Policy is the ImagePolicy that chose the tag, as namespace/name.
	Policy string `json:"policy"`

	// Image that failed, without tag.
	Image string `json:"image"`

	// Tag that failed.
	Tag string `json:"tag"`

	// RevertedTo is the last promoted tag written back.
	// +optional
	RevertedTo string `json:"revertedTo,omitempty"`

	// Canary that rolled the tag back, as namespace/name.
	Canary string `json:"canary"`

	// Revision of the Canary's target that failed.
	// +optional
	Revision string `json:"revision,omitempty"`

	// Reason the Canary gave.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Commit that wrote the last promoted tag back.
	// +optional
	Commit string `json:"commit,omitempty"`

	// Time the failure was seen.
	Time metav1.Time `json:"time"`
}

// GetConditions returns the status conditions.
func (a *ImageUpdateAutomation) GetConditions() []metav1.Condition { return a.Status.Conditions }
