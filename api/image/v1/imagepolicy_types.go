package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImagePolicy chooses the latest tag of an ImageRepository by a rule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.status.latestRef.name`
// +kubebuilder:printcolumn:name="Tag",type=string,JSONPath=`.status.latestRef.tag`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImagePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImagePolicySpec   `json:"spec"`
	Status ImagePolicyStatus `json:"status,omitempty"`
}

// ImagePolicyList is a list of ImagePolicies.
//
// +kubebuilder:object:root=true
type ImagePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImagePolicy `json:"items"`
}

// Digest reflection policies.
const (
	// ReflectNever leaves latestRef.digest empty.
	ReflectNever = "Never"
	// ReflectIfNotPresent looks the digest up once per tag.
	ReflectIfNotPresent = "IfNotPresent"
	// ReflectAlways looks the digest up at every interval, for tags that
	// move.
	ReflectAlways = "Always"
)

// ImagePolicySpec says which repository's tags to choose from and how.
//
// +kubebuilder:validation:XValidation:rule="!has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always' || has(self.interval)",message="spec.interval is required when spec.digestReflectionPolicy is Always"
type ImagePolicySpec struct {
	// ImageRepositoryRef names the ImageRepository whose tags are chosen
	// from; its namespace defaults to the policy's.
	ImageRepositoryRef NamespacedObjectReference `json:"imageRepositoryRef"`

	// Policy is the rule that orders the tags.
	Policy ImagePolicyChoice `json:"policy"`

	// FilterTags keeps only matching tags and, with extract, orders them
	// by a part of the tag.
	// +optional
	FilterTags *TagFilter `json:"filterTags,omitempty"`

	// DigestReflectionPolicy says whether latestRef.digest is looked up.
	// +kubebuilder:validation:Enum=Never;IfNotPresent;Always
	// +kubebuilder:default:=Never
	// +optional
	DigestReflectionPolicy string `json:"digestReflectionPolicy,omitempty"`

	// Interval at which the digest is looked up again with Always.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// NamespacedObjectReference names an object, by default in the referrer's
// namespace.
type NamespacedObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the referent; the referrer's when empty.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ImagePolicyChoice holds exactly one ordering rule.
//
// +kubebuilder:validation:XValidation:rule="[has(self.semver), has(self.alphabetical), has(self.numerical)].filter(x, x).size() == 1",message="set exactly one of spec.policy.semver, spec.policy.alphabetical and spec.policy.numerical"
type ImagePolicyChoice struct {
	// SemVer picks the highest version within a range.
	// +optional
	SemVer *SemVerPolicy `json:"semver,omitempty"`

	// Alphabetical orders the tags as strings.
	// +optional
	Alphabetical *AlphabeticalPolicy `json:"alphabetical,omitempty"`

	// Numerical orders the tags as numbers.
	// +optional
	Numerical *NumericalPolicy `json:"numerical,omitempty"`
}

// SemVerPolicy picks the highest version within a range.
type SemVerPolicy struct {
	// Range of versions, in Masterminds/semver syntax: "^1.x",
	// ">=1.0.0 <2.0.0", "5.0.x". The API server refuses a range that
	// does not parse; 512 is the semver library's own bound.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[[:space:]]*(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?(([[:space:]]*(,|[|][|])[[:space:]]*|[[:space:]]+)(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?)*[[:space:]]*$')",message="spec.policy.semver.range must be a semver range, such as >=1.0.0 <2.0.0, 1.2.x or ~1.2.3"
	Range string `json:"range"`
}

// AlphabeticalPolicy orders tags as strings.
type AlphabeticalPolicy struct {
	// Order: with asc the last tag in ascending order is the latest, with
	// desc the first.
	// +kubebuilder:validation:Enum=asc;desc
	// +kubebuilder:default:=asc
	// +optional
	Order string `json:"order,omitempty"`
}

// NumericalPolicy orders tags as numbers.
type NumericalPolicy struct {
	// Order: with asc the largest number is the latest, with desc the
	// smallest.
	// +kubebuilder:validation:Enum=asc;desc
	// +kubebuilder:default:=asc
	// +optional
	Order string `json:"order,omitempty"`
}

// TagFilter keeps the tags that match a pattern and extracts the part
// the policy orders by.
type TagFilter struct {
	// Pattern is a regular expression tags must match.
	// +optional
	Pattern string `json:"pattern,omitempty"`

	// Extract is the value ordered by, built from the pattern's groups,
	// as in "$ts"; the whole tag when empty.
	// +optional
	Extract string `json:"extract,omitempty"`
}

// ImagePolicyStatus is the tag the policy chose.
type ImagePolicyStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LatestRef is the image and tag chosen.
	// +optional
	LatestRef *ImageRef `json:"latestRef,omitempty"`

	// ObservedPreviousRef is the LatestRef before the last change.
	// +optional
	ObservedPreviousRef *ImageRef `json:"observedPreviousRef,omitempty"`

	// SkippedTags are tags passed over because a Canary failed them; a
	// tag is no longer skipped once a newer one is chosen.
	// +optional
	SkippedTags []string `json:"skippedTags,omitempty"`
}

// ImageRef is an image name with a tag and, when looked up, a digest.
type ImageRef struct {
	// Name of the image, without tag.
	Name string `json:"name"`

	// Tag of the image.
	Tag string `json:"tag"`

	// Digest of the tag's manifest, sha256:<hex>.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// String is name:tag, with @digest when known.
func (r ImageRef) String() string {
	s := r.Name + ":" + r.Tag
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// GetConditions returns the status conditions.
func (p *ImagePolicy) GetConditions() []metav1.Condition { return p.Status.Conditions }
