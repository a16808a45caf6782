package kustomization_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/controlplane"
)

// TestDeletingAKustomizationDeletesWhatItAppliedAsItsDeletionPolicySays
// deletes Kustomizations of each deletionPolicy and checks what is left
// of what they applied, as Flux does it.
func TestDeletingAKustomizationDeletesWhatItAppliedAsItsDeletionPolicySays(t *testing.T) {
	startControllers(t)
	tests := []struct {
		name    string
		policy  string
		prune   bool
		suspend bool
		// account applies as a ServiceAccount that is deleted before the
		// Kustomization, as when their namespace goes.
		account bool
		// held applies a ConfigMap whose deletion a finalizer holds.
		held    bool
		deleted bool
	}{
		{"MirrorPrune, the default, deletes it when prune is set", "", true, false, false, false, true},
		{"MirrorPrune without prune leaves it", syncv1.DeletionPolicyMirrorPrune, false, false, false, false, false},
		{"Delete deletes it even without prune", syncv1.DeletionPolicyDelete, false, false, false, false, true},
		{"WaitForTermination deletes it", syncv1.DeletionPolicyWaitForTermination, true, false, false, false, true},
		{"Orphan leaves it even with prune", syncv1.DeletionPolicyOrphan, true, false, false, false, false},
		{"a suspended Kustomization leaves it even with Delete", syncv1.DeletionPolicyDelete, true, true, false, false, false},
		{"a Kustomization whose ServiceAccount is gone leaves it, with a Warning, and goes", syncv1.DeletionPolicyDelete, true, false, true, false, false},
		{"WaitForTermination lets go at its timeout, with a Warning", syncv1.DeletionPolicyWaitForTermination, true, false, false, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := fmt.Sprintf("deletion-%d", i)
			manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
			if tt.held {
				manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, finalizers: [sluice.test/hold]}\ndata: {a: b}\n"
				t.Cleanup(func() { release(t, ns, "settings") })
			}
			_, revision := tenant(t, ns, map[string]string{"app/settings.yaml": manifest})
			account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}}
			if tt.account {
				create(t, account, &rbacv1.Role{
					ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
					Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}},
				}, &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
					RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
					Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}},
				})
			}
			ks := kustomization("app", "app", func(ks *syncv1.Kustomization) {
				ks.Namespace = ns
				ks.Spec.TargetNamespace = ns
				ks.Spec.Prune, ks.Spec.DeletionPolicy = tt.prune, tt.policy
				if tt.account {
					ks.Spec.ServiceAccountName = account.Name
				}
				if tt.held {
					ks.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
				}
			})
			create(t, ks)
			waitFor(t, client.ObjectKeyFromObject(ks), readyAt(revision))
			if tt.suspend {
				controlplane.Eventually(t, 10*time.Second, "suspended", func(ctx context.Context) (bool, string) {
					if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ks), ks); err != nil {
						return false, err.Error()
					}
					ks.Spec.Suspend = true
					err := cp.Client.Update(ctx, ks)
					return err == nil, fmt.Sprint(err)
				})
			}
			if tt.account {
				if err := cp.Client.Delete(t.Context(), account); err != nil {
					t.Fatal(err)
				}
			}
			if err := cp.Client.Delete(t.Context(), ks); err != nil {
				t.Fatal(err)
			}
			controlplane.Eventually(t, 30*time.Second, "the Kustomization gone", func(ctx context.Context) (bool, string) {
				err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ks), &syncv1.Kustomization{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			// The finalizer goes only once the deletion was asked for, so
			// what is still there now stays.
			cm := &corev1.ConfigMap{}
			err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm)
			switch {
			case tt.deleted && err == nil && cm.DeletionTimestamp.IsZero():
				t.Fatal("the ConfigMap it applied is still there")
			case !tt.deleted && err != nil:
				t.Fatalf("the ConfigMap it applied is gone: %v", err)
			}
			if tt.held {
				controlplane.Eventually(t, 10*time.Second, "a Warning Event naming the wait", func(ctx context.Context) (bool, string) {
					return warned(ctx, ns, "app", syncv1.ReasonFailed, "WaitForTermination")
				})
				return
			}
			if tt.policy == syncv1.DeletionPolicyWaitForTermination && !apierrors.IsNotFound(err) {
				t.Fatalf("WaitForTermination let the Kustomization go before its ConfigMap: %v", err)
			}
			if tt.account {
				controlplane.Eventually(t, 10*time.Second, "a Warning Event naming the gone ServiceAccount", func(ctx context.Context) (bool, string) {
					return warned(ctx, ns, "app", syncv1.ReasonFailed, "ServiceAccount "+ns+"/deployer is gone")
				})
			}
		})
	}
}

// release removes the finalizers of a ConfigMap a test held.
func release(t *testing.T, ns, name string) {
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		return
	}
	cm.Finalizers = nil
	if err := cp.Client.Update(context.Background(), cm); err != nil {
		t.Errorf("release ConfigMap %s/%s: %v", ns, name, err)
	}
}
