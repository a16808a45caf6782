// Package status writes the kstatus conditions of the sync core's
// objects: Ready, and beside it Reconciling or Stalled, so that kstatus
// (and kubectl wait, Flux's CLI, Argo CD) reads them the same way.
package status

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReasonProgressingWithRetry is the Reconciling reason of a failure that
// the next retry may fix.
const ReasonProgressingWithRetry = "ProgressingWithRetry"

// SetReady writes Ready and the kstatus pair that goes with it: an object
// on its way (waiting, or failing in a way a retry may fix) is
// Reconciling; one that cannot get further without a change is Stalled,
// which kstatus reads as Failed.
func SetReady(conditions *[]metav1.Condition, ready metav1.Condition, stalled bool, generation int64) {
	ready.Type, ready.ObservedGeneration = "Ready", generation
	meta.SetStatusCondition(conditions, ready)
	progress := metav1.Condition{Status: metav1.ConditionTrue, ObservedGeneration: generation, Reason: ready.Reason, Message: ready.Message}
	switch {
	case ready.Status == metav1.ConditionTrue:
		meta.RemoveStatusCondition(conditions, "Reconciling")
		meta.RemoveStatusCondition(conditions, "Stalled")
	case stalled:
		progress.Type = "Stalled"
		meta.SetStatusCondition(conditions, progress)
		meta.RemoveStatusCondition(conditions, "Reconciling")
	default:
		progress.Type = "Reconciling"
		if ready.Status == metav1.ConditionFalse {
			progress.Reason = ReasonProgressingWithRetry
		}
		meta.SetStatusCondition(conditions, progress)
		meta.RemoveStatusCondition(conditions, "Stalled")
	}
}

// Object is a sync kind as Ready reads it.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// Ready reports whether o is Ready for its current generation: a change
// not acted on yet does not count as ready.
func Ready(o Object) bool {
	c := meta.FindStatusCondition(o.GetConditions(), "Ready")
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == o.GetGeneration()
}

// DependencyNotReady says why the first of keys is not Ready, reading
// each into a new object from newObject; it is "" when all are.
func DependencyNotReady[T Object](ctx context.Context, c client.Reader, keys []types.NamespacedName, newObject func() T) string {
	for _, key := range keys {
		dep := newObject()
		if err := c.Get(ctx, key, dep); err != nil {
			return fmt.Sprintf("dependency %s: %v", key, err)
		}
		if !Ready(dep) {
			return fmt.Sprintf("dependency %s is not ready", key)
		}
	}
	return ""
}
