package index

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/pkg/sync/status"
)

// ReadyExprs compiles the readyExpr of each of deps with cache, nil where
// a reference has none. The error names the spec.dependsOn entry that does
// not compile.
func ReadyExprs(cache *celexpr.Cache, deps []syncv1.DependencyReference) ([]*celexpr.Expression, error) {
	exprs := make([]*celexpr.Expression, len(deps))
	for i, d := range deps {
		if d.ReadyExpr == "" {
			continue
		}
		e, err := cache.Bool(d.ReadyExpr, "self", "dep")
		if err != nil {
			return nil, fmt.Errorf("spec.dependsOn[%d].readyExpr: %w", i, err)
		}
		exprs[i] = e
	}
	return exprs, nil
}

// Readiness checks the dependencies of one object.
type Readiness[T status.Object] struct {
	// Client reads the dependencies; its scheme names their kind.
	Client client.Client
	// New makes an empty object of the kind.
	New func() T
	// Additive checks the Ready condition of a dependency that has a
	// readyExpr too, as Flux's AdditiveCELDependencyCheck feature gate
	// does; by default the expression replaces it.
	Additive bool
}

// NotReady says why the first of self's dependencies deps is not ready,
// or "" when all are. A dependency is ready when it is Ready for its
// generation, or, when it has a readyExpr (exprs[i], from ReadyExprs), when
// the expression is true with self and dep, the dependency, as JSON
// objects. An expression that cannot be evaluated, such as one reading a
// field the dependency does not have yet, leaves it not ready, with the
// error.
func (r Readiness[T]) NotReady(ctx context.Context, self T, deps []syncv1.DependencyReference, exprs []*celexpr.Expression) string {
	var selfMap map[string]any
	for i, key := range Dependencies(self.GetNamespace(), deps) {
		dep := r.New()
		if err := r.Client.Get(ctx, key, dep); err != nil {
			return fmt.Sprintf("dependency %s: %v", key, err)
		}
		var expr *celexpr.Expression
		if i < len(exprs) {
			expr = exprs[i]
		}
		if expr == nil || r.Additive {
			if !status.Ready(dep) {
				return fmt.Sprintf("dependency %s is not ready", key)
			}
		}
		if expr == nil {
			continue
		}
		if selfMap == nil {
			m, err := r.toMap(self)
			if err != nil {
				return err.Error()
			}
			selfMap = m
		}
		depMap, err := r.toMap(dep)
		if err != nil {
			return err.Error()
		}
		ready, err := expr.Eval(ctx, map[string]any{"self": selfMap, "dep": depMap})
		switch {
		case err != nil:
			return fmt.Sprintf("dependency %s: spec.dependsOn[%d].readyExpr: %v", key, i, err)
		case !ready:
			return fmt.Sprintf("dependency %s is not ready: spec.dependsOn[%d].readyExpr is false", key, i)
		}
	}
	return ""
}

// toMap is o as the API server serves it, with its apiVersion and kind,
// which an object read with a typed client lacks.
func (r Readiness[T]) toMap(o T) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("convert %s to a map for readyExpr: %w", client.ObjectKeyFromObject(o), err)
	}
	if gvk, err := apiutil.GVKForObject(o, r.Client.Scheme()); err == nil {
		m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	}
	return m, nil
}

// DependencyChanged passes the updates of a dependency that its
// dependents may care about: a readyExpr may read any field, so every
// change counts, except the bookkeeping every reconcile writes
// (status.history's times and counts, lastHandledReconcileAt, and the
// object's resourceVersion and managed fields). Without this, each
// reconcile of a dependency would re-apply every dependent.
func DependencyChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, updated := bookkeepingless(e.ObjectOld), bookkeepingless(e.ObjectNew)
		return old == nil || updated == nil || !equality.Semantic.DeepEqual(old, updated)
	}}
}

// bookkeepingless is obj as unstructured without what DependencyChanged
// ignores; nil when it does not convert, which counts as a change.
func bookkeepingless(obj client.Object) map[string]any {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil
	}
	for _, path := range [][]string{
		{"metadata", "resourceVersion"}, {"metadata", "managedFields"},
		{"status", "history"}, {"status", "lastHandledReconcileAt"},
	} {
		unstructured.RemoveNestedField(u, path...)
	}
	return u
}

// SourceChanged passes the updates of a source that the objects built
// from it act on: a new artifact (its revision or digest), or a Ready
// status that changed, which wakes one waiting for the source. As
// Flux's SourceRevisionChangePredicate, it leaves out the rest of the
// source's own reconciles (a reconcile request handled, a condition's
// message), so that a HelmRelease or Kustomization is looked at again
// at its interval, not whenever its source's status moves; a kind that
// is not a source passes.
func SourceChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, ok := artifactOf(e.ObjectOld)
		updated, ok2 := artifactOf(e.ObjectNew)
		if !ok || !ok2 || (old == nil) != (updated == nil) {
			return true
		}
		if old != nil && (old.Revision != updated.Revision || old.Digest != updated.Digest) {
			return true
		}
		return readyStatus(e.ObjectOld) != readyStatus(e.ObjectNew)
	}}
}

// artifactOf is a source's artifact, nil before its first; ok is false
// for a kind that is not a source.
func artifactOf(obj client.Object) (artifact *sourcev1.Artifact, ok bool) {
	switch s := obj.(type) {
	case *sourcev1.GitRepository:
		return s.Status.Artifact, true
	case *sourcev1.OCIRepository:
		return s.Status.Artifact, true
	case *sourcev1.Bucket:
		return s.Status.Artifact, true
	case *sourcev1.HelmChart:
		return s.Status.Artifact, true
	}
	return nil, false
}

// readyStatus is the status of obj's Ready condition, empty when it has
// none or no conditions.
func readyStatus(obj client.Object) metav1.ConditionStatus {
	o, ok := obj.(status.Object)
	if !ok {
		return ""
	}
	if c := meta.FindStatusCondition(o.GetConditions(), "Ready"); c != nil {
		return c.Status
	}
	return ""
}
