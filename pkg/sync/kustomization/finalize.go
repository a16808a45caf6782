package kustomization

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/apply"
)

// holdDeletion puts the finalizer on a Kustomization, so that its
// deletion waits for what it applied to be deleted as its deletionPolicy
// says.
func (r *Reconciler) holdDeletion(ctx context.Context, ks *syncv1.Kustomization) error {
	if controllerutil.ContainsFinalizer(ks, syncv1.KustomizationFinalizer) {
		return nil
	}
	patch := client.MergeFrom(ks.DeepCopy())
	controllerutil.AddFinalizer(ks, syncv1.KustomizationFinalizer)
	if err := r.Client.Patch(ctx, ks, patch); err != nil {
		return fmt.Errorf("add the finalizer of Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	return nil
}

// finalize deletes what a Kustomization being deleted applied, as its
// deletionPolicy says, then lets it go. A suspended Kustomization, or one
// whose policy is Orphan (or MirrorPrune without prune), leaves it all.
func (r *Reconciler) finalize(ctx context.Context, ks *syncv1.Kustomization) error {
	if !controllerutil.ContainsFinalizer(ks, syncv1.KustomizationFinalizer) {
		return nil
	}
	if deletesInventory(ks) {
		act, err := r.actor(ctx, ks)
		if err != nil {
			r.Events.Eventf(ks, nil, corev1.EventTypeWarning, syncv1.ReasonFailed, "Delete", "%v", err)
			return err
		}
		var entries []apply.Entry
		for _, e := range ks.Status.Inventory.Entries {
			entries = append(entries, apply.Entry{ID: e.ID, Version: e.Version})
		}
		var wait time.Duration
		if ks.Spec.DeletionPolicy == syncv1.DeletionPolicyWaitForTermination {
			wait = healthTimeout(ks)
		}
		deleted, err := act.Applier.Delete(ctx, entries, client.ObjectKeyFromObject(ks), wait)
		if err != nil {
			r.Events.Eventf(ks, nil, corev1.EventTypeWarning, syncv1.ReasonFailed, "Delete", "%v", err)
			return err
		}
		if deleted != nil && len(deleted.Entries) > 0 {
			r.Events.Eventf(ks, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted with the Kustomization:\n%s", deleted.String())
		}
	}
	patch := client.MergeFrom(ks.DeepCopy())
	controllerutil.RemoveFinalizer(ks, syncv1.KustomizationFinalizer)
	if err := r.Client.Patch(ctx, ks, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove the finalizer of Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	return nil
}

// deletesInventory says whether a Kustomization's deletion deletes what
// it applied, after Flux's rules.
func deletesInventory(ks *syncv1.Kustomization) bool {
	if ks.Spec.Suspend || ks.Status.Inventory == nil || len(ks.Status.Inventory.Entries) == 0 {
		return false
	}
	switch ks.Spec.DeletionPolicy {
	case syncv1.DeletionPolicyDelete, syncv1.DeletionPolicyWaitForTermination:
		return true
	case syncv1.DeletionPolicyOrphan:
		return false
	}
	return ks.Spec.Prune
}
