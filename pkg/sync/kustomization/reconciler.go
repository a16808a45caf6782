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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	kustomize "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/build"
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
}

// SetupWithManager registers the controller. A Kustomization is applied
// when its spec changes, when its source has a new artifact, when one it
// depends on changes, and at its interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		For(&syncv1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.bySource)).
		Watches(&syncv1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(r.dependents)).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(r.byCanary)).
		Complete(r)
}

// bySource maps a GitRepository to the Kustomizations built from it.
func (r *Reconciler) bySource(ctx context.Context, o client.Object) []reconcile.Request {
	return r.matching(ctx, func(ks *syncv1.Kustomization) bool {
		ref := ks.Spec.SourceRef
		return ref.Kind == "GitRepository" && ref.Name == o.GetName() && namespaceOr(ref.Namespace, ks.Namespace) == o.GetNamespace()
	})
}

// dependents maps a Kustomization to those that depend on it.
func (r *Reconciler) dependents(ctx context.Context, o client.Object) []reconcile.Request {
	return r.matching(ctx, func(ks *syncv1.Kustomization) bool {
		for _, d := range ks.Spec.DependsOn {
			if d.Name == o.GetName() && namespaceOr(d.Namespace, ks.Namespace) == o.GetNamespace() {
				return true
			}
		}
		return false
	})
}

func (r *Reconciler) matching(ctx context.Context, keep func(*syncv1.Kustomization) bool) []reconcile.Request {
	var list syncv1.KustomizationList
	if err := r.Client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Kustomizations")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if keep(&list.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
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
	ready, ok := r.reconcile(ctx, ks)
	ks.Status.ObservedGeneration = ks.Generation
	ready.Type, ready.ObservedGeneration = "Ready", ks.Generation
	meta.SetStatusCondition(&ks.Status.Conditions, ready)
	if ready.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(&ks.Status.Conditions, "Stalled")
	}
	if err := r.Client.Status().Patch(ctx, ks, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patch Kustomization %s status: %w", req.NamespacedName, err)
	}
	after := ks.Spec.Interval.Duration
	if !ok && ks.Spec.RetryInterval != nil {
		after = ks.Spec.RetryInterval.Duration
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// reconcile runs the steps and returns the Ready condition they earn.
func (r *Reconciler) reconcile(ctx context.Context, ks *syncv1.Kustomization) (metav1.Condition, bool) {
	fail := func(reason string, err error) (metav1.Condition, bool) {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, reason, "Apply", "%v", err)
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}, false
	}
	for _, d := range ks.Spec.DependsOn {
		key := types.NamespacedName{Namespace: namespaceOr(d.Namespace, ks.Namespace), Name: d.Name}
		dep := &syncv1.Kustomization{}
		if err := r.Client.Get(ctx, key, dep); err != nil {
			return metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonDependencyNotReady, Message: fmt.Sprintf("dependency %s: %v", key, err)}, false
		}
		if !meta.IsStatusConditionTrue(dep.Status.Conditions, "Ready") || dep.Status.ObservedGeneration != dep.Generation {
			return metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonDependencyNotReady, Message: fmt.Sprintf("dependency %s is not ready", key)}, false
		}
	}
	ref := ks.Spec.SourceRef
	srcKey := types.NamespacedName{Namespace: namespaceOr(ref.Namespace, ks.Namespace), Name: ref.Name}
	artifact, ok := r.Sources.Get(srcKey)
	if !ok {
		return fail(ReasonArtifactFailed, fmt.Errorf("spec.sourceRef: %s %s has no artifact yet", ref.Kind, srcKey))
	}
	vars, err := r.variables(ctx, ks)
	if err != nil {
		return fail(ReasonBuildFailed, err)
	}
	objs, err := build.Build(artifact.Files, buildOptions(ks, vars))
	if err != nil {
		return fail(ReasonBuildFailed, err)
	}
	targets, err := r.canaryTargets(ctx, objs)
	if err != nil {
		return fail(ReasonFailed, err)
	}
	if err := r.leaveCanaryFieldsAlone(ctx, objs, targets); err != nil {
		return fail(ReasonFailed, err)
	}
	ks.Status.LastAttemptedRevision = artifact.Revision
	opts := apply.Options{Owner: client.ObjectKeyFromObject(ks), Force: ks.Spec.Force, Prune: ks.Spec.Prune}
	if inv := ks.Status.Inventory; inv != nil {
		for _, e := range inv.Entries {
			opts.Previous = append(opts.Previous, apply.Entry{ID: e.ID, Version: e.Version})
		}
	}
	if ks.Spec.Wait {
		opts.Wait = ks.Spec.Interval.Duration
		if ks.Spec.Timeout != nil {
			opts.Wait = ks.Spec.Timeout.Duration
		}
	}
	timeout := ks.Spec.Interval.Duration + opts.Wait
	ctx, cancel := context.WithTimeout(ctx, max(timeout, time.Minute))
	defer cancel()
	res, err := r.Applier.Apply(ctx, objs, opts)
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
	waiting, failed, err := r.canaryHealth(ctx, objs, targets)
	switch {
	case err != nil:
		return fail(ReasonFailed, err)
	case failed != "":
		// Not retried: the next commit starts afresh.
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, ReasonCanaryFailed, "Apply", "%s", failed)
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonCanaryFailed, Message: failed}, true
	case waiting != "":
		// The Canary's status changes wake this Kustomization.
		return metav1.Condition{Status: metav1.ConditionUnknown, Reason: ReasonProgressing, Message: "Applied revision " + artifact.Revision + "; " + waiting}, true
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonSucceeded, Message: "Applied revision: " + artifact.Revision}, true
}

// variables merges substituteFrom, in order, under substitute.
func (r *Reconciler) variables(ctx context.Context, ks *syncv1.Kustomization) (map[string]string, error) {
	pb := ks.Spec.PostBuild
	if pb == nil {
		return nil, nil
	}
	vars := map[string]string{}
	for i, ref := range pb.SubstituteFrom {
		data, err := r.substituteData(ctx, ks.Namespace, ref)
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
func (r *Reconciler) substituteData(ctx context.Context, namespace string, ref syncv1.SubstituteReference) (map[string]string, error) {
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	get := func(obj client.Object) error {
		if err := r.Client.Get(ctx, key, obj); err != nil && (!apierrors.IsNotFound(err) || !ref.Optional) {
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

// buildOptions turns the spec into build options.
func buildOptions(ks *syncv1.Kustomization, vars map[string]string) build.Options {
	opts := build.Options{Path: ks.Spec.Path, TargetNamespace: ks.Spec.TargetNamespace, Components: ks.Spec.Components, Substitute: vars}
	for _, p := range ks.Spec.Patches {
		patch := kustomize.Patch{Patch: p.Patch}
		if t := p.Target; t != nil {
			patch.Target = &kustomize.Selector{
				ResId:              resid.ResId{Gvk: resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind}, Name: t.Name, Namespace: t.Namespace},
				AnnotationSelector: t.AnnotationSelector,
				LabelSelector:      t.LabelSelector,
			}
		}
		opts.Patches = append(opts.Patches, patch)
	}
	for _, img := range ks.Spec.Images {
		opts.Images = append(opts.Images, kustomize.Image{Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest})
	}
	return opts
}
