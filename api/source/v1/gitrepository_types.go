package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Providers of a GitRepository's spec.provider, as Flux names them.
const (
	// GitProviderGeneric authenticates with the credentials of
	// spec.secretRef: the default.
	GitProviderGeneric = "generic"
	// GitProviderGitHub authenticates as a GitHub App installation, with
	// the App's keys in spec.secretRef.
	GitProviderGitHub = "github"
	// GitProviderAzure is Azure DevOps with a managed identity: refused,
	// as cloud identities are out of scope.
	GitProviderAzure = "azure"
	// GitProviderAWS is AWS CodeCommit with an IAM identity: refused, as
	// cloud identities are out of scope.
	GitProviderAWS = "aws"
)

// GitVerificationMode says which Git objects spec.verify checks.
type GitVerificationMode string

// The modes of spec.verify.mode, as Flux names them.
const (
	// ModeGitHEAD verifies the commit that is checked out.
	ModeGitHEAD GitVerificationMode = "HEAD"
	// ModeGitHEADLegacy is the deprecated spelling of ModeGitHEAD.
	ModeGitHEADLegacy GitVerificationMode = "head"
	// ModeGitTag verifies the annotated tag that spec.ref names.
	ModeGitTag GitVerificationMode = "Tag"
	// ModeGitTagAndHEAD verifies the tag and the commit it points at.
	ModeGitTagAndHEAD GitVerificationMode = "TagAndHEAD"
)

// Condition types of a GitRepository besides Ready, as Flux names them.
const (
	// SourceVerifiedCondition is True when spec.verify checked the
	// signatures of the artifact's commit or tag (of an OCIRepository's
	// or HelmChart's manifest digest), False when it refused them;
	// absent without spec.verify.
	SourceVerifiedCondition = "SourceVerified"
	// IncludeUnavailableCondition is True while a GitRepository of
	// spec.include does not exist or has no artifact; absent otherwise.
	IncludeUnavailableCondition = "IncludeUnavailable"
)

// Condition reasons of a GitRepository, as Flux names them, besides
// ReasonSucceeded, ReasonAuthenticationFailed, ReasonGitOperationFailed
// and ReasonSuspended.
const (
	// ReasonInvalidCommitSignature: the commit is not signed by a key of
	// spec.verify.secretRef.
	ReasonInvalidCommitSignature = "InvalidCommitSignature"
	// ReasonInvalidTagSignature: the tag is not signed by a key of
	// spec.verify.secretRef.
	ReasonInvalidTagSignature = "InvalidTagSignature"
	// ReasonInvalidGitObject: spec.verify asks for the tag's signature and
	// the tag carries none (it is unsigned, or a lightweight tag).
	ReasonInvalidGitObject = "InvalidGitObject"
	// ReasonInvalidVerificationMode: spec.verify.mode asks for a tag and
	// spec.ref names none.
	ReasonInvalidVerificationMode = "InvalidVerificationMode"
	// ReasonVerificationError: the keys of spec.verify.secretRef cannot be
	// read; for an OCIRepository or a HelmChart, also that no cosign or
	// notation signature verified.
	ReasonVerificationError = "VerificationError"
	// ReasonInvalidProviderConfiguration: spec.provider and the Secret of
	// spec.secretRef do not fit: github without the App's keys, or the
	// App's keys without github.
	ReasonInvalidProviderConfiguration = "InvalidProviderConfiguration"
	// ReasonIncludeNotFound: a GitRepository of spec.include does not
	// exist (Flux's NotFound).
	ReasonIncludeNotFound = "NotFound"
	// ReasonIncludeNoArtifact: a GitRepository of spec.include has no
	// artifact yet (Flux's NoArtifact).
	ReasonIncludeNoArtifact = "NoArtifact"
	// ReasonIncludeCycle: spec.include leads back to this GitRepository,
	// whose artifact would then hold itself. Flux has no such check.
	ReasonIncludeCycle = "IncludeCycle"
	// ReasonCopyFailure: spec.include's fromPath is not in the included
	// artifact.
	ReasonCopyFailure = "CopyFailure"
)

// GitRepository is a Git repository the sync core fetches at a ref, at an
// interval, for Kustomizations to apply.
//
// +kubebuilder:validation:XValidation:rule="!has(self.spec.include) || self.spec.include.all(i, i.repository.name != self.metadata.name)",message="spec.include may not name the GitRepository itself: its artifact would hold itself"
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

// GitRepositorySpec is what to fetch and how often. Flux's fields that
// need a cloud identity are kept, so that a Flux manifest reads, and
// refused by the API server with a message naming them.
//
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountName)",message="spec.serviceAccountName is not supported: cloud identities are out of scope; give credentials in spec.secretRef",fieldPath=".serviceAccountName"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'github' || has(self.secretRef)",message="spec.provider github needs spec.secretRef with the GitHub App's githubAppID, githubAppInstallationID (or githubAppInstallationOwner) and githubAppPrivateKey",fieldPath=".provider"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'github' || self.url.startsWith('https://') || self.url.startsWith('http://')",message="spec.provider github needs an https spec.url: a GitHub App's installation token is sent as HTTPS basic auth, not over ssh",fieldPath=".provider"
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.mode) || !(self.verify.mode in ['Tag', 'TagAndHEAD']) || (has(self.ref) && !has(self.ref.commit) && (has(self.ref.tag) || has(self.ref.semver) || (has(self.ref.name) && self.ref.name.startsWith('refs/tags/'))))",message="spec.verify.mode Tag and TagAndHEAD need spec.ref.tag, spec.ref.semver or a spec.ref.name under refs/tags/, and no spec.ref.commit",fieldPath=".verify.mode"
type GitRepositorySpec struct {
	// URL of the repository: http, https or ssh.
	// +kubebuilder:validation:Pattern="^(http|https|ssh)://.*$"
	URL string `json:"url"`

	// SecretRef names a Secret in the same namespace with the credentials:
	// username and password or bearerToken for HTTPS; identity,
	// known_hosts and an optional password for SSH; ca.crt (or the legacy
	// caFile) to trust a private CA and tls.crt with tls.key for a client
	// certificate over HTTPS. With provider github it holds the GitHub
	// App's githubAppID, githubAppInstallationID or
	// githubAppInstallationOwner, githubAppPrivateKey and an optional
	// githubAppBaseURL.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Provider of the credentials: generic (the default) reads them from
	// spec.secretRef; github mints GitHub App installation tokens from the
	// App's keys in spec.secretRef. azure and aws, which need cloud
	// identities, are refused.
	// +kubebuilder:validation:Enum=generic;aws;azure;github
	// +kubebuilder:validation:XValidation:rule="self == 'generic' || self == 'github'",message="spec.provider azure and aws are not supported: cloud identities are out of scope; use generic with spec.secretRef, or github with a GitHub App"
	// +optional
	Provider string `json:"provider,omitempty"`

	// ServiceAccountName is Flux's workload identity for the azure and aws
	// providers: refused.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

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

	// Verification checks the signatures of the commit, or of the tag,
	// before an artifact is made of it.
	// +optional
	Verification *GitRepositoryVerification `json:"verify,omitempty"`

	// ProxySecretRef names a Secret in the same namespace with the proxy
	// to reach the repository through: address, and optionally username
	// and password.
	// +optional
	ProxySecretRef *LocalObjectReference `json:"proxySecretRef,omitempty"`

	// Ignore holds .gitignore patterns that replace the default exclusions.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Suspend stops fetching.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// RecurseSubmodules checks out the submodules too, recursively, at the
	// commits the repository records. The credentials of spec.secretRef go
	// only to submodules on the repository's host.
	// +optional
	RecurseSubmodules bool `json:"recurseSubmodules,omitempty"`

	// Include copies the artifacts of other GitRepositories of the
	// namespace into this one's.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Include []GitRepositoryInclude `json:"include,omitempty"`

	// SparseCheckout lists the folders to keep; the artifact holds only
	// the files below them.
	// +optional
	SparseCheckout []string `json:"sparseCheckout,omitempty"`
}

// GitRepositoryInclude copies another GitRepository's artifact, or a
// folder of it, into this one's.
type GitRepositoryInclude struct {
	// GitRepositoryRef names the GitRepository, in the same namespace.
	GitRepositoryRef LocalObjectReference `json:"repository"`

	// FromPath is the folder (or file) of the included artifact to copy;
	// empty copies all of it.
	// +optional
	FromPath string `json:"fromPath,omitempty"`

	// ToPath is where the files go in this artifact; empty means the
	// included GitRepository's name.
	// +optional
	ToPath string `json:"toPath,omitempty"`
}

// GetToPath returns ToPath, or the included GitRepository's name when
// it is empty.
func (in *GitRepositoryInclude) GetToPath() string {
	if in.ToPath == "" {
		return in.GitRepositoryRef.Name
	}
	return in.ToPath
}

// GitRepositoryVerification says which signatures to check, with which
// keys.
type GitRepositoryVerification struct {
	// Mode is which objects to verify: HEAD (the commit checked out; head
	// is its deprecated spelling), Tag (the tag of spec.ref) or
	// TagAndHEAD (both).
	// +kubebuilder:validation:Enum=head;HEAD;Tag;TagAndHEAD
	// +kubebuilder:default:=HEAD
	// +optional
	Mode GitVerificationMode `json:"mode,omitempty"`

	// SecretRef names a Secret in the same namespace with the trusted
	// public keys: OpenPGP keys, armored, under keys ending in .asc, and
	// SSH keys, in authorized_keys form, under keys ending in .sshpub.
	SecretRef LocalObjectReference `json:"secretRef"`
}

// GetMode returns the mode with head read as HEAD, and HEAD when unset.
func (in *GitRepositoryVerification) GetMode() GitVerificationMode {
	switch in.Mode {
	case ModeGitTag, ModeGitTagAndHEAD:
		return in.Mode
	}
	return ModeGitHEAD
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
	// The API server refuses a range that does not parse, rather than a
	// fetch failing on it; 512 is the semver library's own bound.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[[:space:]]*(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?(([[:space:]]*(,|[|][|])[[:space:]]*|[[:space:]]+)(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?)*[[:space:]]*$')",message="spec.ref.semver must be a semver range, such as >=1.0.0 <2.0.0, 1.2.x or ~1.2.3"
	SemVer string `json:"semver,omitempty"`

	// Commit is a full commit hash: 40 hex digits (SHA-1) or 64
	// (SHA-256); with branch, only that branch is fetched.
	// +optional
	// +kubebuilder:validation:Pattern="^([0-9a-f]{40}|[0-9a-f]{64})$"
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

	// IncludedArtifacts are the artifacts of spec.include that the
	// artifact holds, in the order of spec.include.
	// +optional
	IncludedArtifacts []*Artifact `json:"includedArtifacts,omitempty"`

	// ObservedIgnore is the spec.ignore the artifact was made with.
	// +optional
	ObservedIgnore *string `json:"observedIgnore,omitempty"`

	// ObservedRecurseSubmodules is the spec.recurseSubmodules the artifact
	// was made with.
	// +optional
	ObservedRecurseSubmodules bool `json:"observedRecurseSubmodules,omitempty"`

	// ObservedInclude is the spec.include the artifact was made with.
	// +optional
	ObservedInclude []GitRepositoryInclude `json:"observedInclude,omitempty"`

	// ObservedSparseCheckout is the spec.sparseCheckout the artifact was
	// made with.
	// +optional
	ObservedSparseCheckout []string `json:"observedSparseCheckout,omitempty"`

	// SourceVerificationMode is the spec.verify mode the artifact's
	// signatures were checked with.
	// +optional
	SourceVerificationMode *GitVerificationMode `json:"sourceVerificationMode,omitempty"`

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
