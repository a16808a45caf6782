package source

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
)

// statusFields are the fields every source kind's status has.
type statusFields struct {
	ObservedGeneration     *int64
	LastHandledReconcileAt *string
	Conditions             *[]metav1.Condition
}

// patchStatus records a reconcile of obj that earned ready: the
// generation it saw, the reconcile request it answered, and Ready, then
// writes the status once, as a patch from before.
func patchStatus(ctx context.Context, c client.Client, obj, before client.Object, kind string, fields statusFields, ready metav1.Condition) error {
	*fields.ObservedGeneration = obj.GetGeneration()
	if v, ok := obj.GetAnnotations()[sourcev1.ReconcileRequestAnnotation]; ok {
		*fields.LastHandledReconcileAt = v
	}
	ready.ObservedGeneration = obj.GetGeneration()
	meta.SetStatusCondition(fields.Conditions, ready)
	meta.RemoveStatusCondition(fields.Conditions, "Reconciling")
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patch %s %s status: %w", kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}
