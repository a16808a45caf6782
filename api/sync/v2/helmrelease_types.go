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
	// ReasonUninstallSkipped: a deleted HelmRelease went without its
	// release uninstalled, because what the uninstall needs (the
	// kubeConfig Secret, the ServiceAccount) is gone, as Flux lets it go.
	ReasonUninstallSkipped   = "UninstallSkipped"
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
	// ReasonRESTClientError is a spec.kubeConfig that gives no client
	// of the remote cluster, helm-controller's reason.
	ReasonRESTClientError = "RESTClientError"
	// ReasonInvalidCELExpression is an expression of spec.healthCheckExprs
	// or spec.dependsOn[].readyExpr that does not compile; nothing is
	// released until the spec changes.
	ReasonInvalidCELExpression = "InvalidCELExpression"
)

// DriftDetectionMetadataKey, as a label or an annotation of a rendered
// object with the value DriftDetectionDisabledValue, keeps that object
// out of drift detection and correction, as in Flux.
const (
	DriftDetectionMetadataKey   = "helm.toolkit.fluxcd.io/driftDetection"
	DriftDetectionDisabledValue = "disabled"
)

// Annotations that ask a HelmRelease for a one-off action, as in Flux.
// Each is acted on once, when its value equals the
// reconcile.fluxcd.io/requestedAt annotation's and differs from the
// value last handled (status.lastHandledForceAt, lastHandledResetAt).
const (
	// ForceRequestAnnotation forces one install or upgrade though nothing
	// changed.
	ForceRequestAnnotation = "reconcile.fluxcd.io/forceAt"
	// ResetRequestAnnotation resets the failure counters, so a release
	// whose retries are spent is tried again.
	ResetRequestAnnotation = "reconcile.fluxcd.io/resetAt"
)

// Strategies of install.strategy and upgrade.strategy, as in Flux.
const (
	// StrategyRemediateOnFailure remediates a failure as
	// install.remediation or upgrade.remediation says (the default).
	StrategyRemediateOnFailure = "RemediateOnFailure"
	// StrategyRetryOnFailure never rolls back or uninstalls: a failed
	// action is retried, with an upgrade, every retryInterval.
	StrategyRetryOnFailure = "RetryOnFailure"
)

// Upgrade remediation strategies.
const (
	RemediationRollback  = "rollback"
	RemediationUninstall = "uninstall"
)

// Server-side apply modes of upgrade.serverSideApply and
// rollback.serverSideApply, as in Flux.
const (
	// ServerSideApplyEnabled applies with server-side apply.
	ServerSideApplyEnabled = "enabled"
	// ServerSideApplyDisabled applies client-side, with a three-way merge.
	ServerSideApplyDisabled = "disabled"
	// ServerSideApplyAuto applies as the release was last applied (the
	// default): an upgrade as the latest revision, a rollback as the
	// revision it returns to.
	ServerSideApplyAuto = "auto"
)

// Post-render strategies of spec.postRenderStrategy, Helm 4's.
const (
	// PostRenderStrategyNoHooks leaves the hooks out of the post-renderers
	// (Helm 3's behaviour).
	PostRenderStrategyNoHooks = "nohooks"
	// PostRenderStrategyCombined post-renders the hooks with the other
	// templates, in one stream (the default).
	PostRenderStrategyCombined = "combined"
	// PostRenderStrategySeparate post-renders the hooks and the other
	// templates in two streams.
	PostRenderStrategySeparate = "separate"
)

// Wait strategies of spec.waitStrategy.name, as in Flux.
const (
	// WaitStrategyPoller waits with kstatus, and with
	// spec.healthCheckExprs (the default).
	WaitStrategyPoller = "poller"
	// WaitStrategyLegacy is Helm 3's wait, which ignores
	// spec.healthCheckExprs.
	WaitStrategyLegacy = "legacy"
)

// Policies of install.crds and upgrade.crds for the chart's crds/
// folder, as in Flux.
const (
	// CRDsSkip leaves the CRDs alone.
	CRDsSkip = "Skip"
	// CRDsCreate creates the CRDs that are missing and leaves the others.
	CRDsCreate = "Create"
	// CRDsCreateReplace creates the missing CRDs and updates the others.
	CRDsCreateReplace = "CreateReplace"
)

// Strategies of upgrade.chartNameChangeStrategy, as in Flux.
const (
	// ChartNameChangeReinstall uninstalls the release and installs the
	// chart of the new name (the default).
	ChartNameChangeReinstall = "Reinstall"
	// ChartNameChangeInPlaceUpdate upgrades the release to the chart of
	// the new name.
	ChartNameChangeInPlaceUpdate = "InPlaceUpdate"
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

	// ReleaseName defaults to [<targetNamespace>-]<name>, shortened as
	// Flux shortens it when longer than 53 characters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=53
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// TargetNamespace is where the release's objects go; defaults to the
	// HelmRelease's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// StorageNamespace is where Helm keeps the release Secrets; defaults
	// to the HelmRelease's namespace, wherever targetNamespace puts the
	// objects, as in Flux.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`

	// MaxHistory is the number of release revisions Helm keeps, and
	// status.history shows; 0 keeps every revision in Helm's storage, and
	// status.history then shows the newest 5, as Flux's does.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxHistory *int `json:"maxHistory,omitempty"`

	// ServiceAccountName, in the HelmRelease's namespace, is impersonated
	// for every Helm action.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// KubeConfig releases to a remote cluster: Helm's storage, every
	// action, the wait, drift detection and the uninstall go there, as
	// ServiceAccountName impersonated on that cluster when set.
	// +optional
	KubeConfig *syncv1.KubeConfigReference `json:"kubeConfig,omitempty"`

	// DependsOn names HelmReleases that must be Ready first.
	// +optional
	DependsOn []syncv1.DependencyReference `json:"dependsOn,omitempty"`

	// HealthCheckExprs judge the health of the released objects of a kind
	// with CEL expressions in place of kstatus, in the wait after an
	// install or upgrade, as Flux's do.
	// +optional
	HealthCheckExprs []syncv1.CustomHealthCheck `json:"healthCheckExprs,omitempty"`

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

	// CommonMetadata sets labels and annotations on every object the
	// release renders, after the post-renderers, overriding the chart's
	// where a key is the same; selectors and pod templates are left alone.
	// +optional
	CommonMetadata *syncv1.CommonMetadata `json:"commonMetadata,omitempty"`

	// PersistentClient is accepted for Flux compatibility and has no
	// effect: Sluice always keeps one client, with its discovery, per
	// identity (Flux's default, true), and a failed RESTMapping looks the
	// API up again, so CRDs a chart creates are found either way.
	// +optional
	PersistentClient *bool `json:"persistentClient,omitempty"`

	// PostRenderers change the rendered manifests before they are
	// applied.
	// +optional
	PostRenderers []PostRenderer `json:"postRenderers,omitempty"`

	// PostRenderStrategy says how the chart's hooks reach the
	// post-renderers (and commonMetadata): nohooks leaves them out (Helm
	// 3's behaviour), combined (the default, Helm 4's) renders them with
	// the other templates, separate renders them in a stream of their
	// own.
	// +kubebuilder:validation:Enum=nohooks;combined;separate
	// +optional
	PostRenderStrategy string `json:"postRenderStrategy,omitempty"`

	// WaitStrategy is how the Helm actions wait for the released objects.
	// +optional
	WaitStrategy *WaitStrategy `json:"waitStrategy,omitempty"`
}

// WaitStrategy is Helm's wait for the objects of an action.
type WaitStrategy struct {
	// Name is poller (the default), which waits with kstatus and
	// spec.healthCheckExprs, or legacy, Helm 3's wait, which ignores
	// spec.healthCheckExprs.
	// +kubebuilder:validation:Enum=poller;legacy
	Name string `json:"name"`
}

// ChartReference names a HelmChart, or an OCIRepository holding a Helm
// chart stored as OCI.
type ChartReference struct {
	// APIVersion of the chart source; accepted and ignored, as in Flux:
	// the kind decides.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

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
	// ObjectMeta holds labels and annotations set on the HelmChart.
	// +optional
	ObjectMeta *HelmChartTemplateObjectMeta `json:"metadata,omitempty"`

	// Spec of the HelmChart.
	Spec HelmChartTemplateSpec `json:"spec"`
}

// HelmChartTemplateObjectMeta is the metadata of the HelmChart a
// HelmRelease makes.
type HelmChartTemplateObjectMeta struct {
	// Labels set on the HelmChart, beside the owner labels.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations set on the HelmChart.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// HelmChartTemplateSpec mirrors HelmChart's spec, with a source that may
// be in another namespace.
//
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",message="spec.chart.spec.verify is only supported when spec.chart.spec.sourceRef.kind is 'HelmRepository', as the HelmChart's spec.verify",fieldPath=".verify"
// +kubebuilder:validation:XValidation:rule="self.sourceRef.kind != 'HelmRepository' || !has(self.version) || size(self.version) == 0 || self.version.matches('^[[:space:]]*(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?(([[:space:]]*(,|[|][|])[[:space:]]*|[[:space:]]+)(!=|>=|=>|<=|=<|~>|[=<>~^])?[[:space:]]*v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?([[:space:]]+-[[:space:]]+v?[0-9xX*]+([.][0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)?)*[[:space:]]*$')",message="spec.chart.spec.version must be a semver range, such as 6.x, >=6.0.0 <7.0.0 or 6.5.0",fieldPath=".version"
type HelmChartTemplateSpec struct {
	// Chart is a name in a HelmRepository or a path in a GitRepository.
	// +kubebuilder:validation:MinLength=1
	Chart string `json:"chart"`

	// Version is a semver range over a HelmRepository's versions; the API
	// server refuses one that does not parse (see the type's rule), and
	// 512 is the semver library's own bound.
	// +kubebuilder:default="*"
	// +kubebuilder:validation:MaxLength=512
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

	// ValuesFiles replace the chart's values.yaml, merged in order, as in
	// Flux: values.yaml counts only when listed. A path is relative to
	// the chart in a HelmRepository, and to the root of a GitRepository's
	// or Bucket's artifact (then to the chart, for one the root lacks).
	// +optional
	ValuesFiles []string `json:"valuesFiles,omitempty"`

	// ValuesFile is deprecated in Flux for ValuesFiles: merged before
	// them.
	// +optional
	ValuesFile string `json:"valuesFile,omitempty"`

	// IgnoreMissingValuesFiles skips values files the source does not
	// hold instead of failing.
	// +optional
	IgnoreMissingValuesFiles bool `json:"ignoreMissingValuesFiles,omitempty"`

	// Verify is copied to the HelmChart's spec.verify: the signature of
	// a chart from an OCI HelmRepository is checked before it is stored.
	// +optional
	Verify *HelmChartTemplateVerification `json:"verify,omitempty"`
}

// HelmChartTemplateVerification says how the HelmChart checks the
// chart's signature.
//
// +kubebuilder:validation:XValidation:rule="self.provider != 'notation' || has(self.secretRef)",message="spec.chart.spec.verify.secretRef is required with provider notation: its Secret holds trustpolicy.json and the CA certificates",fieldPath=".secretRef"
type HelmChartTemplateVerification struct {
	// Provider is cosign or notation.
	// +kubebuilder:validation:Enum=cosign;notation
	// +kubebuilder:default=cosign
	Provider string `json:"provider"`

	// SecretRef names a Secret in the HelmChart's namespace with the
	// trusted keys (cosign *.pub) or trustpolicy.json and CA
	// certificates (notation); without it cosign verifies keyless
	// signatures against the public Sigstore root.
	// +optional
	SecretRef *syncv1.LocalObjectReference `json:"secretRef,omitempty"`
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

	// TargetPath, when set, puts the key's whole content at this dotted
	// path, as helm --set path=content does (a quoted content is a
	// string), instead of merging it as YAML.
	// +kubebuilder:validation:MaxLength=250
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$`
	// +optional
	TargetPath string `json:"targetPath,omitempty"`

	// Optional tolerates a missing object or key.
	// +optional
	Optional bool `json:"optional,omitempty"`

	// Literal, with TargetPath, sets the content at the path verbatim, as
	// helm --set-literal does: commas, brackets, braces, equal signs and
	// backslashes are kept, not read as --set syntax. Without TargetPath
	// it has no effect.
	// +optional
	Literal bool `json:"literal,omitempty"`
}

// InstallRemediation says what to do after a failed install: uninstall
// it, as Flux's install remediation always does, and retry. It has no
// strategy, as in Flux, so the API server refuses
// spec.install.remediation.strategy under strict field validation.
type InstallRemediation struct {
	// Retries is how many times a failed install is retried after being
	// uninstalled; negative retries forever.
	// +optional
	Retries int `json:"retries,omitempty"`

	// RemediateLastFailure uninstalls the failure that exhausts the
	// retries too; false by default, as in Flux.
	// +optional
	RemediateLastFailure *bool `json:"remediateLastFailure,omitempty"`

	// IgnoreTestFailures does not count failed tests as failures of the
	// install; defaults to test.ignoreFailures.
	// +optional
	IgnoreTestFailures *bool `json:"ignoreTestFailures,omitempty"`
}

// UpgradeRemediation says what to do after a failed upgrade.
type UpgradeRemediation struct {
	// Retries is how many times a failed upgrade is retried after being
	// remediated; negative retries forever.
	// +optional
	Retries int `json:"retries,omitempty"`

	// RemediateLastFailure remediates the failure that exhausts the
	// retries too; true by default when retries > 0, as in Flux.
	// +optional
	RemediateLastFailure *bool `json:"remediateLastFailure,omitempty"`

	// Strategy of the remediation: rollback (the default) or uninstall.
	// +kubebuilder:validation:Enum=rollback;uninstall
	// +optional
	Strategy string `json:"strategy,omitempty"`

	// IgnoreTestFailures does not count failed tests as failures of the
	// upgrade; defaults to test.ignoreFailures.
	// +optional
	IgnoreTestFailures *bool `json:"ignoreTestFailures,omitempty"`
}

// ActionStrategy is install.strategy or upgrade.strategy.
//
// +kubebuilder:validation:XValidation:rule="self.name == 'RetryOnFailure' || !has(self.retryInterval)",message="retryInterval is only used with the RetryOnFailure strategy",fieldPath=".retryInterval"
type ActionStrategy struct {
	// Name is RemediateOnFailure or RetryOnFailure.
	// +kubebuilder:validation:Enum=RemediateOnFailure;RetryOnFailure
	Name string `json:"name"`

	// RetryInterval is how long RetryOnFailure waits before retrying a
	// failed release; defaults to 5m, as in Flux.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	RetryInterval *metav1.Duration `json:"retryInterval,omitempty"`
}

// ActionOptions are the switches that install and upgrade share, under
// the same names, inlined into each.
type ActionOptions struct {
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
}

// Install configures helm install.
type Install struct {
	// Timeout of the install; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Strategy says what a failed install leads to: RemediateOnFailure
	// (the default) follows remediation; RetryOnFailure leaves the failed
	// release in place and retries it with an upgrade every
	// retryInterval, without limit.
	// +optional
	Strategy *ActionStrategy `json:"strategy,omitempty"`

	// Remediation of a failed install: uninstall, then retry.
	// +optional
	Remediation *InstallRemediation `json:"remediation,omitempty"`

	// CreateNamespace creates the target namespace.
	// +optional
	CreateNamespace bool `json:"createNamespace,omitempty"`

	// ActionOptions are the switches install and upgrade share.
	ActionOptions `json:",inline"`

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

	// ServerSideApply applies the objects with server-side apply, forcing
	// conflicts with other field managers; true when unset, as in Flux.
	// False applies them client-side, with a three-way merge.
	// +optional
	ServerSideApply *bool `json:"serverSideApply,omitempty"`
}

// Upgrade configures helm upgrade.
type Upgrade struct {
	// Timeout of the upgrade; defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Strategy says what a failed upgrade leads to: RemediateOnFailure
	// (the default) follows remediation; RetryOnFailure never rolls back
	// or uninstalls, and retries the upgrade every retryInterval, without
	// limit.
	// +optional
	Strategy *ActionStrategy `json:"strategy,omitempty"`

	// Remediation of a failed upgrade: rollback (default) or uninstall,
	// then retry.
	// +optional
	Remediation *UpgradeRemediation `json:"remediation,omitempty"`

	// ActionOptions are the switches install and upgrade share.
	ActionOptions `json:",inline"`

	// Force replaces objects that cannot be patched, when the upgrade
	// applies client-side; server-side apply forces conflicts anyway.
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

	// ServerSideApply is enabled, disabled, or auto (the default), which
	// applies as the latest revision was applied. Server-side apply
	// forces conflicts with other field managers, and Force then has no
	// effect.
	// +kubebuilder:validation:Enum=enabled;disabled;auto
	// +optional
	ServerSideApply string `json:"serverSideApply,omitempty"`

	// ChartNameChangeStrategy says what a chart whose name (in Chart.yaml)
	// differs from the released one's leads to: Reinstall (the default)
	// uninstalls the release and installs the new chart, InPlaceUpdate
	// upgrades the release to it.
	// +kubebuilder:validation:Enum=InPlaceUpdate;Reinstall
	// +optional
	ChartNameChangeStrategy string `json:"chartNameChangeStrategy,omitempty"`
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

	// Filters pick the tests by name: with any filter that is not an
	// exclusion, only those named run; exclusions never run.
	// +optional
	Filters []TestFilter `json:"filters,omitempty"`
}

// TestFilter names a test hook to run, or with Exclude, to skip.
type TestFilter struct {
	// Name of the test hook.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Exclude skips the named test.
	// +optional
	Exclude bool `json:"exclude,omitempty"`
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

	// Recreate restarted pods in Helm 3. Helm 4 has no such option, and
	// since Flux v2.8 it is accepted and has no effect; so here.
	// +optional
	Recreate bool `json:"recreate,omitempty"`

	// Force replaces objects that cannot be patched, when the rollback
	// applies client-side; server-side apply forces conflicts anyway.
	// +optional
	Force bool `json:"force,omitempty"`

	// CleanupOnFail deletes the objects a failed rollback created.
	// +optional
	CleanupOnFail bool `json:"cleanupOnFail,omitempty"`

	// ServerSideApply is enabled, disabled, or auto (the default), which
	// applies as the revision rolled back to was applied. Server-side
	// apply forces conflicts with other field managers, and Force then
	// has no effect.
	// +kubebuilder:validation:Enum=enabled;disabled;auto
	// +optional
	ServerSideApply string `json:"serverSideApply,omitempty"`
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

	// Ignore leaves fields out of the comparison and of the correction:
	// the JSON pointers of paths, on the objects target selects (all of
	// the release's when unset), as a Kustomization's spec.ignore does.
	// +optional
	Ignore []syncv1.IgnoreRule `json:"ignore,omitempty"`
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

	// StorageNamespace is where the release records are: the storage
	// namespace the history was released to.
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`

	// History holds the latest release revisions, newest first.
	// +optional
	History []Snapshot `json:"history,omitempty"`

	// LastAttemptedRevision is the chart version last tried.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// LastAttemptedValuesChecksum is deprecated in Flux for
	// lastAttemptedConfigDigest, and left empty, as Flux leaves it.
	// +optional
	LastAttemptedValuesChecksum string `json:"lastAttemptedValuesChecksum,omitempty"`

	// LastAttemptedConfigDigest is the digest of the values last tried,
	// sha256:<hex> of their canonical JSON; a change resets the failure
	// counters.
	// +optional
	LastAttemptedConfigDigest string `json:"lastAttemptedConfigDigest,omitempty"`

	// LastAttemptedRevisionDigest is the manifest digest of the OCI
	// artifact last tried, for a chartRef of kind OCIRepository.
	// +optional
	LastAttemptedRevisionDigest string `json:"lastAttemptedRevisionDigest,omitempty"`

	// LastAttemptedGeneration is the generation of the last install or
	// upgrade attempt.
	// +optional
	LastAttemptedGeneration int64 `json:"lastAttemptedGeneration,omitempty"`

	// ObservedPostRenderersDigest is the digest of spec.postRenderers
	// (and spec.commonMetadata) of the last successful install or
	// upgrade: when they change, the release is upgraded.
	// +optional
	ObservedPostRenderersDigest string `json:"observedPostRenderersDigest,omitempty"`

	// LastAttemptedReleaseAction is install or upgrade.
	// +optional
	LastAttemptedReleaseAction string `json:"lastAttemptedReleaseAction,omitempty"`

	// InstallFailures counts failed installs of the attempted revision.
	// +optional
	InstallFailures int64 `json:"installFailures,omitempty"`

	// UpgradeFailures counts failed upgrades of the attempted revision.
	// +optional
	UpgradeFailures int64 `json:"upgradeFailures,omitempty"`

	// Failures counts every failed Helm action (install, upgrade, test,
	// rollback, uninstall) against the latest desired state: it starts
	// again, with installFailures and upgradeFailures, when the spec, the
	// chart or the values change, when a resetAt request is handled, and
	// when the release target changes.
	// +optional
	Failures int64 `json:"failures,omitempty"`

	// LastHandledForceAt is the last reconcile.fluxcd.io/forceAt value
	// acted on.
	// +optional
	LastHandledForceAt string `json:"lastHandledForceAt,omitempty"`

	// LastHandledResetAt is the last reconcile.fluxcd.io/resetAt value
	// acted on.
	// +optional
	LastHandledResetAt string `json:"lastHandledResetAt,omitempty"`

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
	// Digest is sha256:<hex> of the release record as Helm stores it
	// (its JSON), so that a record changed outside Sluice shows.
	// +optional
	Digest string `json:"digest,omitempty"`
	// OCIDigest is the manifest digest of the OCI artifact the chart came
	// from, for a chartRef of kind OCIRepository.
	// +optional
	OCIDigest string `json:"ociDigest,omitempty"`
	// Deleted is when the revision was uninstalled, for a release whose
	// history is kept.
	// +optional
	Deleted *metav1.Time `json:"deleted,omitempty"`
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
