package kustomization

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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
	// With the optimistic lock, a finalizer another controller adds at
	// the same time is not lost: the merge patch replaces the list.
	patch := client.MergeFromWithOptions(ks.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(ks, syncv1.KustomizationFinalizer)
	if err := r.Client.Patch(ctx, ks, patch); err != nil {
		return fmt.Errorf("add the finalizer of Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	return nil
}

// finalize deletes what a Kustomization being deleted applied, as its
// deletionPolicy says, then lets it go. A suspended Kustomization, or one
// whose policy is Orphan (or MirrorPrune without prune), leaves it all.
// As in Flux, two things let it go without the deletion, with a Warning
// Event naming what is left: a ServiceAccount to impersonate that is
// gone (its namespace being deleted would otherwise stay Terminating for
// ever), and WaitForTermination's timeout.
func (r *Reconciler) finalize(ctx context.Context, ks *syncv1.Kustomization) error {
	if !controllerutil.ContainsFinalizer(ks, syncv1.KustomizationFinalizer) {
		return nil
	}
	if deletesInventory(ks) {
		if err := r.deleteInventory(ctx, ks); err != nil {
			return err
		}
	}
	patch := client.MergeFromWithOptions(ks.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(ks, syncv1.KustomizationFinalizer)
	if err := r.Client.Patch(ctx, ks, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove the finalizer of Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	return nil
}

// deleteInventory deletes what ks applied. Its error keeps the finalizer,
// to try again.
func (r *Reconciler) deleteInventory(ctx context.Context, ks *syncv1.Kustomization) error {
	warn := func(format string, args ...any) {
		r.Events.Eventf(ks, nil, corev1.EventTypeWarning, syncv1.ReasonFailed, "Delete", format, args...)
	}
	var entries []apply.Entry
	var ids []string
	for _, e := range ks.Status.Inventory.Entries {
		entries = append(entries, apply.Entry{ID: e.ID, Version: e.Version})
		ids = append(ids, e.ID)
	}
	if account := r.account(ks); account != "" && ks.Spec.KubeConfig == nil {
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: ks.Namespace, Name: account}, &corev1.ServiceAccount{})
		if apierrors.IsNotFound(err) {
			warn("spec.serviceAccountName: ServiceAccount %s/%s is gone, so what the Kustomization applied is left: %s", ks.Namespace, account, strings.Join(ids, ", "))
			return nil
		}
	}
	act, err := r.actor(ctx, ks)
	if err != nil {
		warn("%v", err)
		return err
	}
	var wait time.Duration
	if ks.Spec.DeletionPolicy == syncv1.DeletionPolicyWaitForTermination {
		wait = healthTimeout(ks)
	}
	deleted, err := act.Applier.Delete(ctx, entries, client.ObjectKeyFromObject(ks), wait)
	if deleted != nil && len(deleted.Entries) > 0 {
		r.Events.Eventf(ks, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted with the Kustomization:\n%s", deleted.String())
	}
	switch {
	case errors.Is(err, apply.ErrWaitTimeout):
		warn("spec.deletionPolicy WaitForTermination: %v; the Kustomization is let go", err)
		return nil
	case err != nil:
		warn("%v", err)
		return err
	}
	return nil
}

// account is the ServiceAccount the Kustomization acts as; empty for the
// operator's own.
func (r *Reconciler) account(ks *syncv1.Kustomization) string {
	if ks.Spec.ServiceAccountName != "" {
		return ks.Spec.ServiceAccountName
	}
	return r.DefaultServiceAccount
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
