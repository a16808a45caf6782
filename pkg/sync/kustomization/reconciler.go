// Package kustomization is the Kustomization controller of the sync core:
// it builds a source artifact with pkg/sync/build, applies it with
// pkg/sync/apply, and reports the revision, the inventory and the outcome
// in status. Dependencies are event-driven: a Kustomization that turns
// Ready requeues its dependents at once.
package kustomization

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sync.sluice.dev,resources=kustomizations,verbs=get;list;watch
// +kubebuilder:rbac:groups=sync.sluice.dev,resources=kustomizations/status,verbs=get;update;patch

// EventRecorder records Kubernetes events (events.k8s.io).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Condition reasons of a Kustomization, as in Flux.
const (
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonFailed             = "ReconciliationFailed"
	ReasonBuildFailed        = "BuildFailed"
	ReasonHealthCheckFailed  = "HealthCheckFailed"
	ReasonArtifactFailed     = "ArtifactFailed"
	ReasonDependencyNotReady = "DependencyNotReady"
)

// Reconciler applies Kustomizations.
type Reconciler struct {
	Client client.Client
	// APIReader reads the workloads just applied, which the cache may not
	// have yet; nil means Client.
	APIReader client.Reader
	Applier   *apply.Applier
	Sources   *source.Store
	Events    EventRecorder
	// Impersonator applies as spec.serviceAccountName; nil refuses
	// Kustomizations that name one.
	Impersonator *Impersonator
	// Workers is the number of Kustomizations applied at once; 0 means 1.
	Workers int
	// DefaultServiceAccount is impersonated, in the Kustomization's
	// namespace, when spec.serviceAccountName is empty; empty means the
	// operator's own account.
	DefaultServiceAccount string
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
}

// artifactPoll is how often a Kustomization looks for an artifact not
// fetched yet.
const artifactPoll = 2 * time.Second

// SetupWithManager registers the controller. A Kustomization is applied
// when its spec changes, when its source has a new artifact, when one it
// depends on changes, and at its interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx, indexer := context.Background(), mgr.GetFieldIndexer()
	if err := index.Add(ctx, indexer, &syncv1.Kustomization{}, index.Source, sourceKeys); err != nil {
		return err
	}
	if err := index.Add(ctx, indexer, &syncv1.Kustomization{}, index.DependsOn, func(ks *syncv1.Kustomization) []types.NamespacedName {
		return index.Dependencies(ks.Namespace, ks.Spec.DependsOn)
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &syncv1.KustomizationList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		For(&syncv1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.Source))).
		Watches(&syncv1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, index.DependsOn))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(handoff.ByCanary(mgr.GetClient(), apply.OwnerGroup+"/name", apply.OwnerGroup+"/namespace"))).
		Complete(r)
}

// sourceKeys names the GitRepository a Kustomization is built from.
func sourceKeys(ks *syncv1.Kustomization) []types.NamespacedName {
	ref := ks.Spec.SourceRef
	if ref.Kind != "GitRepository" {
		return nil
	}
	return []types.NamespacedName{{Namespace: namespaceOr(ref.Namespace, ks.Namespace), Name: ref.Name}}
}

func namespaceOr(ns, fallback string) string {
	if ns == "" {
		return fallback
	}
	return ns
}

// Reconcile applies one Kustomization and writes its status once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ks := &syncv1.Kustomization{}
	if err := r.Client.Get(ctx, req.NamespacedName, ks); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ks.Spec.Suspend {
		return ctrl.Result{}, nil
	}
	before := ks.DeepCopy()
	v := r.reconcile(ctx, ks)
	ks.Status.ObservedGeneration = ks.Generation
	if at, ok := ks.Annotations[sourcev1.ReconcileRequestAnnotation]; ok {
		ks.Status.LastHandledReconcileAt = at
	}
	status.SetReady(&ks.Status.Conditions, v.ready, v.stalled, ks.Generation)
	if err := r.Client.Status().Patch(ctx, ks, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patch Kustomization %s status: %w", req.NamespacedName, err)
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
		stalled := reason == ReasonBuildFailed || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}, retry: true, stalled: stalled}
	}
	waiting := func(reason, message string) verdict {
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: message}, retry: true}
	}
	if msg := status.DependencyNotReady(ctx, r.Client, index.Dependencies(ks.Namespace, ks.Spec.DependsOn), func() *syncv1.Kustomization { return &syncv1.Kustomization{} }); msg != "" {
		return waiting(ReasonDependencyNotReady, msg)
	}
	ref := ks.Spec.SourceRef
	srcKey := types.NamespacedName{Namespace: namespaceOr(ref.Namespace, ks.Namespace), Name: ref.Name}
	artifact, ok := r.Sources.Get(srcKey)
	if !ok {
		// The artifact store is in memory: after a restart the source
		// fetches a revision its status already shows, so no event would
		// wake this Kustomization.
		v := waiting(ReasonArtifactFailed, fmt.Sprintf("spec.sourceRef: %s %s has no artifact yet", ref.Kind, srcKey))
		v.after = artifactPoll
		return v
	}
	applier, err := r.applier(ks)
	if err != nil {
		return fail(ReasonFailed, err)
	}
	vars, err := Variables(ctx, r.Client, ks)
	if err != nil {
		return fail(ReasonBuildFailed, err)
	}
	objs, err := build.Build(artifact.Files, BuildOptions(ks, vars))
	if err != nil {
		return fail(ReasonBuildFailed, err)
	}
	guard := handoff.Guard{Client: r.Client, APIReader: r.APIReader}
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return fail(ReasonFailed, err)
	}
	if err := guard.LeaveAlone(ctx, objs, targets); err != nil {
		return fail(ReasonFailed, err)
	}
	ks.Status.LastAttemptedRevision = artifact.Revision
	opts, err := ApplyOptions(ks)
	if err != nil {
		return fail(ReasonFailed, err)
	}
	ctx, cancel := context.WithTimeout(ctx, max(ks.Spec.Interval.Duration+opts.Timeout, time.Minute))
	defer cancel()
	res, err := applier.Apply(ctx, objs, opts)
	if res != nil {
		inv := &syncv1.ResourceInventory{Entries: []syncv1.ResourceRef{}}
		for _, e := range res.Inventory {
			inv.Entries = append(inv.Entries, syncv1.ResourceRef{ID: e.ID, Version: e.Version})
		}
		ks.Status.Inventory = inv
	}
	switch {
	case err != nil && res != nil:
		return fail(ReasonHealthCheckFailed, err)
	case err != nil:
		return fail(ReasonFailed, err)
	}
	if ks.Status.LastAppliedRevision != artifact.Revision {
		r.Events.Eventf(ks, nil, corev1.EventTypeNormal, ReasonSucceeded, "Apply", "Applied revision: %s\n%s", artifact.Revision, res.Changes.String())
	}
	ks.Status.LastAppliedRevision = artifact.Revision
	progressing, failed, err := guard.Health(ctx, objs, targets)
	switch {
	case err != nil:
		return fail(ReasonFailed, err)
	case failed != "":
		// Not retried: the next commit starts afresh.
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, handoff.ReasonCanaryFailed, "Apply", "%s", failed)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: handoff.ReasonCanaryFailed, Message: failed}, stalled: true}
	case progressing != "":
		// The Canary's status changes wake this Kustomization.
		return verdict{ready: metav1.Condition{Status: metav1.ConditionUnknown, Reason: handoff.ReasonProgressing, Message: "Applied revision " + artifact.Revision + "; " + progressing}}
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonSucceeded, Message: "Applied revision: " + artifact.Revision}}
}

// applier is the operator's Applier, or one impersonating the
// Kustomization's ServiceAccount.
func (r *Reconciler) applier(ks *syncv1.Kustomization) (*apply.Applier, error) {
	account := ks.Spec.ServiceAccountName
	if account == "" {
		account = r.DefaultServiceAccount
	}
	if account == "" {
		return r.Applier, nil
	}
	if r.Impersonator == nil {
		return nil, fmt.Errorf("spec.serviceAccountName: %s cannot be impersonated: the operator runs without impersonation", account)
	}
	return r.Impersonator.Applier(types.NamespacedName{Namespace: ks.Namespace, Name: account})
}

// ApplyOptions turns the spec into apply options. The health wait is
// bounded by spec.timeout, or the interval. Exported, with BuildOptions
// and Variables, so that `sluicectl diff` previews exactly what the
// operator would apply.
func ApplyOptions(ks *syncv1.Kustomization) (apply.Options, error) {
	opts := apply.Options{Owner: client.ObjectKeyFromObject(ks), Force: ks.Spec.Force, Prune: ks.Spec.Prune, Wait: ks.Spec.Wait, Timeout: ks.Spec.Interval.Duration}
	if ks.Spec.Timeout != nil {
		opts.Timeout = ks.Spec.Timeout.Duration
	}
	if inv := ks.Status.Inventory; inv != nil {
		for _, e := range inv.Entries {
			opts.Previous = append(opts.Previous, apply.Entry{ID: e.ID, Version: e.Version})
		}
	}
	for i, hc := range ks.Spec.HealthChecks {
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return opts, fmt.Errorf("spec.healthChecks[%d].apiVersion: %w", i, err)
		}
		opts.HealthChecks = append(opts.HealthChecks, object.ObjMetadata{
			Namespace: namespaceOr(hc.Namespace, ks.Namespace),
			Name:      hc.Name,
			GroupKind: schema.GroupKind{Group: gv.Group, Kind: hc.Kind},
		})
	}
	return opts, nil
}

// Variables merges the postBuild substituteFrom, in order, under
// substitute, reading the ConfigMaps and Secrets through c.
func Variables(ctx context.Context, c client.Reader, ks *syncv1.Kustomization) (map[string]string, error) {
	pb := ks.Spec.PostBuild
	if pb == nil {
		return nil, nil
	}
	vars := map[string]string{}
	for i, ref := range pb.SubstituteFrom {
		data, err := substituteData(ctx, c, ks.Namespace, ref)
		if err != nil {
			return nil, fmt.Errorf("spec.postBuild.substituteFrom[%d]: %s %s: %w", i, ref.Kind, ref.Name, err)
		}
		maps.Copy(vars, data)
	}
	maps.Copy(vars, pb.Substitute)
	return vars, nil
}

// substituteData reads the variables of a ConfigMap or Secret; a missing
// optional one has none.
func substituteData(ctx context.Context, c client.Reader, namespace string, ref syncv1.SubstituteReference) (map[string]string, error) {
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	get := func(obj client.Object) error {
		if err := c.Get(ctx, key, obj); err != nil && (!apierrors.IsNotFound(err) || !ref.Optional) {
			return err
		}
		return nil
	}
	if ref.Kind == "Secret" {
		secret := &corev1.Secret{}
		if err := get(secret); err != nil {
			return nil, err
		}
		data := map[string]string{}
		for k, v := range secret.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	cm := &corev1.ConfigMap{}
	if err := get(cm); err != nil {
		return nil, err
	}
	return cm.Data, nil
}

// BuildOptions turns the spec into build options, with the variables
// of Variables.
func BuildOptions(ks *syncv1.Kustomization, vars map[string]string) build.Options {
	opts := build.Options{Path: ks.Spec.Path, TargetNamespace: ks.Spec.TargetNamespace, Components: ks.Spec.Components, Substitute: vars}
	opts.Patches, opts.Images = build.PatchesAndImages(ks.Spec.Patches, ks.Spec.Images)
	return opts
}
