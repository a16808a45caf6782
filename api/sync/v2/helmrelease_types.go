package v2

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// Drift detection modes of a HelmRelease.
const (
	DriftDetectionEnabled  = "enabled"
	DriftDetectionWarn     = "warn"
	DriftDetectionDisabled = "disabled"
)

// Condition types of a HelmRelease besides Ready and the kstatus pair,
// in helm-controller's names.
const (
	// ReleasedCondition: the last install or upgrade succeeded.
	ReleasedCondition = "Released"
	// TestSuccessCondition: the chart's Helm tests passed.
	TestSuccessCondition = "TestSuccess"
	// RemediatedCondition: a failed release was rolled back or
	// uninstalled.
	RemediatedCondition = "Remediated"
	// DriftedCondition: the cluster differs from the release
	// (driftDetection.mode warn).
	DriftedCondition = "Drifted"
)

// Condition reasons of a HelmRelease, as in Flux.
const (
	ReasonInstallSucceeded   = "InstallSucceeded"
	ReasonInstallFailed      = "InstallFailed"
	ReasonUpgradeSucceeded   = "UpgradeSucceeded"
	ReasonUpgradeFailed      = "UpgradeFailed"
	ReasonTestSucceeded      = "TestSucceeded"
	ReasonTestFailed         = "TestFailed"
	ReasonRollbackSucceeded  = "RollbackSucceeded"
	ReasonRollbackFailed     = "RollbackFailed"
	ReasonUninstallSucceeded = "UninstallSucceeded"
	ReasonUninstallFailed    = "UninstallFailed"
	ReasonRetriesExceeded    = "RetriesExceeded"
	ReasonArtifactFailed     = "ArtifactFailed"
	ReasonValuesFailed       = "ValuesError"
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonInitFailed         = "InitFailed"
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonUnlocked           = "Unlocked"
	ReasonDriftDetected      = "DriftDetected"
	ReasonNoDrift            = "NoDriftDetected"
	ReasonDriftFailed        = "DriftDetectionFailed"
)

// Upgrade remediation strategies.
const (
	RemediationRollback  = "rollback"
	RemediationUninstall = "uninstall"
)

// HelmRelease installs a chart with the Helm SDK and keeps the release at
// the chart version and values it names, as Flux's helm-controller does:
// the releases are Helm's own, readable by the helm CLI.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hr,categories=all
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="has(self.spec.chart) != has(self.spec.chartRef)",message="exactly one of spec.chart and spec.chartRef must be set"
type HelmRelease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HelmReleaseSpec   `json:"spec"`
	Status HelmReleaseStatus `json:"status,omitempty"`
}

// HelmReleaseList is a list of HelmReleases.
//
// +kubebuilder:object:root=true
type HelmReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmRelease `json:"items"`
}

// HelmReleaseSpec is the chart, its values, and how to release it.
type HelmReleaseSpec struct {
	// Chart is a template for the HelmChart the controller makes, in the
	// source's namespace, named <namespace>-<name>.
	// +optional
	Chart *HelmChartTemplate `json:"chart,omitempty"`

	// ChartRef names an existing HelmChart.
	// +optional
	ChartRef *ChartReference `json:"chartRef,omitempty"`

	// Interval between two reconciles.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout of each Helm action; defaults to 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Suspend stops releasing.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// ReleaseName defaults to [<targetNamespace>-]<name>.
	// +kubebuilder:validation:MaxLength=53
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// TargetNamespace is where the release's objects go; defaults to the
	// HelmRelease's namespace.
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// StorageNamespace is where Helm keeps the release Secrets; defaults
	// to the target namespace.
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`

	// MaxHistory is the number of release revisions Helm keeps.
	// +kubebuilder:default=5
	// +optional
	MaxHistory *int `json:"maxHistory,omitempty"`

	// ServiceAccountName, in the HelmRelease's namespace, is impersonated
	// for every Helm action.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// DependsOn names HelmReleases that must be Ready first.
	// +optional
	DependsOn []syncv1.DependencyReference `json:"dependsOn,omitempty"`

	// Values are the chart's values, merged last.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Values *apiextensionsv1.JSON `json:"values,omitempty"`

	// ValuesFrom reads values from ConfigMaps and Secrets, merged in order
	// under Values.
	// +optional
	ValuesFrom []ValuesReference `json:"valuesFrom,omitempty"`

	// Install configures the first release.
	// +optional
	Install *Install `json:"install,omitempty"`

	// Upgrade configures the next ones.
	// +optional
	Upgrade *Upgrade `json:"upgrade,omitempty"`

	// Test runs the chart's Helm tests after each install and upgrade.
	// +optional
	Test *Test `json:"test,omitempty"`

	// Rollback configures rollbacks done as remediation.
	// +optional
	Rollback *Rollback `json:"rollback,omitempty"`

	// Uninstall configures uninstalls, on deletion and as remediation.
	// +optional
	Uninstall *Uninstall `json:"uninstall,omitempty"`

	// DriftDetection compares the cluster with the release.
	// +optional
	DriftDetection *DriftDetection `json:"driftDetection,omitempty"`

	// PostRenderers change the rendered manifests before they are
	// applied.
	// +optional
	PostRenderers []PostRenderer `json:"postRenderers,omitempty"`
}

// ChartReference names a HelmChart, or an OCIRepository holding a Helm
// chart stored as OCI.
type ChartReference struct {
	// Kind of the chart source.
	// +kubebuilder:validation:Enum=HelmChart;OCIRepository
	Kind string `json:"kind"`

	// Name of the HelmChart or OCIRepository.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the chart source; defaults to the HelmRelease's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// HelmChartTemplate is the spec of the HelmChart a HelmRelease makes.
type HelmChartTemplate struct {
	// Spec of the HelmChart.
	Spec HelmChartTemplateSpec `json:"spec"`
}

// HelmChartTemplateSpec mirrors HelmChart's spec, with a source that may
// be in another namespace.
type HelmChartTemplateSpec struct {
	// Chart is a name in a HelmRepository or a path in a GitRepository.
	// +kubebuilder:validation:MinLength=1
	Chart string `json:"chart"`

	// Version is a semver range.
	// +kubebuilder:default="*"
	// +optional
	Version string `json:"version,omitempty"`

	// SourceRef names the HelmRepository or GitRepository.
	SourceRef HelmChartSourceReference `json:"sourceRef"`

	// Interval of the HelmChart; defaults to the HelmRelease's.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// ReconcileStrategy is ChartVersion or Revision.
	// +kubebuilder:validation:Enum=ChartVersion;Revision
	// +kubebuilder:default=ChartVersion
	// +optional
	ReconcileStrategy string `json:"reconcileStrategy,omitempty"`

	// ValuesFiles, relative to the chart, are merged over values.yaml.
	// +optional
	ValuesFiles []string `json:"valuesFiles,omitempty"`
}

// HelmChartSourceReference names a chart source.
type HelmChartSourceReference struct {
	// APIVersion of the source.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the source.
	// +kubebuilder:validation:Enum=HelmRepository;GitRepository;Bucket
	Kind string `json:"kind"`

	// Name of the source.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the source; defaults to the HelmRelease's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ValuesReference names values in a ConfigMap or Secret.
type ValuesReference struct {
	// Kind is ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`

	// Name of the object, in the HelmRelease's namespace.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// ValuesKey is the key holding the values; defaults to values.yaml.
	// +optional
	ValuesKey string `json:"valuesKey,omitempty"`

	// TargetPath, when set, puts the key's whole content, as a string, at
	// this dotted path instead of merging it as YAML.
	// +optional
	TargetPath string `json:"targetPath,omitempty"`

	// Optional tolerates a missing object or key.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// Remediation says what to do after a failed install or upgrade.
type Remediation struct {
	// Retries is how many times a failed action is retried after being
	// remediated; negative retries forever.
	// +optional
	Retries int `json:"retries,omitempty"`

	// RemediateLastFailure remediates the failure that exhausts the
	// retries too; defaults to true when retries > 0.
	// +optional
	RemediateLastFailure *bool `json:"remediateLastFailure,omitempty"`

	// Strategy of an upgrade's remediation: rollback or uninstall.
	// +kubebuilder:validation:Enum=rollback;uninstall
	// +optional
	Strategy string `json:"strategy,omitempty"`

	// IgnoreTestFailures does not count failed tests as failures.
	// +optional
	IgnoreTestFailures bool `json:"ignoreTestFailures,omitempty"`
}

// Install configures helm install.
type Install struct {
	// Timeout of the install; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Remediation of a failed install: uninstall, then retry.
	// +optional
	Remediation *Remediation `json:"remediation,omitempty"`

	// CreateNamespace creates the target namespace.
	// +optional
	CreateNamespace bool `json:"createNamespace,omitempty"`

	// DisableWait does not wait for the objects to be ready.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// DisableHooks does not run the chart's hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// DisableOpenAPIValidation does not validate the rendered manifests
	// against the API server's OpenAPI schema.
	// +optional
	DisableOpenAPIValidation bool `json:"disableOpenAPIValidation,omitempty"`

	// DisableSchemaValidation does not validate the values against the
	// chart's values.schema.json.
	// +optional
	DisableSchemaValidation bool `json:"disableSchemaValidation,omitempty"`

	// DisableTakeOwnership refuses to adopt objects that exist but belong
	// to no release; by default they are taken over, as in Flux.
	// +optional
	DisableTakeOwnership bool `json:"disableTakeOwnership,omitempty"`

	// DisableWaitForJobs does not wait for Jobs to complete; by default a
	// wait includes them, as in Flux.
	// +optional
	DisableWaitForJobs bool `json:"disableWaitForJobs,omitempty"`

	// Replace reuses the name of a release that was uninstalled with its
	// history kept.
	// +optional
	Replace bool `json:"replace,omitempty"`

	// SkipCRDs does not install the chart's crds/ folder. Deprecated in
	// Flux for crds: Skip, which it means.
	// +optional
	SkipCRDs bool `json:"skipCRDs,omitempty"`

	// CRDs says what to do with the chart's crds/ folder on install:
	// Create (the default) or CreateReplace creates them, Skip leaves them.
	// +kubebuilder:validation:Enum=Skip;Create;CreateReplace
	// +optional
	CRDs string `json:"crds,omitempty"`
}

// Upgrade configures helm upgrade.
type Upgrade struct {
	// Timeout of the upgrade; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Remediation of a failed upgrade: rollback (default) or uninstall,
	// then retry.
	// +optional
	Remediation *Remediation `json:"remediation,omitempty"`

	// DisableWait does not wait for the objects to be ready.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// DisableHooks does not run the chart's hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// DisableOpenAPIValidation does not validate the rendered manifests
	// against the API server's OpenAPI schema.
	// +optional
	DisableOpenAPIValidation bool `json:"disableOpenAPIValidation,omitempty"`

	// DisableSchemaValidation does not validate the values against the
	// chart's values.schema.json.
	// +optional
	DisableSchemaValidation bool `json:"disableSchemaValidation,omitempty"`

	// DisableTakeOwnership refuses to adopt objects that exist but belong
	// to no release; by default they are taken over, as in Flux.
	// +optional
	DisableTakeOwnership bool `json:"disableTakeOwnership,omitempty"`

	// DisableWaitForJobs does not wait for Jobs to complete; by default a
	// wait includes them, as in Flux.
	// +optional
	DisableWaitForJobs bool `json:"disableWaitForJobs,omitempty"`

	// Force replaces objects that cannot be patched.
	// +optional
	Force bool `json:"force,omitempty"`

	// PreserveValues reuses the values of the last release, with the
	// HelmRelease's merged over them.
	// +optional
	PreserveValues bool `json:"preserveValues,omitempty"`

	// CleanupOnFail deletes the objects a failed upgrade created.
	// +optional
	CleanupOnFail bool `json:"cleanupOnFail,omitempty"`

	// CRDs says what to do with the chart's crds/ folder on upgrade: Skip
	// (the default, as Helm's upgrade does), Create (only the missing
	// ones) or CreateReplace (create and update them all).
	// +kubebuilder:validation:Enum=Skip;Create;CreateReplace
	// +optional
	CRDs string `json:"crds,omitempty"`
}

// Test configures helm test.
type Test struct {
	// Enable runs the tests after each install and upgrade.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// Timeout of the tests; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// IgnoreFailures reports failed tests without failing the release.
	// +optional
	IgnoreFailures bool `json:"ignoreFailures,omitempty"`
}

// Rollback configures helm rollback.
type Rollback struct {
	// Timeout of the rollback; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// DisableWait does not wait for the objects to be ready.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// DisableWaitForJobs does not wait for Jobs to complete.
	// +optional
	DisableWaitForJobs bool `json:"disableWaitForJobs,omitempty"`

	// DisableHooks does not run the chart's hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// Recreate restarted pods in Helm 3; Helm 4 has no such option, so it
	// is refused rather than ignored.
	// +kubebuilder:validation:XValidation:rule="!self",message="rollback.recreate is not supported: Helm 4 removed pod recreation on rollback"
	// +optional
	Recreate bool `json:"recreate,omitempty"`

	// Force replaces objects that cannot be patched.
	// +optional
	Force bool `json:"force,omitempty"`

	// CleanupOnFail deletes the objects a failed rollback created.
	// +optional
	CleanupOnFail bool `json:"cleanupOnFail,omitempty"`
}

// Uninstall configures helm uninstall.
type Uninstall struct {
	// Timeout of the uninstall; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// KeepHistory keeps the release records.
	// +optional
	KeepHistory bool `json:"keepHistory,omitempty"`

	// DisableHooks does not run the chart's hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// DisableWait does not wait for the objects to be deleted.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// DeletionPropagation is how dependents are deleted: background (the
	// default), foreground or orphan.
	// +kubebuilder:validation:Enum=background;foreground;orphan
	// +optional
	DeletionPropagation string `json:"deletionPropagation,omitempty"`
}

// DriftDetection configures the comparison of the cluster with the
// release.
type DriftDetection struct {
	// Mode is enabled (correct drift), warn (report it) or disabled.
	// +kubebuilder:validation:Enum=enabled;warn;disabled
	// +optional
	Mode string `json:"mode,omitempty"`
}

// PostRenderer changes rendered manifests.
type PostRenderer struct {
	// Kustomize applies patches and image overrides.
	// +optional
	Kustomize *KustomizePostRenderer `json:"kustomize,omitempty"`
}

// KustomizePostRenderer holds kustomize patches and images.
type KustomizePostRenderer struct {
	// +optional
	Patches []syncv1.Patch `json:"patches,omitempty"`
	// +optional
	Images []syncv1.Image `json:"images,omitempty"`
}

// HelmReleaseStatus is what the last reconcile did.
type HelmReleaseStatus struct {
	// ObservedGeneration is the generation the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling, Stalled, Released, TestSuccess,
	// Remediated, Drifted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// HelmChart is the namespace/name of the HelmChart used.
	// +optional
	HelmChart string `json:"helmChart,omitempty"`

	// StorageNamespace is where the release records are.
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`

	// History holds the latest release revisions, newest first.
	// +optional
	History []Snapshot `json:"history,omitempty"`

	// LastAttemptedRevision is the chart version last tried.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// LastAttemptedValuesChecksum is the sha256 of the values last tried.
	// +optional
	LastAttemptedValuesChecksum string `json:"lastAttemptedValuesChecksum,omitempty"`

	// LastAttemptedReleaseAction is install or upgrade.
	// +optional
	LastAttemptedReleaseAction string `json:"lastAttemptedReleaseAction,omitempty"`

	// InstallFailures counts failed installs of the attempted revision.
	// +optional
	InstallFailures int64 `json:"installFailures,omitempty"`

	// UpgradeFailures counts failed upgrades of the attempted revision.
	// +optional
	UpgradeFailures int64 `json:"upgradeFailures,omitempty"`

	// LastHandledReconcileAt is the last reconcile request annotation
	// value acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// Snapshot is one release revision, as Helm stores it.
type Snapshot struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Status    string `json:"status"`
	// +optional
	ChartName string `json:"chartName,omitempty"`
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`
	// +optional
	AppVersion string `json:"appVersion,omitempty"`
	// ConfigDigest is the sha256 of the release's values.
	// +optional
	ConfigDigest string `json:"configDigest,omitempty"`
	// +optional
	FirstDeployed metav1.Time `json:"firstDeployed,omitempty"`
	// +optional
	LastDeployed metav1.Time `json:"lastDeployed,omitempty"`
	// TestHooks are the test hooks run and their last phase.
	// +optional
	TestHooks map[string]string `json:"testHooks,omitempty"`
}

// GetConditions returns the status conditions.
func (r *HelmRelease) GetConditions() []metav1.Condition { return r.Status.Conditions }
