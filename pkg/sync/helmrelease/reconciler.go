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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sync.sluice.dev,resources=helmreleases,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sync.sluice.dev,resources=helmreleases/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=helmcharts,verbs=get;list;watch;create;update;patch;delete

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
	// OCISources holds the OCIRepositories' artifacts, for a chartRef of
	// kind OCIRepository; nil leaves such a HelmRelease waiting.
	OCISources *source.Store
	Events     clientevents.EventRecorder
	// Health waits for the objects of a release that no Canary releases,
	// from the cache, when Helm's own wait is off for the Canaries' sake.
	Health *health.Checker
	// Workers is the number of HelmReleases released at once; 0 means 1.
	Workers int
	// ConfigTracking is the operator's, for the Canary hand-off.
	ConfigTracking bool
	// Remotes reaches the clusters of spec.kubeConfig; nil refuses
	// HelmReleases that name one.
	Remotes *kubeconfig.Clusters
	// AdditiveCELDependencyCheck checks a dependency's Ready condition
	// besides its dependsOn[].readyExpr, as Flux's feature gate of that
	// name does; by default the expression replaces it.
	AdditiveCELDependencyCheck bool
	// ShardLabels are the labels a HelmRelease's HelmChart takes from the
	// HelmRelease (withShardLabels), so that the chart is in the
	// HelmRelease's shard.
	ShardLabels []string

	mu      sync.Mutex
	getters map[string]*getter
	live    client.Client
	// exprs holds the compiled CEL expressions of the specs.
	exprs celexpr.Cache
	// writes are the reconciles' own writes, which the cache may not
	// show yet.
	writes ownWrites
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
	if err := index.Add(ctx, indexer, &syncv2.HelmRelease{}, index.Source, func(hr *syncv2.HelmRelease) []types.NamespacedName {
		return []types.NamespacedName{chartKey(hr)}
	}); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv2.HelmRelease{}, index.DependsOn, func(hr *syncv2.HelmRelease) []types.NamespacedName {
		return index.Dependencies(hr.Namespace, hr.Spec.DependsOn)
	}); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv2.HelmRelease{}, kubeconfig.Index, func(hr *syncv2.HelmRelease) []types.NamespacedName {
		return kubeconfig.Secrets(hr.Namespace, hr.Spec.KubeConfig)
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &syncv2.HelmReleaseList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmrelease").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&syncv2.HelmRelease{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.HelmChart{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source)), builder.WithPredicates(index.SourceChanged())).
		Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source)), builder.WithPredicates(index.SourceChanged())).
		Watches(&syncv2.HelmRelease{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.DependsOn)), builder.WithPredicates(index.DependencyChanged())).
		// A new or rotated kubeconfig is used at once.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, kubeconfig.Index))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(handoff.ByCanary(mgr.GetClient(), OwnerNameLabel, OwnerNamespaceLabel))).
		Complete(r)
}

// names are where a release goes: its name, its objects' namespace and
// its storage namespace.
func names(hr *syncv2.HelmRelease) (release, namespace, storage string) {
	namespace = index.NamespaceOr(hr.Spec.TargetNamespace, hr.Namespace)
	release = hr.Spec.ReleaseName
	if release == "" {
		release = hr.Name
		if hr.Spec.TargetNamespace != "" {
			release = hr.Spec.TargetNamespace + "-" + hr.Name
		}
	}
	release = shortenName(release)
	// Helm's records stay beside the HelmRelease, as in Flux, wherever
	// targetNamespace puts the objects.
	return release, namespace, index.NamespaceOr(hr.Spec.StorageNamespace, hr.Namespace)
}

// shortenName fits a release name into Helm's 53 characters as Flux's
// release.ShortenName does: the first 40 characters, a dash, and the
// first 12 hex of the whole name's sha256, so that two long names that
// share a beginning stay apart.
func shortenName(name string) string {
	const helmMax, hashLen = 53, 12
	if len(name) <= helmMax {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:helmMax-hashLen-1] + "-" + hex.EncodeToString(sum[:])[:hashLen]
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
	hr := &syncv2.HelmRelease{}
	if err := r.Client.Get(ctx, req.NamespacedName, hr); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.writes.stale(req.NamespacedName, hr.ResourceVersion, time.Now()) {
		return ctrl.Result{RequeueAfter: cacheLagPoll}, nil
	}
	read := hr.ResourceVersion
	defer func() { r.writes.wrote(req.NamespacedName, read, hr.ResourceVersion, time.Now()) }()
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
	if err := r.writeStatus(ctx, hr, before, v); err != nil {
		return ctrl.Result{}, err
	}
	if v.after > 0 {
		return ctrl.Result{RequeueAfter: v.after}, nil
	}
	return ctrl.Result{RequeueAfter: hr.Spec.Interval.Duration}, nil
}

// writeStatus writes the status the verdict earns, changed from before.
func (r *Reconciler) writeStatus(ctx context.Context, hr, before *syncv2.HelmRelease, v verdict) error {
	fields := status.Fields{ObservedGeneration: &hr.Status.ObservedGeneration, LastHandledReconcileAt: &hr.Status.LastHandledReconcileAt, Conditions: &hr.Status.Conditions}
	return status.Write(ctx, r.Client, "HelmRelease", hr, before, fields, v.ready, v.stalled)
}

// reconcile runs the steps and returns the verdict they earn.
func (r *Reconciler) reconcile(ctx context.Context, hr *syncv2.HelmRelease) (out verdict) {
	waiting := func(reason, msg string) verdict {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}}
	}
	fail := func(reason string, err error) verdict {
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, reason, "Release", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}}
	}
	// An expression that does not compile fails the same way until the
	// spec changes: nothing is released.
	readyExprs, err := index.ReadyExprs(&r.exprs, hr.Spec.DependsOn)
	if err == nil {
		_, err = r.healthExprs(hr)
	}
	if err != nil {
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonInvalidCELExpression, "Release", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonInvalidCELExpression, Message: err.Error()}, stalled: true}
	}
	deps := index.Readiness[*syncv2.HelmRelease]{Client: r.Client, New: func() *syncv2.HelmRelease { return &syncv2.HelmRelease{} }, Additive: r.AdditiveCELDependencyCheck}
	if msg := deps.NotReady(ctx, hr, hr.Spec.DependsOn, readyExprs); msg != "" {
		return waiting(syncv2.ReasonDependencyNotReady, msg)
	}
	if err := r.ensureChart(ctx, hr); err != nil {
		return fail(syncv2.ReasonArtifactFailed, err)
	}
	key := chartKey(hr)
	hr.Status.HelmChart = ""
	if chartKind(hr) == "HelmChart" {
		hr.Status.HelmChart = key.String()
	}
	stored, err := r.chart(ctx, hr, key)
	var unusable *unusableChartError
	if errors.As(err, &unusable) {
		return fail(syncv2.ReasonArtifactFailed, err)
	}
	if err != nil {
		// The chart store is in memory: after a restart the HelmChart
		// reloads a chart whose status does not change, so no event
		// would wake this HelmRelease.
		v := waiting(syncv2.ReasonArtifactFailed, err.Error())
		v.after = artifactPoll
		return v
	}
	layers, err := readValues(ctx, r.Client, hr)
	if err != nil {
		return fail(syncv2.ReasonValuesFailed, err)
	}
	var inline []byte
	if hr.Spec.Values != nil {
		inline = hr.Spec.Values.Raw
	}
	values, err := mergeValues(layers, inline)
	if err != nil {
		return fail(syncv2.ReasonValuesFailed, err)
	}
	digest := valuesDigest(values)
	run, err := r.runner(ctx, hr)
	if err != nil {
		if kubeconfig.IsError(err) {
			return fail(syncv2.ReasonRESTClientError, err)
		}
		return fail(syncv2.ReasonInitFailed, err)
	}
	// A new spec, chart or values, or a resetAt request, start with
	// fresh retries; a forceAt request forces one install or upgrade.
	force := beginAttempt(hr, stored, digest)
	ch := versioned(stored)
	_, namespace, _ := names(hr)
	post := &postRenderer{ctx: ctx, hr: hr, namespace: namespace, guard: run.cluster.guard}
	// history is Helm's storage as the loop last read it; fresh is false
	// once an action may have changed it since.
	var history []*releasev1.Release
	fresh := false
	defer func() {
		if err := r.recordHistory(hr, run, history, fresh); err != nil {
			out = r.historyFailed(ctx, hr, out, err)
		}
	}()
	// Each pass runs one Helm action; a release needs at most an unlock,
	// an install or upgrade, and a test in one reconcile.
	for range 4 {
		// One read of Helm's storage serves both: the latest revision is
		// the first of the history.
		history, err = run.history()
		if err != nil {
			return fail(syncv2.ReasonInitFailed, err)
		}
		var rel *releasev1.Release
		if len(history) > 0 {
			rel = history[0]
		}
		obs := observe(hr, rel, history, stored.Revision, preservedDigest(hr, rel, values, digest))
		obs.Force, obs.ChartName = force, ch.Name()
		s := next(obs)
		// Drift correction and a stall leave Helm's storage as read.
		fresh = s == stepNone || s == stepStalled
		switch s {
		case stepNone:
			if err := r.detectDrift(ctx, hr, run, rel, namespace); err != nil {
				return fail(syncv2.ReasonDriftFailed, err)
			}
			return r.released(ctx, hr, run, rel, namespace)
		case stepStalled:
			msg := fmt.Sprintf("%d install and %d upgrade failures of chart %s: retries exhausted", hr.Status.InstallFailures, hr.Status.UpgradeFailures, stored.Revision)
			if c := meta.FindStatusCondition(hr.Status.Conditions, syncv2.ReleasedCondition); c != nil && c.Status == metav1.ConditionFalse {
				msg += "; last: " + c.Message
			}
			// Helm's record, read live, says whether the tests failed:
			// the status may be from a cache that has not caught up.
			if obs.Release.TestsFailed && !obs.IgnoreTests {
				msg := fmt.Sprintf("Helm test failed for release %s/%s", run.namespace, run.name)
				if c := meta.FindStatusCondition(hr.Status.Conditions, syncv2.TestSuccessCondition); c != nil && c.Status == metav1.ConditionFalse {
					msg = c.Message
				} else {
					// A status read from a cache that has not caught up
					// lacks the test's condition, and the patch of this
					// verdict would drop it: it goes with the verdict.
					meta.SetStatusCondition(&hr.Status.Conditions, metav1.Condition{Type: syncv2.TestSuccessCondition, Status: metav1.ConditionFalse,
						Reason: syncv2.ReasonTestFailed, ObservedGeneration: hr.Generation, Message: msg})
				}
				return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonTestFailed, Message: msg}, stalled: true}
			}
			return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonRetriesExceeded, Message: msg}, stalled: true}
		case stepUnlock:
			from := rel.Info.Status
			if err := run.unlock(rel); err != nil {
				return fail(syncv2.ReasonInitFailed, err)
			}
			r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonUnlocked, "Release", "release %s unlocked from stale '%s' state", run.name, from)
		case stepInstall, stepUpgrade:
			force = false
			if v, stop := r.release(ctx, hr, run, s, rel, ch, values, post, obs); stop {
				return v
			}
		case stepTest:
			if v, stop := r.test(hr, run, obs); stop {
				return v
			}
		case stepRollback, stepUninstall:
			return r.remediate(hr, run, s)
		case stepReinstall:
			if v, stop := r.reinstall(hr, run, rel, ch, obs.TargetChange); stop {
				return v
			}
		}
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonInitFailed, Message: "release did not settle"}, after: remediationDelay}
}

// canaryPoll is how soon a HelmRelease whose remote Canaries are still
// progressing looks at them again: they are not watched, as a
// Kustomization's are not.
const canaryPoll = 5 * time.Second

// released checks the Canaries of what the release installed.
func (r *Reconciler) released(ctx context.Context, hr *syncv2.HelmRelease, run *runner, rel *releasev1.Release, namespace string) verdict {
	msg := fmt.Sprintf("Helm release %s/%s.v%d with chart %s@%s is deployed", rel.Namespace, rel.Name, rel.Version, rel.Chart.Name(), rel.Chart.Metadata.Version)
	initFailed := func(err error) verdict {
		err = fmt.Errorf("the Canaries of release %s/%s.v%d: %w", rel.Namespace, rel.Name, rel.Version, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonInitFailed, "Release", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonInitFailed, Message: err.Error()}}
	}
	objs, err := readManifest(rel.Manifest, namespace)
	if err != nil {
		return initFailed(err)
	}
	guard := run.cluster.guard
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return initFailed(err)
	}
	progressing, failed, err := guard.Health(ctx, objs, targets)
	switch {
	case err != nil:
		return initFailed(err)
	case failed != "":
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, handoff.ReasonCanaryFailed, "Release", "%s", failed)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: handoff.ReasonCanaryFailed, Message: failed}, stalled: true}
	case progressing != "":
		return verdict{ready: metav1.Condition{Status: metav1.ConditionUnknown, Reason: handoff.ReasonProgressing, Message: msg + "; " + progressing}, after: progressingPoll(hr)}
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionTrue, Reason: syncv2.ReasonSucceeded, Message: msg}}
}

// progressingPoll is when a HelmRelease waiting on its Canaries looks
// again: a Canary's change wakes it here, while a remote cluster's
// Canaries are looked at every canaryPoll.
func progressingPoll(hr *syncv2.HelmRelease) time.Duration {
	if hr.Spec.KubeConfig != nil {
		return canaryPoll
	}
	return 0
}

// historyFailed is the verdict of a reconcile whose status.history could
// not be read from Helm's storage: logged, and when the reconcile
// otherwise succeeded, Ready=False with a Warning Event. The history is
// read again soon.
func (r *Reconciler) historyFailed(ctx context.Context, hr *syncv2.HelmRelease, v verdict, err error) verdict {
	err = fmt.Errorf("status.history: %w", err)
	ctrl.LoggerFrom(ctx).Error(err, "status.history not updated")
	if v.ready.Status == metav1.ConditionTrue {
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonInitFailed, "Release", "%v", err)
		v.ready = metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv2.ReasonInitFailed, Message: err.Error()}
	}
	if v.after == 0 || v.after > remediationDelay {
		v.after = remediationDelay
	}
	return v
}

// timeout is an action's own timeout, or spec.timeout, or 5 minutes.
func (r *Reconciler) timeout(hr *syncv2.HelmRelease, own *metav1.Duration) time.Duration {
	switch {
	case own != nil:
		return own.Duration
	case hr.Spec.Timeout != nil:
		return hr.Spec.Timeout.Duration
	}
	return 5 * time.Minute
}

// runner makes the Helm runner for the HelmRelease, as its
// ServiceAccount when it names one, on this cluster or on the remote one
// of spec.kubeConfig.
func (r *Reconciler) runner(ctx context.Context, hr *syncv2.HelmRelease) (*runner, error) {
	g, cl, err := r.target(ctx, hr)
	if err != nil {
		return nil, err
	}
	name, namespace, storage := names(hr)
	log := slog.New(logr.ToSlogHandler(ctrl.LoggerFrom(ctx).V(1)))
	run, err := newRunner(g, name, namespace, storage, log)
	if err != nil {
		return nil, err
	}
	run.cluster = cl
	run.legacyWait = hr.Spec.WaitStrategy != nil && hr.Spec.WaitStrategy.Name == syncv2.WaitStrategyLegacy
	return run, nil
}

// target is where the HelmRelease releases: Helm's clients, and how the
// released objects are read. Here, drift is read live as the operator,
// health from the cache and the Canaries from this cluster's.
func (r *Reconciler) target(ctx context.Context, hr *syncv2.HelmRelease) (*getter, cluster, error) {
	if hr.Spec.KubeConfig != nil {
		return r.remoteTarget(ctx, hr)
	}
	g, err := r.getter(hr)
	if err != nil {
		return nil, cluster{}, err
	}
	live, err := r.liveClient()
	if err != nil {
		return nil, cluster{}, err
	}
	return g, cluster{live: live, guard: r.guard(), health: r.Health}, nil
}

// getter is shared by every HelmRelease of one identity.
func (r *Reconciler) getter(hr *syncv2.HelmRelease) (*getter, error) {
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
