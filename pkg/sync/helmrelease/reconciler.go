// Package helmrelease is the HelmRelease controller of the sync core. It
// releases a HelmChart's chart with the Helm SDK (install, upgrade, test,
// rollback, uninstall) into Helm's own storage, so that the helm CLI sees
// the same releases, and keeps Flux's behaviour: values from ConfigMaps
// and Secrets, remediation with retries, recovery of releases left
// pending, and dependsOn. A HelmRelease is Ready only when the Canaries
// of the workloads it installed have released them.
package helmrelease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sync.sluice.dev,resources=helmreleases,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sync.sluice.dev,resources=helmreleases/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmcharts,verbs=get;list;watch;create;update;patch;delete

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

// finalizer uninstalls the release when its HelmRelease is deleted.
const finalizer = "sync.sluice.dev/uninstall"

// remediationDelay is how soon a remediated release is retried.
const remediationDelay = time.Second

// artifactPoll is how often a HelmRelease looks for a chart not loaded
// yet.
const artifactPoll = 2 * time.Second

// Charts serves the charts HelmCharts loaded.
type Charts interface {
	Get(key types.NamespacedName) (*source.StoredChart, bool)
}

// Reconciler releases HelmReleases.
type Reconciler struct {
	Client client.Client
	// APIReader reads the workloads just released, which the cache may
	// not have yet; nil means Client.
	APIReader client.Reader
	// Config is the operator's; Helm's clients are made from it, acting
	// as spec.serviceAccountName when one is named.
	Config *rest.Config
	Charts Charts
	Events clientevents.EventRecorder
	// Health waits for the objects of a release that no Canary releases,
	// from the cache, when Helm's own wait is off for the Canaries' sake.
	Health *health.Checker
	// Workers is the number of HelmReleases released at once; 0 means 1.
	Workers int
	// ConfigTracking is the operator's, for the Canary hand-off.
	ConfigTracking bool

	mu      sync.Mutex
	getters map[string]*getter
	live    client.Client
}

func (r *Reconciler) guard() handoff.Guard {
	return handoff.Guard{Client: r.Client, APIReader: r.APIReader, ConfigTracking: r.ConfigTracking}
}

// liveClient reads straight from the API server: drift is what the
// cluster holds now, which the cache may not have caught up with.
func (r *Reconciler) liveClient() (client.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		c, err := client.New(r.Config, client.Options{Scheme: r.Client.Scheme(), Mapper: r.Client.RESTMapper()})
		if err != nil {
			return nil, fmt.Errorf("create a client for drift detection: %w", err)
		}
		r.live = c
	}
	return r.live, nil
}

// SetupWithManager registers the controller. A HelmRelease is released
// when its spec changes, when its HelmChart has a new chart, when one it
// depends on changes, when the Canary of a workload it installed changes,
// and at its interval.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := index.Add(ctx, indexer, &syncv1.HelmRelease{}, index.Source, func(hr *syncv1.HelmRelease) []types.NamespacedName {
		return []types.NamespacedName{chartKey(hr)}
	}); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv1.HelmRelease{}, index.DependsOn, func(hr *syncv1.HelmRelease) []types.NamespacedName {
		return index.Dependencies(hr.Namespace, hr.Spec.DependsOn)
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &syncv1.HelmReleaseList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmrelease").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&syncv1.HelmRelease{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.HelmChart{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source))).
		Watches(&syncv1.HelmRelease{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.DependsOn))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(handoff.ByCanary(mgr.GetClient(), OwnerNameLabel, OwnerNamespaceLabel))).
		Complete(r)
}

// chartKey names the HelmChart a HelmRelease releases: its chartRef, or
// the one made from spec.chart, <namespace>-<name> in the source's
// namespace, as Flux names it.
func chartKey(hr *syncv1.HelmRelease) types.NamespacedName {
	if ref := hr.Spec.ChartRef; ref != nil {
		return types.NamespacedName{Namespace: index.NamespaceOr(ref.Namespace, hr.Namespace), Name: ref.Name}
	}
	if hr.Spec.Chart == nil {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: index.NamespaceOr(hr.Spec.Chart.Spec.SourceRef.Namespace, hr.Namespace), Name: hr.Namespace + "-" + hr.Name}
}

// names are where a release goes: its name, its objects' namespace and
// its storage namespace.
func names(hr *syncv1.HelmRelease) (release, namespace, storage string) {
	namespace = index.NamespaceOr(hr.Spec.TargetNamespace, hr.Namespace)
	release = hr.Spec.ReleaseName
	if release == "" {
		release = hr.Name
		if hr.Spec.TargetNamespace != "" {
			release = hr.Spec.TargetNamespace + "-" + hr.Name
		}
		// Helm's limit; Flux shortens the same way.
		if len(release) > 53 {
			release = release[:53]
		}
	}
	return release, namespace, index.NamespaceOr(hr.Spec.StorageNamespace, namespace)
}

// verdict is what one reconcile earns.
type verdict struct {
	ready   metav1.Condition
	stalled bool
	// after, when set, requeues sooner than the interval.
	after time.Duration
}

// Reconcile releases one HelmRelease and writes its status once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	hr := &syncv1.HelmRelease{}
	if err := r.Client.Get(ctx, req.NamespacedName, hr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !hr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, hr)
	}
	if hr.Spec.Suspend {
		return ctrl.Result{}, nil
	}
	if !controllerutil.ContainsFinalizer(hr, finalizer) {
		patch := client.MergeFrom(hr.DeepCopy())
		controllerutil.AddFinalizer(hr, finalizer)
		if err := r.Client.Patch(ctx, hr, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer to HelmRelease %s: %w", req.NamespacedName, err)
		}
	}
	before := hr.DeepCopy()
	v := r.reconcile(ctx, hr)
	hr.Status.ObservedGeneration = hr.Generation
	if at, ok := hr.Annotations[sourcev1.ReconcileRequestAnnotation]; ok {
		hr.Status.LastHandledReconcileAt = at
	}
	status.SetReady(&hr.Status.Conditions, v.ready, v.stalled, hr.Generation)
	if err := r.Client.Status().Patch(ctx, hr, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patch HelmRelease %s status: %w", req.NamespacedName, err)
	}
	if v.after > 0 {
		return ctrl.Result{RequeueAfter: v.after}, nil
	}
	return ctrl.Result{RequeueAfter: hr.Spec.Interval.Duration}, nil
}

// finalize uninstalls the release of a deleted HelmRelease.
func (r *Reconciler) finalize(ctx context.Context, hr *syncv1.HelmRelease) error {
	if !controllerutil.ContainsFinalizer(hr, finalizer) {
		return nil
	}
	if !hr.Spec.Suspend {
		run, err := r.runner(ctx, hr)
		if err != nil {
			return err
		}
		rel, err := run.last()
		if err != nil {
			return err
		}
		if rel != nil && rel.Info.Status != common.StatusUninstalled {
			keep := hr.Spec.Uninstall != nil && hr.Spec.Uninstall.KeepHistory
			if err := run.uninstall(r.timeout(hr, uninstallTimeout(hr)), keep); err != nil {
				return fmt.Errorf("uninstall release %s: %w", run.name, err)
			}
		}
	}
	// The HelmChart made from spec.chart goes with its HelmRelease.
	if hr.Spec.Chart != nil {
		key := chartKey(hr)
		hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		if err := r.Client.Delete(ctx, hc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete HelmChart %s: %w", key, err)
		}
	}
	patch := client.MergeFrom(hr.DeepCopy())
	controllerutil.RemoveFinalizer(hr, finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, hr, patch))
}

// reconcile runs the steps and returns the verdict they earn.
func (r *Reconciler) reconcile(ctx context.Context, hr *syncv1.HelmRelease) verdict {
	waiting := func(reason, msg string) verdict {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}}
	}
	fail := func(reason string, err error) verdict {
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, reason, "Release", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}}
	}
	if msg := status.DependencyNotReady(ctx, r.Client, index.Dependencies(hr.Namespace, hr.Spec.DependsOn), func() *syncv1.HelmRelease { return &syncv1.HelmRelease{} }); msg != "" {
		return waiting(ReasonDependencyNotReady, msg)
	}
	if err := r.ensureChart(ctx, hr); err != nil {
		return fail(ReasonArtifactFailed, err)
	}
	key := chartKey(hr)
	hr.Status.HelmChart = key.String()
	stored, err := r.chart(ctx, key)
	if err != nil {
		// The chart store is in memory: after a restart the HelmChart
		// reloads a chart whose status does not change, so no event
		// would wake this HelmRelease.
		v := waiting(ReasonArtifactFailed, err.Error())
		v.after = artifactPoll
		return v
	}
	layers, err := readValues(ctx, r.Client, hr)
	if err != nil {
		return fail(ReasonValuesFailed, err)
	}
	var inline []byte
	if hr.Spec.Values != nil {
		inline = hr.Spec.Values.Raw
	}
	values, err := mergeValues(layers, inline)
	if err != nil {
		return fail(ReasonValuesFailed, err)
	}
	digest := valuesDigest(values)
	run, err := r.runner(ctx, hr)
	if err != nil {
		return fail(ReasonInitFailed, err)
	}
	// A new chart or new values start with fresh retries.
	if hr.Status.LastAttemptedRevision != stored.Revision || hr.Status.LastAttemptedValuesChecksum != digest {
		hr.Status.InstallFailures, hr.Status.UpgradeFailures = 0, 0
	}
	ch := versioned(stored)
	_, namespace, _ := names(hr)
	post := &postRenderer{ctx: ctx, hr: hr, namespace: namespace, guard: r.guard()}
	defer r.recordHistory(hr, run)
	// Each pass runs one Helm action; a release needs at most an unlock,
	// an install or upgrade, and a test in one reconcile.
	for range 4 {
		// One read of Helm's storage serves both: the latest revision is
		// the first of the history.
		history, err := run.history()
		if err != nil {
			return fail(ReasonInitFailed, err)
		}
		var rel *releasev1.Release
		if len(history) > 0 {
			rel = history[0]
		}
		obs := observe(hr, rel, history, stored.Revision, digest)
		s := next(obs)
		switch s {
		case stepNone:
			if err := r.detectDrift(ctx, hr, rel, namespace); err != nil {
				return fail(ReasonDriftFailed, err)
			}
			return r.released(ctx, hr, rel, namespace)
		case stepStalled:
			msg := fmt.Sprintf("%d install and %d upgrade failures of chart %s: retries exhausted", hr.Status.InstallFailures, hr.Status.UpgradeFailures, stored.Revision)
			if c := meta.FindStatusCondition(hr.Status.Conditions, syncv1.ReleasedCondition); c != nil && c.Status == metav1.ConditionFalse {
				msg += "; last: " + c.Message
			}
			if c := meta.FindStatusCondition(hr.Status.Conditions, syncv1.TestSuccessCondition); c != nil && c.Status == metav1.ConditionFalse {
				return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonTestFailed, Message: c.Message}, stalled: true}
			}
			return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonRetriesExceeded, Message: msg}, stalled: true}
		case stepUnlock:
			from := rel.Info.Status
			if err := run.unlock(rel); err != nil {
				return fail(ReasonInitFailed, err)
			}
			r.Events.Eventf(hr, nil, corev1.EventTypeWarning, ReasonUnlocked, "Release", "release %s unlocked from stale '%s' state", run.name, from)
		case stepInstall, stepUpgrade:
			r.release(ctx, hr, run, s, rel, ch, values, digest, post)
		case stepTest:
			r.test(hr, run)
		case stepRollback, stepUninstall:
			return r.remediate(hr, run, s)
		}
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonInitFailed, Message: "release did not settle"}, after: remediationDelay}
}

// release installs or upgrades, counting failures.
func (r *Reconciler) release(ctx context.Context, hr *syncv1.HelmRelease, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, digest string, post *postRenderer) {
	hr.Status.LastAttemptedRevision, hr.Status.LastAttemptedValuesChecksum = ch.Metadata.Version, digest
	hr.Status.LastAttemptedReleaseAction = s.String()
	opts := actionOptions{maxHistory: maxHistory(hr), post: post, timeout: r.timeout(hr, nil)}
	succeeded, failed := ReasonInstallSucceeded, ReasonInstallFailed
	if s == stepInstall {
		if in := hr.Spec.Install; in != nil {
			opts.timeout, opts.disableWait, opts.createNS = r.timeout(hr, in.Timeout), in.DisableWait, in.CreateNamespace
		}
	} else {
		succeeded, failed = ReasonUpgradeSucceeded, ReasonUpgradeFailed
		if up := hr.Spec.Upgrade; up != nil {
			opts.timeout, opts.disableWait = r.timeout(hr, up.Timeout), up.DisableWait
		}
	}
	err := r.runAction(ctx, run, s, last, ch, values, opts)
	released := metav1.Condition{Type: syncv1.ReleasedCondition, Status: metav1.ConditionTrue, Reason: succeeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm %s succeeded for release %s/%s with chart %s@%s", s, run.namespace, run.name, ch.Name(), ch.Metadata.Version)}
	if err != nil {
		if s == stepInstall {
			hr.Status.InstallFailures++
		} else {
			hr.Status.UpgradeFailures++
		}
		released.Status, released.Reason = metav1.ConditionFalse, failed
		released.Message = fmt.Sprintf("Helm %s failed for release %s/%s with chart %s@%s: %v", s, run.namespace, run.name, ch.Name(), ch.Metadata.Version, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, failed, "Release", "%s", released.Message)
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, succeeded, "Release", "%s", released.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, released)
	meta.RemoveStatusCondition(&hr.Status.Conditions, syncv1.TestSuccessCondition)
}

// runAction installs or upgrades. When Canaries release some of the
// workloads, Helm waits for hooks only and the rest is waited for here,
// leaving the Canaries' workloads to the canary gate.
func (r *Reconciler) runAction(ctx context.Context, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, opts actionOptions) error {
	guard := r.guard()
	off, err := handsOff(ctx, r.Client, guard, ch, last, run.namespace)
	if err != nil {
		return err
	}
	wait := !opts.disableWait
	opts.disableWait = opts.disableWait || off
	if s == stepInstall {
		err = run.install(ctx, ch, values, opts)
	} else {
		err = run.upgrade(ctx, ch, values, opts)
	}
	if err != nil || !off || !wait {
		return err
	}
	rel, err := run.last()
	if err != nil || rel == nil {
		return err
	}
	if err := waitOutsideCanaries(ctx, r.Client, r.Health, guard, rel, run.namespace, opts.timeout); err != nil {
		// As Helm's own wait would, the release is marked failed.
		return errors.Join(err, run.markFailed(rel, err))
	}
	return nil
}

// test runs the Helm tests; a failure counts against the action that
// made the release, unless failures are ignored.
func (r *Reconciler) test(hr *syncv1.HelmRelease, run *runner) {
	err := run.test(r.timeout(hr, hr.Spec.Test.Timeout))
	cond := metav1.Condition{Type: syncv1.TestSuccessCondition, Status: metav1.ConditionTrue, Reason: ReasonTestSucceeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm test succeeded for release %s/%s", run.namespace, run.name)}
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonTestFailed
		cond.Message = fmt.Sprintf("Helm test failed for release %s/%s: %v", run.namespace, run.name, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, ReasonTestFailed, "Test", "%s", cond.Message)
		if !ignoreTests(hr) {
			if hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() {
				hr.Status.UpgradeFailures++
			} else {
				hr.Status.InstallFailures++
			}
		}
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, ReasonTestSucceeded, "Test", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
}

// remediate rolls back or uninstalls a failed release and asks to be
// retried soon.
func (r *Reconciler) remediate(hr *syncv1.HelmRelease, run *runner, s step) verdict {
	var err error
	succeeded, failed := ReasonRollbackSucceeded, ReasonRollbackFailed
	if s == stepRollback {
		disableWait := false
		var timeout *metav1.Duration
		if rb := hr.Spec.Rollback; rb != nil {
			disableWait, timeout = rb.DisableWait, rb.Timeout
		}
		err = run.rollback(r.timeout(hr, timeout), disableWait, maxHistory(hr))
	} else {
		succeeded, failed = ReasonUninstallSucceeded, ReasonUninstallFailed
		keep := hr.Spec.Uninstall != nil && hr.Spec.Uninstall.KeepHistory
		err = run.uninstall(r.timeout(hr, uninstallTimeout(hr)), keep)
	}
	cond := metav1.Condition{Type: syncv1.RemediatedCondition, Status: metav1.ConditionTrue, Reason: succeeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm %s succeeded for release %s/%s", s, run.namespace, run.name)}
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, failed
		cond.Message = fmt.Sprintf("Helm %s failed for release %s/%s: %v", s, run.namespace, run.name, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, failed, "Remediate", "%s", cond.Message)
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, succeeded, "Remediate", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	reason, msg := failed, cond.Message
	if released := meta.FindStatusCondition(hr.Status.Conditions, syncv1.ReleasedCondition); released != nil && released.Status == metav1.ConditionFalse {
		reason, msg = released.Reason, released.Message
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}, after: remediationDelay}
}

// detectDrift compares the cluster with the release as
// spec.driftDetection asks: enabled corrects drift, warn reports it.
func (r *Reconciler) detectDrift(ctx context.Context, hr *syncv1.HelmRelease, rel *releasev1.Release, namespace string) error {
	mode := syncv1.DriftDetectionDisabled
	if hr.Spec.DriftDetection != nil && hr.Spec.DriftDetection.Mode != "" {
		mode = hr.Spec.DriftDetection.Mode
	}
	if mode == syncv1.DriftDetectionDisabled {
		meta.RemoveStatusCondition(&hr.Status.Conditions, syncv1.DriftedCondition)
		return nil
	}
	correct := mode == syncv1.DriftDetectionEnabled
	live, err := r.liveClient()
	if err != nil {
		return err
	}
	drifted, err := drift(ctx, live, r.guard(), rel, namespace, correct)
	if err != nil {
		return err
	}
	cond := metav1.Condition{Type: syncv1.DriftedCondition, Status: metav1.ConditionFalse, Reason: ReasonNoDrift, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("no drift from release %s/%s.v%d", rel.Namespace, rel.Name, rel.Version)}
	if len(drifted) > 0 {
		what := "corrected"
		if !correct {
			what = "not corrected (warn mode)"
			cond.Status = metav1.ConditionTrue
		}
		cond.Reason = ReasonDriftDetected
		cond.Message = fmt.Sprintf("drift from release %s/%s.v%d %s: %s", rel.Namespace, rel.Name, rel.Version, what, strings.Join(drifted, ", "))
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, ReasonDriftDetected, "DetectDrift", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	return nil
}

// released checks the Canaries of what the release installed.
func (r *Reconciler) released(ctx context.Context, hr *syncv1.HelmRelease, rel *releasev1.Release, namespace string) verdict {
	msg := fmt.Sprintf("Helm release %s/%s.v%d with chart %s@%s is deployed", rel.Namespace, rel.Name, rel.Version, rel.Chart.Name(), rel.Chart.Metadata.Version)
	objs, err := readManifest(rel.Manifest, namespace)
	if err != nil {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonInitFailed, Message: err.Error()}}
	}
	guard := r.guard()
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonInitFailed, Message: err.Error()}}
	}
	progressing, failed, err := guard.Health(ctx, objs, targets)
	switch {
	case err != nil:
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonInitFailed, Message: err.Error()}}
	case failed != "":
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, handoff.ReasonCanaryFailed, "Release", "%s", failed)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: handoff.ReasonCanaryFailed, Message: failed}, stalled: true}
	case progressing != "":
		return verdict{ready: metav1.Condition{Status: metav1.ConditionUnknown, Reason: handoff.ReasonProgressing, Message: msg + "; " + progressing}}
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonSucceeded, Message: msg}}
}

// recordHistory writes the release's revisions into status, newest first.
func (r *Reconciler) recordHistory(hr *syncv1.HelmRelease, run *runner) {
	history, err := run.history()
	if err != nil {
		return
	}
	_, _, storage := names(hr)
	hr.Status.StorageNamespace = storage
	hr.Status.History = nil
	for _, rel := range history[:min(len(history), maxHistory(hr))] {
		hr.Status.History = append(hr.Status.History, snapshot(rel))
	}
}

func snapshot(rel *releasev1.Release) syncv1.Snapshot {
	s := syncv1.Snapshot{Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version, ConfigDigest: valuesDigest(rel.Config)}
	if rel.Info != nil {
		s.Status = string(rel.Info.Status)
		s.FirstDeployed, s.LastDeployed = metav1.NewTime(rel.Info.FirstDeployed), metav1.NewTime(rel.Info.LastDeployed)
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		s.ChartName, s.ChartVersion, s.AppVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, rel.Chart.Metadata.AppVersion
	}
	for _, h := range rel.Hooks {
		if isTestHook(h) && h.LastRun.Phase != "" {
			if s.TestHooks == nil {
				s.TestHooks = map[string]string{}
			}
			s.TestHooks[h.Name] = string(h.LastRun.Phase)
		}
	}
	return s
}

// observe turns Helm's storage into the decision's input.
func observe(hr *syncv1.HelmRelease, rel *releasev1.Release, history []*releasev1.Release, revision, digest string) observation {
	o := observation{
		ChartRevision: revision, ValuesDigest: digest,
		InstallFailures: hr.Status.InstallFailures, UpgradeFailures: hr.Status.UpgradeFailures,
		Install: installRemediation(hr), Upgrade: upgradeRemediation(hr),
		TestEnabled: hr.Spec.Test != nil && hr.Spec.Test.Enable, IgnoreTests: ignoreTests(hr),
	}
	if rel == nil {
		return o
	}
	state := releaseState{Exists: true, Status: string(rel.Info.Status), Pending: rel.Info.Status.IsPending(), ValuesDigest: valuesDigest(rel.Config), Tested: true, LastAction: stepUpgrade.String()}
	if rel.Version == 1 {
		state.LastAction = stepInstall.String()
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		state.ChartRevision = rel.Chart.Metadata.Version
	}
	for _, h := range rel.Hooks {
		if !isTestHook(h) {
			continue
		}
		switch h.LastRun.Phase {
		case "":
			state.Tested = false
		case releasev1.HookPhaseFailed:
			state.TestsFailed = true
		}
	}
	for _, h := range history {
		if h.Info != nil && (h.Info.Status == common.StatusDeployed || h.Info.Status == common.StatusSuperseded) {
			state.EverDeployed = true
		}
	}
	o.Release = state
	return o
}

func isTestHook(h *releasev1.Hook) bool {
	for _, e := range h.Events {
		if e == releasev1.HookTest {
			return true
		}
	}
	return false
}

func installRemediation(hr *syncv1.HelmRelease) remediation {
	if hr.Spec.Install == nil || hr.Spec.Install.Remediation == nil {
		return remediation{}
	}
	return resolve(hr.Spec.Install.Remediation)
}

func upgradeRemediation(hr *syncv1.HelmRelease) remediation {
	if hr.Spec.Upgrade == nil || hr.Spec.Upgrade.Remediation == nil {
		return remediation{strategy: syncv1.RemediationRollback}
	}
	return resolve(hr.Spec.Upgrade.Remediation)
}

func resolve(rem *syncv1.Remediation) remediation {
	out := remediation{retries: rem.Retries, strategy: rem.Strategy, ignoreTests: rem.IgnoreTestFailures, remediateLast: rem.Retries > 0}
	if out.strategy == "" {
		out.strategy = syncv1.RemediationRollback
	}
	if rem.RemediateLastFailure != nil {
		out.remediateLast = *rem.RemediateLastFailure
	}
	return out
}

func ignoreTests(hr *syncv1.HelmRelease) bool {
	if hr.Spec.Test != nil && hr.Spec.Test.IgnoreFailures {
		return true
	}
	last := installRemediation(hr)
	if hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() {
		last = upgradeRemediation(hr)
	}
	return last.ignoreTests
}

func maxHistory(hr *syncv1.HelmRelease) int {
	if hr.Spec.MaxHistory != nil {
		return *hr.Spec.MaxHistory
	}
	return 5
}

func uninstallTimeout(hr *syncv1.HelmRelease) *metav1.Duration {
	if hr.Spec.Uninstall != nil {
		return hr.Spec.Uninstall.Timeout
	}
	return nil
}

// timeout is an action's own timeout, or spec.timeout, or 5 minutes.
func (r *Reconciler) timeout(hr *syncv1.HelmRelease, own *metav1.Duration) time.Duration {
	switch {
	case own != nil:
		return own.Duration
	case hr.Spec.Timeout != nil:
		return hr.Spec.Timeout.Duration
	}
	return 5 * time.Minute
}

// versioned is the stored chart with its version set to the HelmChart's
// revision, so that a chart from Git under the Revision strategy makes
// a new release on each commit, and the release says which.
func versioned(stored *source.StoredChart) *chart.Chart {
	ch := *stored.Chart
	md := *stored.Chart.Metadata
	md.Version = stored.Revision
	ch.Metadata = &md
	return &ch
}

// chart returns the HelmChart's loaded chart once the HelmChart has
// caught up with its spec.
func (r *Reconciler) chart(ctx context.Context, key types.NamespacedName) (*source.StoredChart, error) {
	hc := &sourcev1.HelmChart{}
	if err := r.Client.Get(ctx, key, hc); err != nil {
		return nil, fmt.Errorf("HelmChart %s: %w", key, err)
	}
	ready := meta.FindStatusCondition(hc.Status.Conditions, "Ready")
	if hc.Status.ObservedGeneration != hc.Generation || ready == nil || ready.Status != metav1.ConditionTrue || hc.Status.Artifact == nil {
		msg := fmt.Sprintf("HelmChart %s is not ready", key)
		if ready != nil && ready.Message != "" {
			msg += ": " + ready.Message
		}
		return nil, fmt.Errorf("%s", msg)
	}
	stored, ok := r.Charts.Get(key)
	if !ok || stored.Revision != hc.Status.Artifact.Revision {
		return nil, fmt.Errorf("HelmChart %s: chart %s is not loaded yet", key, hc.Status.Artifact.Revision)
	}
	return stored, nil
}

// ensureChart makes or updates the HelmChart of spec.chart.
func (r *Reconciler) ensureChart(ctx context.Context, hr *syncv1.HelmRelease) error {
	if hr.Spec.Chart == nil {
		return nil
	}
	tpl := hr.Spec.Chart.Spec
	key := chartKey(hr)
	hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, hc, func() error {
		interval := hr.Spec.Interval
		if tpl.Interval != nil {
			interval = *tpl.Interval
		}
		hc.Spec = sourcev1.HelmChartSpec{
			Chart: tpl.Chart, Version: tpl.Version, Interval: interval,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: tpl.SourceRef.Kind, Name: tpl.SourceRef.Name, APIVersion: tpl.SourceRef.APIVersion},
			ReconcileStrategy: tpl.ReconcileStrategy, ValuesFiles: tpl.ValuesFiles,
		}
		if hc.Spec.Version == "" {
			hc.Spec.Version = "*"
		}
		if hc.Spec.ReconcileStrategy == "" {
			hc.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyChartVersion
		}
		labels := hc.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[OwnerNameLabel], labels[OwnerNamespaceLabel] = hr.Name, hr.Namespace
		hc.SetLabels(labels)
		return nil
	})
	if err != nil {
		return fmt.Errorf("spec.chart: HelmChart %s: %w", key, err)
	}
	return nil
}

// runner makes the Helm runner for the HelmRelease, as its
// ServiceAccount when it names one.
func (r *Reconciler) runner(ctx context.Context, hr *syncv1.HelmRelease) (*runner, error) {
	g, err := r.getter(hr)
	if err != nil {
		return nil, err
	}
	name, namespace, storage := names(hr)
	log := slog.New(logr.ToSlogHandler(ctrl.LoggerFrom(ctx).V(1)))
	return newRunner(g, name, namespace, storage, log)
}

// getter is shared by every HelmRelease of one identity.
func (r *Reconciler) getter(hr *syncv1.HelmRelease) (*getter, error) {
	id := ""
	if sa := hr.Spec.ServiceAccountName; sa != "" {
		id = "system:serviceaccount:" + hr.Namespace + ":" + sa
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.getters[id]; ok {
		return g, nil
	}
	cfg := rest.CopyConfig(r.Config)
	if id != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: id}
	}
	g, err := newGetter(cfg)
	if err != nil {
		return nil, fmt.Errorf("clients for %s: %w", strings.TrimPrefix(id+" ", " "), err)
	}
	if r.getters == nil {
		r.getters = map[string]*getter{}
	}
	r.getters[id] = g
	return g, nil
}
