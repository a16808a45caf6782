package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kustomization builds a path of a source with kustomize and applies the
// result with server-side apply, at an interval.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ks,categories=all
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Kustomization struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KustomizationSpec   `json:"spec"`
	Status KustomizationStatus `json:"status,omitempty"`
}

// KustomizationList is a list of Kustomizations.
//
// +kubebuilder:object:root=true
type KustomizationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Kustomization `json:"items"`
}

// KustomizationSpec is what to build, from where, and how to apply it.
type KustomizationSpec struct {
	// SourceRef names the source whose artifact is built.
	SourceRef CrossNamespaceSourceReference `json:"sourceRef"`

	// Path in the artifact; defaults to its root.
	// +optional
	Path string `json:"path,omitempty"`

	// Interval between two applies.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// RetryInterval is the interval after a failure; defaults to Interval.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	RetryInterval *metav1.Duration `json:"retryInterval,omitempty"`

	// Timeout of the apply and of the health wait; defaults to Interval.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Prune deletes what a previous apply made and the source no longer
	// has.
	Prune bool `json:"prune"`

	// DeletionPolicy says what the Kustomization's deletion does to what
	// it applied: MirrorPrune (the default) deletes it when prune is
	// set, Delete always deletes it, WaitForTermination deletes it and
	// waits until it is gone, Orphan leaves it. A suspended
	// Kustomization leaves it too, as in Flux.
	// +kubebuilder:validation:Enum=MirrorPrune;Delete;WaitForTermination;Orphan
	// +optional
	DeletionPolicy string `json:"deletionPolicy,omitempty"`

	// Wait waits for every applied object to be healthy (kstatus).
	// +optional
	Wait bool `json:"wait,omitempty"`

	// Force recreates objects whose immutable fields changed.
	// +optional
	Force bool `json:"force,omitempty"`

	// Suspend stops applying.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// TargetNamespace sets the namespace of every namespaced object.
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// Patches are strategic merge or JSON 6902 patches with targets.
	// +optional
	Patches []Patch `json:"patches,omitempty"`

	// Images override image names, tags and digests.
	// +optional
	Images []Image `json:"images,omitempty"`

	// Components are kustomize components, relative to Path.
	// +optional
	Components []string `json:"components,omitempty"`

	// IgnoreMissingComponents drops the Components that the source does
	// not have, instead of failing the build.
	// +optional
	IgnoreMissingComponents bool `json:"ignoreMissingComponents,omitempty"`

	// BuildMetadata adds kustomize's build metadata to the built objects:
	// originAnnotations (config.kubernetes.io/origin, the file each came
	// from) and transformerAnnotations (which transformers changed it).
	// +optional
	BuildMetadata []BuildMetadataOption `json:"buildMetadata,omitempty"`

	// Ignore lists JSON pointer paths that the apply neither corrects nor
	// counts as drift, for the objects its target selects (all when it
	// has none): a field another manager owns is left to it, and one
	// changed by an update is kept as it is in the cluster.
	// +optional
	Ignore []IgnoreRule `json:"ignore,omitempty"`

	// NamePrefix is prepended to the names of the built objects.
	// +kubebuilder:validation:MaxLength=200
	// +optional
	NamePrefix string `json:"namePrefix,omitempty"`

	// NameSuffix is appended to the names of the built objects.
	// +kubebuilder:validation:MaxLength=200
	// +optional
	NameSuffix string `json:"nameSuffix,omitempty"`

	// CommonMetadata sets labels and annotations on every built object,
	// leaving selectors alone.
	// +optional
	CommonMetadata *CommonMetadata `json:"commonMetadata,omitempty"`

	// DependsOn names Kustomizations that must be Ready first.
	// +optional
	DependsOn []DependencyReference `json:"dependsOn,omitempty"`

	// PostBuild substitutes variables in the built objects.
	// +optional
	PostBuild *PostBuild `json:"postBuild,omitempty"`

	// Decryption decrypts SOPS-encrypted objects, and the files that
	// kustomize generators read, before they are applied.
	// +optional
	Decryption *Decryption `json:"decryption,omitempty"`

	// HealthChecks are objects, applied here or not, that must be healthy
	// (kstatus) before the Kustomization is Ready.
	// +optional
	HealthChecks []NamespacedObjectKindReference `json:"healthChecks,omitempty"`

	// HealthCheckExprs judge the health of the objects of a kind with CEL
	// expressions in place of kstatus, for the objects waited for (wait,
	// healthChecks), as Flux's do.
	// +optional
	HealthCheckExprs []CustomHealthCheck `json:"healthCheckExprs,omitempty"`

	// ServiceAccountName, in the Kustomization's namespace, is
	// impersonated to apply, prune and check health, so a tenant can
	// apply only what its account's RBAC allows. Empty means the
	// operator's own account, or its --default-service-account.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// KubeConfig applies to a remote cluster: the apply, the prune, the
	// health checks and the deletion go there, as ServiceAccountName (or
	// --default-service-account) impersonated on that cluster when set.
	// +optional
	KubeConfig *KubeConfigReference `json:"kubeConfig,omitempty"`
}

// NamespacedObjectKindReference names an object by API version, kind,
// name and namespace.
type NamespacedObjectKindReference struct {
	// APIVersion of the object, such as apps/v1.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the object.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`

	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the object; defaults to the Kustomization's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CrossNamespaceSourceReference names a source.
type CrossNamespaceSourceReference struct {
	// APIVersion of the source, as Flux writes it; the Kind decides.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the source.
	// +kubebuilder:validation:Enum=GitRepository;OCIRepository;Bucket
	Kind string `json:"kind"`

	// Name of the source.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the source; defaults to the Kustomization's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// DependencyReference names a Kustomization.
type DependencyReference struct {
	// Name of the Kustomization.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the Kustomization; defaults to this one's.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// ReadyExpr is a CEL expression over self (the object that depends)
	// and dep (the dependency) that decides whether the dependency is
	// ready, in place of its Ready condition, as Flux's does.
	// +optional
	ReadyExpr string `json:"readyExpr,omitempty"`
}

// CustomHealthCheck judges the health of the objects of one kind with
// CEL expressions, as Flux's healthCheckExprs entry does. Each expression
// sees the object's top-level fields (apiVersion, kind, metadata, spec,
// status) as its variables. They are tried in the order inProgress,
// failed, current; the first true one decides, and when none is, or
// status.observedGeneration lags metadata.generation, the object is in
// progress.
type CustomHealthCheck struct {
	// APIVersion of the objects, such as example.com/v1.
	// +kubebuilder:validation:Pattern="^([^/]+/)?[^/]+$"
	APIVersion string `json:"apiVersion"`

	// Kind of the objects; empty means every kind of the group, below an
	// entry that names the kind.
	// +optional
	Kind string `json:"kind,omitempty"`

	// Current is true when an object is healthy.
	// +kubebuilder:validation:MinLength=1
	Current string `json:"current"`

	// InProgress is true when an object is still on its way.
	// +optional
	InProgress string `json:"inProgress,omitempty"`

	// Failed is true when an object failed: waiting longer will not help.
	// +optional
	Failed string `json:"failed,omitempty"`
}

// PostBuild holds the variables of the substitution.
type PostBuild struct {
	// Substitute maps variable names to values.
	// +optional
	Substitute map[string]string `json:"substitute,omitempty"`

	// SubstituteFrom reads variables from ConfigMaps and Secrets, in
	// order; Substitute wins over them.
	// +optional
	SubstituteFrom []SubstituteReference `json:"substituteFrom,omitempty"`

	// SubstituteStrategy is WithVariables (the default), which substitutes
	// only when some variable is defined, or Always, so that
	// ${var:=default} works with no variables.
	// +kubebuilder:validation:Enum=WithVariables;Always
	// +optional
	SubstituteStrategy string `json:"substituteStrategy,omitempty"`
}

// The values of PostBuild.SubstituteStrategy.
const (
	SubstituteWithVariables = "WithVariables"
	SubstituteAlways        = "Always"
)

// BuildMetadataOption is one of kustomize's buildMetadata options.
// +kubebuilder:validation:Enum=originAnnotations;transformerAnnotations
type BuildMetadataOption string

// IgnoreRule leaves JSON pointer paths of the selected objects out of the
// apply and of drift, as Flux's spec.ignore entries do.
type IgnoreRule struct {
	// Paths are RFC 6901 JSON pointers, such as /spec/replicas.
	// +kubebuilder:validation:MinItems=1
	Paths []string `json:"paths"`

	// Target selects the objects; none selects all.
	// +optional
	Target *Selector `json:"target,omitempty"`
}

// SubstituteReference names a ConfigMap or Secret of variables.
type SubstituteReference struct {
	// Kind is ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`

	// Name of the object, in the Kustomization's namespace.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Optional tolerates a missing object.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// DecryptionProviderSOPS is the only decryption provider, as in Flux.
const DecryptionProviderSOPS = "sops"

// Decryption says how to decrypt SOPS-encrypted manifests, as Flux's
// spec.decryption does, with keys held in a Secret.
type Decryption struct {
	// Provider of the decryption; only sops.
	// +kubebuilder:validation:Enum=sops
	Provider string `json:"provider"`

	// ServiceAccountName is Flux's identity for cloud KMS services. It is
	// refused: Sluice decrypts only with the age and OpenPGP keys of
	// SecretRef.
	// +kubebuilder:validation:XValidation:rule="self == ''",message="decryption.serviceAccountName: cloud KMS workload identity is not supported; put age or OpenPGP keys in the Secret of decryption.secretRef"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// SecretRef names a Secret, in the Kustomization's namespace, whose
	// entries ending in .agekey hold age identities and those ending in
	// .asc armored OpenPGP private keys.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// KustomizationStatus is what the last apply did.
type KustomizationStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastAppliedRevision is the source revision last applied whole.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`

	// LastAttemptedRevision is the source revision last tried.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// Inventory lists the objects the last apply made.
	// +optional
	Inventory *ResourceInventory `json:"inventory,omitempty"`

	// LastHandledReconcileAt is the last reconcile request annotation
	// value acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// LastAppliedOriginRevision is the origin revision of the last
	// artifact applied: for an OCI artifact, its
	// org.opencontainers.image.revision annotation.
	// +optional
	LastAppliedOriginRevision string `json:"lastAppliedOriginRevision,omitempty"`

	// History holds the last reconciliations, most recent first.
	// +optional
	History History `json:"history,omitempty"`
}

// ResourceInventory lists applied objects, as Flux's does.
type ResourceInventory struct {
	// Entries are the objects, by id and API version.
	Entries []ResourceRef `json:"entries"`
}

// ResourceRef is one applied object: Flux's id
// (<namespace>_<name>_<group>_<kind>) and its version.
type ResourceRef struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

// Patch is a strategic merge or JSON 6902 patch and the objects it
// applies to.
type Patch struct {
	// Patch is the patch, YAML or JSON.
	// +kubebuilder:validation:MinLength=1
	Patch string `json:"patch"`

	// Target selects the objects; empty selects by the patch's own kind
	// and name.
	// +optional
	Target *Selector `json:"target,omitempty"`
}

// Selector selects objects by group, version, kind, name, namespace and
// selectors.
type Selector struct {
	// +optional
	Group string `json:"group,omitempty"`
	// +optional
	Version string `json:"version,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	AnnotationSelector string `json:"annotationSelector,omitempty"`
	// +optional
	LabelSelector string `json:"labelSelector,omitempty"`
}

// Image overrides an image's name, tag or digest.
type Image struct {
	// Name of the image to override.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	NewName string `json:"newName,omitempty"`
	// +optional
	NewTag string `json:"newTag,omitempty"`
	// +optional
	Digest string `json:"digest,omitempty"`
}

// GetConditions returns the status conditions.
func (k *Kustomization) GetConditions() []metav1.Condition { return k.Status.Conditions }

// CommonMetadata is what Kustomization commonMetadata sets on every
// object.
type CommonMetadata struct {
	// Labels to add.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations to add.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Deletion policies of a Kustomization, as in Flux.
const (
	DeletionPolicyMirrorPrune        = "MirrorPrune"
	DeletionPolicyDelete             = "Delete"
	DeletionPolicyWaitForTermination = "WaitForTermination"
	DeletionPolicyOrphan             = "Orphan"
)

// KustomizationFinalizer holds a Kustomization's deletion until what it
// applied is deleted as its deletionPolicy says.
const KustomizationFinalizer = "finalizers.sync.sluice.dev"
