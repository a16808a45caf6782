// Package kustomization is the Kustomization controller of the sync core:
// it builds a source artifact with pkg/sync/build, applies it with
// pkg/sync/apply, and reports the revision, the inventory and the outcome
// in status. Dependencies are event-driven: a Kustomization that turns
// Ready requeues its dependents at once. Health is judged after the apply
// from the watch cache (pkg/sync/health), and a Kustomization waiting on
// it is requeued rather than holding a worker: one stuck rollout never
// delays the others.
package kustomization

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/decrypt"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sync.sluice.dev,resources=kustomizations,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=sync.sluice.dev,resources=kustomizations/status,verbs=get;update;patch

// Reconciler applies Kustomizations.
type Reconciler struct {
	Client client.Client
	// APIReader reads the workloads just applied, which the cache may not
	// have yet; nil means Client.
	APIReader client.Reader
	Applier   *apply.Applier
	// Health judges what the operator's own account applied, from the
	// cache.
	Health  *health.Checker
	Sources *source.Store
	// OCISources holds the OCIRepositories' artifacts; nil leaves a
	// Kustomization of an OCIRepository waiting for one.
	OCISources *source.Store
	// BucketSources holds the Buckets' artifacts; nil leaves a
	// Kustomization of a Bucket waiting for one.
	BucketSources *source.Store
	Events        clientevents.EventRecorder
	// Impersonator applies as spec.serviceAccountName; nil refuses
	// Kustomizations that name one.
	Impersonator *Impersonator
	// Remotes reaches the clusters of spec.kubeConfig; nil refuses
	// Kustomizations that name one.
	Remotes *kubeconfig.Clusters
	// Workers is the number of Kustomizations applied at once; 0 means 1.
	Workers int
	// ConfigTracking is the operator's, for the Canary hand-off.
	ConfigTracking bool
	// DefaultServiceAccount is impersonated, in the Kustomization's
	// namespace, when spec.serviceAccountName is empty; empty means the
	// operator's own account.
	DefaultServiceAccount string
	// AdditiveCELDependencyCheck checks a dependency's Ready condition
	// besides its dependsOn[].readyExpr, as Flux's feature gate of that
	// name does; by default the expression replaces it.
	AdditiveCELDependencyCheck bool

	waits waits
	// exprs holds the compiled CEL expressions of the specs.
	exprs celexpr.Cache
}

// verdict is what one reconcile earns: the Ready condition, whether to
// retry sooner than the interval, and whether retrying cannot help until
// the source or the spec changes (Stalled).
type verdict struct {
	ready   metav1.Condition
	retry   bool
	stalled bool
	// after, when set, requeues sooner than the intervals.
	after time.Duration
	// snapshot is the apply this verdict judges, for status.history.
	snapshot *snapshot
}

// artifactPoll is how often a Kustomization looks for an artifact not
// fetched yet.
const artifactPoll = 2 * time.Second

// healthPoll bounds how long a Kustomization waiting on the health of
// what it applied goes without a look. The first looks come sooner, and
// the rollouts of Deployments and DaemonSets wake it at once.
const healthPoll = 5 * time.Second

// SetupWithManager registers the controller. A Kustomization is applied
// when its spec changes, when its source has a new artifact, when one it
// depends on changes, and at its interval.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := index.Add(ctx, indexer, &syncv1.Kustomization{}, index.Source, sourceKeys); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv1.Kustomization{}, index.DependsOn, func(ks *syncv1.Kustomization) []types.NamespacedName {
		return index.Dependencies(ks.Namespace, ks.Spec.DependsOn)
	}); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv1.Kustomization{}, kubeconfig.Index, func(ks *syncv1.Kustomization) []types.NamespacedName {
		return kubeconfig.Secrets(ks.Namespace, ks.Spec.KubeConfig)
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &syncv1.KustomizationList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&syncv1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source)), builder.WithPredicates(index.SourceChanged())).
		Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source)), builder.WithPredicates(index.SourceChanged())).
		Watches(&sourcev1.Bucket{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source)), builder.WithPredicates(index.SourceChanged())).
		Watches(&syncv1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.DependsOn)), builder.WithPredicates(index.DependencyChanged())).
		// A new or rotated kubeconfig is used at once.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, kubeconfig.Index))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(handoff.ByCanary(mgr.GetClient(), apply.OwnerGroup+"/name", apply.OwnerGroup+"/namespace"))).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.waitingOwner)).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.waitingOwner)).
		Complete(r)
}

// waitingOwner maps a workload to the Kustomization that applied it, when
// that one waits on its health: a rollout's progress is judged as it
// happens, while other changes wait for the interval.
func (r *Reconciler) waitingOwner(_ context.Context, o client.Object) []reconcile.Request {
	labels := o.GetLabels()
	key := types.NamespacedName{Namespace: labels[apply.OwnerGroup+"/namespace"], Name: labels[apply.OwnerGroup+"/name"]}
	if key.Name == "" || r.waits.get(key) == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

// sourceKeys names the GitRepository, OCIRepository or Bucket a
// Kustomization is built from.
func sourceKeys(ks *syncv1.Kustomization) []types.NamespacedName {
	ref := ks.Spec.SourceRef
	if ref.Kind != "GitRepository" && ref.Kind != "OCIRepository" && ref.Kind != "Bucket" {
		return nil
	}
	return []types.NamespacedName{{Namespace: index.NamespaceOr(ref.Namespace, ks.Namespace), Name: ref.Name}}
}

// artifact is the last artifact of the source of kind at key, from that
// kind's store.
func (r *Reconciler) artifact(kind string, key types.NamespacedName) (*git.Artifact, bool) {
	store := r.Sources
	switch kind {
	case "OCIRepository":
		store = r.OCISources
	case "Bucket":
		store = r.BucketSources
	}
	if store == nil {
		return nil, false
	}
	return store.Get(key)
}

// Reconcile applies one Kustomization and writes its status once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ks := &syncv1.Kustomization{}
	if err := r.Client.Get(ctx, req.NamespacedName, ks); err != nil {
		if apierrors.IsNotFound(err) {
			r.waits.drop(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ks.DeletionTimestamp.IsZero() {
		r.waits.drop(req.NamespacedName)
		return ctrl.Result{}, r.finalize(ctx, ks)
	}
	if err := r.holdDeletion(ctx, ks); err != nil {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, syncv1.ReasonFailed, "Apply", "%v", err)
		return ctrl.Result{}, err
	}
	if ks.Spec.Suspend {
		r.waits.drop(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	before := ks.DeepCopy()
	v := r.reconcile(ctx, ks)
	v.snapshot.record(ks, v.ready)
	fields := status.Fields{ObservedGeneration: &ks.Status.ObservedGeneration, LastHandledReconcileAt: &ks.Status.LastHandledReconcileAt, Conditions: &ks.Status.Conditions}
	if err := status.Write(ctx, r.Client, "Kustomization", ks, before, fields, v.ready, v.stalled); err != nil {
		return ctrl.Result{}, err
	}
	after := ks.Spec.Interval.Duration
	if v.retry && ks.Spec.RetryInterval != nil {
		after = ks.Spec.RetryInterval.Duration
	}
	if v.after > 0 {
		after = v.after
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// reconcile runs the steps and returns the verdict they earn.
func (r *Reconciler) reconcile(ctx context.Context, ks *syncv1.Kustomization) verdict {
	fail := func(reason string, err error) verdict {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, reason, "Apply", "%v", err)
		// The same revision and spec fail the same way: a build error, an
		// object the API server rejects, or one the account may not touch.
		stalled := reason == syncv1.ReasonBuildFailed || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}, retry: true, stalled: stalled}
	}
	waiting := func(reason, message string) verdict {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: message}, retry: true}
	}
	// An expression that does not compile fails the same way until the
	// spec changes: nothing is applied.
	healthExprs, err := health.CompileExprs(&r.exprs, "spec.healthCheckExprs", ks.Spec.HealthCheckExprs)
	var readyExprs []*celexpr.Expression
	if err == nil {
		readyExprs, err = index.ReadyExprs(&r.exprs, ks.Spec.DependsOn)
	}
	if err != nil {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, syncv1.ReasonInvalidCELExpression, "Apply", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: syncv1.ReasonInvalidCELExpression, Message: err.Error()}, stalled: true}
	}
	deps := index.Readiness[*syncv1.Kustomization]{Client: r.Client, New: func() *syncv1.Kustomization { return &syncv1.Kustomization{} }, Additive: r.AdditiveCELDependencyCheck}
	if msg := deps.NotReady(ctx, ks, ks.Spec.DependsOn, readyExprs); msg != "" {
		return waiting(syncv1.ReasonDependencyNotReady, msg)
	}
	ref := ks.Spec.SourceRef
	srcKey := types.NamespacedName{Namespace: index.NamespaceOr(ref.Namespace, ks.Namespace), Name: ref.Name}
	artifact, ok := r.artifact(ref.Kind, srcKey)
	if !ok {
		// The artifact store is in memory: after a restart the source
		// fetches a revision its status already shows, so no event would
		// wake this Kustomization.
		v := waiting(syncv1.ReasonArtifactFailed, fmt.Sprintf("spec.sourceRef: %s %s has no artifact yet", ref.Kind, srcKey))
		v.after = artifactPoll
		return v
	}
	// Set before the build, as in Flux: the Events of a revision that
	// fails to build carry it, and an Alert's commit status lands on it.
	ks.Status.LastAttemptedRevision = artifact.Revision
	if w := r.waits.get(client.ObjectKeyFromObject(ks)); w.of(ks, artifact.Revision) {
		// Applied already: only its health is left to judge.
		return r.judge(ctx, ks, w)
	}
	act, err := r.actor(ctx, ks)
	if err != nil {
		return fail(syncv1.ReasonFailed, err)
	}
	vars, err := build.Variables(ctx, r.Client, ks)
	if err != nil {
		return fail(syncv1.ReasonBuildFailed, err)
	}
	dec, err := decrypt.ForKustomization(ctx, r.Client, ks)
	if err != nil {
		return fail(syncv1.ReasonDecryptionFailed, err)
	}
	buildOpts := build.ForKustomization(ks, vars)
	if dec != nil {
		buildOpts.Decrypter = dec
	}
	objs, err := build.Build(artifact.Files, buildOpts)
	if errors.As(err, new(*decrypt.Error)) {
		// Nothing is applied: the rest of the revision may need what
		// could not be decrypted.
		return fail(syncv1.ReasonDecryptionFailed, err)
	}
	if err != nil {
		return fail(syncv1.ReasonBuildFailed, err)
	}
	snap := r.newSnapshot(ctx, ks, artifact.Revision, objs)
	guard := act.Guard
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return fail(syncv1.ReasonFailed, err)
	}
	if err := guard.LeaveAlone(ctx, objs, targets); err != nil {
		return fail(syncv1.ReasonFailed, err)
	}
	opts := apply.ForKustomization(ks)
	checks, err := HealthChecks(ks)
	if err != nil {
		return fail(syncv1.ReasonFailed, err)
	}
	applyCtx, cancel := context.WithTimeout(ctx, max(ks.Spec.Interval.Duration, time.Minute))
	defer cancel()
	res, err := act.Applier.Apply(applyCtx, objs, opts)
	if res != nil {
		inv := &syncv1.ResourceInventory{Entries: []syncv1.ResourceRef{}}
		for _, e := range res.Inventory {
			inv.Entries = append(inv.Entries, syncv1.ResourceRef{ID: e.ID, Version: e.Version})
		}
		ks.Status.Inventory = inv
	}
	if err != nil {
		// The API server's message may quote a decrypted value.
		v := fail(syncv1.ReasonFailed, dec.RedactError(err))
		v.snapshot = snap
		return v
	}
	if ks.Status.LastAppliedRevision != artifact.Revision {
		r.Events.Eventf(ks, nil, corev1.EventTypeNormal, syncv1.ReasonSucceeded, "Apply", "Applied revision: %s\n%s", artifact.Revision, res.Changes.String())
	}
	ks.Status.LastAppliedRevision = artifact.Revision
	if ks.Spec.Wait {
		checks = res.Changes.ToObjMetadataSet().Union(checks)
	}
	w := &wait{
		generation: ks.Generation, revision: artifact.Revision, requestedAt: ks.Annotations[sourcev1.ReconcileRequestAnnotation],
		objs: objs, snapshot: snap, checks: checks, health: act.Health.WithExprs(healthExprs), guard: act.Guard, deadline: time.Now().Add(healthTimeout(ks)),
	}
	r.waits.put(client.ObjectKeyFromObject(ks), w)
	return r.judge(ctx, ks, w)
}

// judge says how what a Kustomization applied is doing: the Canaries of
// its workloads first, then the kstatus of the objects it waits for (all
// of them with spec.wait, and spec.healthChecks), read from the cache.
// While something is in progress it keeps the wait and asks to look again;
// otherwise it ends the wait.
func (r *Reconciler) judge(ctx context.Context, ks *syncv1.Kustomization, w *wait) verdict {
	key := client.ObjectKeyFromObject(ks)
	applied := "Applied revision " + w.revision
	end := func(v verdict) verdict {
		r.waits.drop(key)
		v.snapshot = w.snapshot
		return v
	}
	failed := func(reason string, err error) verdict {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, reason, "Apply", "%v", err)
		return end(verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}, retry: true})
	}
	guard := w.guard
	targets, err := guard.Targets(ctx, w.objs)
	if err != nil {
		return failed(syncv1.ReasonFailed, err)
	}
	progressing, canaryFailed, err := guard.Health(ctx, w.objs, targets)
	switch {
	case err != nil:
		return failed(syncv1.ReasonFailed, err)
	case canaryFailed != "":
		// Not retried: the next commit starts afresh.
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, handoff.ReasonCanaryFailed, "Apply", "%s", canaryFailed)
		return end(verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: handoff.ReasonCanaryFailed, Message: canaryFailed}, stalled: true})
	}
	rep, err := w.health.Check(ctx, targets.Unreleased(w.checks))
	switch {
	case err != nil:
		return failed(syncv1.ReasonHealthCheckFailed, fmt.Errorf("health check: %w", err))
	case len(rep.Failed) > 0:
		return failed(syncv1.ReasonHealthCheckFailed, fmt.Errorf("health check failed: [%s]", rep.Problems()))
	case len(rep.InProgress) > 0 && !time.Now().Before(w.deadline):
		return failed(syncv1.ReasonHealthCheckFailed, fmt.Errorf("health check: timeout waiting for: [%s]", rep.Problems()))
	case len(rep.InProgress) > 0:
		v := verdict{ready: metav1.Condition{Status: metav1.ConditionUnknown, Reason: handoff.ReasonProgressing, Message: applied + "; waiting for: " + rep.Waiting()}}
		v.after = min(w.nextPoll(), time.Until(w.deadline)+time.Millisecond)
		return v
	case progressing != "":
		// The Canary's status changes wake this Kustomization; a remote
		// cluster's Canaries are not watched, so those are looked at again.
		v := verdict{ready: metav1.Condition{Status: metav1.ConditionUnknown, Reason: handoff.ReasonProgressing, Message: applied + "; " + progressing}}
		if ks.Spec.KubeConfig != nil {
			v.after = healthPoll
		}
		return v
	}
	return end(verdict{ready: metav1.Condition{Status: metav1.ConditionTrue, Reason: syncv1.ReasonSucceeded, Message: "Applied revision: " + w.revision}})
}

func (r *Reconciler) guard() handoff.Guard {
	return handoff.Guard{Client: r.Client, APIReader: r.APIReader, ConfigTracking: r.ConfigTracking}
}

// Actor applies and judges health as one account, on one cluster.
type Actor struct {
	Applier *apply.Applier
	Health  *health.Checker
	// Guard hands the workloads over to the Canaries of the cluster the
	// Actor applies to.
	Guard handoff.Guard
}

// actor is the operator's own Actor, or one impersonating the
// Kustomization's ServiceAccount, on this cluster or on the remote one
// of spec.kubeConfig.
func (r *Reconciler) actor(ctx context.Context, ks *syncv1.Kustomization) (Actor, error) {
	account := r.account(ks)
	if ks.Spec.KubeConfig != nil {
		return r.remoteActor(ctx, ks, account)
	}
	if account == "" {
		return Actor{Applier: r.Applier, Health: r.Health, Guard: r.guard()}, nil
	}
	if r.Impersonator == nil {
		return Actor{}, fmt.Errorf("spec.serviceAccountName: %s cannot be impersonated: the operator runs without impersonation", account)
	}
	act, err := r.Impersonator.As(types.NamespacedName{Namespace: ks.Namespace, Name: account})
	if err != nil {
		return Actor{}, err
	}
	act.Guard = r.guard()
	return act, nil
}

// HealthChecks are the objects of spec.healthChecks.
func HealthChecks(ks *syncv1.Kustomization) (object.ObjMetadataSet, error) {
	var set object.ObjMetadataSet
	for i, hc := range ks.Spec.HealthChecks {
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("spec.healthChecks[%d].apiVersion: %w", i, err)
		}
		set = append(set, object.ObjMetadata{
			Namespace: index.NamespaceOr(hc.Namespace, ks.Namespace),
			Name:      hc.Name,
			GroupKind: schema.GroupKind{Group: syncv1.SluiceGroup(gv.Group), Kind: hc.Kind},
		})
	}
	return set, nil
}

// healthTimeout bounds the wait for health: spec.timeout, or the
// interval, as in Flux.
func healthTimeout(ks *syncv1.Kustomization) time.Duration {
	if ks.Spec.Timeout != nil {
		return ks.Spec.Timeout.Duration
	}
	return ks.Spec.Interval.Duration
}
