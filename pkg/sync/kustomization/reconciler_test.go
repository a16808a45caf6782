package kustomization

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// startControllers runs the GitRepository and Kustomization controllers
// until the test ends.
func startControllers(t *testing.T) {
	t.Helper()
	cp.StartManager(t, func(mgr ctrl.Manager) error {
		store := source.NewStore()
		git := &source.GitRepositoryReconciler{Client: mgr.GetClient(), Events: mgr.GetEventRecorder("test"), Store: store}
		ks := &Reconciler{
			Client: mgr.GetClient(), Applier: apply.New(mgr.GetClient()), Sources: store, Events: mgr.GetEventRecorder("test"),
			Impersonator: &Impersonator{Config: cp.Config, Scheme: cp.Scheme, Mapper: mgr.GetRESTMapper()},
		}
		if err := git.SetupWithManager(mgr); err != nil {
			return err
		}
		return ks.SetupWithManager(mgr)
	})
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func kustomization(name, path string, mutate func(*syncv1.Kustomization)) *syncv1.Kustomization {
	ks := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux"},
		Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      path, Prune: true,
			Interval: metav1.Duration{Duration: time.Hour}, RetryInterval: &metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(ks)
	}
	return ks
}

func waitReady(t *testing.T, name string, want func(*syncv1.Kustomization) bool) *syncv1.Kustomization {
	t.Helper()
	return waitFor(t, client.ObjectKey{Namespace: "flux", Name: name}, want)
}

func waitFor(t *testing.T, key client.ObjectKey, want func(*syncv1.Kustomization) bool) *syncv1.Kustomization {
	t.Helper()
	ks := &syncv1.Kustomization{}
	controlplane.Eventually(t, 30*time.Second, "Kustomization "+key.String(), func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, key, ks); err != nil {
			return false, err.Error()
		}
		return want(ks), fmt.Sprintf("status %+v", ks.Status)
	})
	return ks
}

func readyAt(revision string) func(*syncv1.Kustomization) bool {
	return func(ks *syncv1.Kustomization) bool {
		return meta.IsStatusConditionTrue(ks.Status.Conditions, "Ready") && ks.Status.LastAppliedRevision == revision
	}
}

func TestACommitIsAppliedPatchedSubstitutedAndPruned(t *testing.T) {
	s := gitserver.New(t)
	head := s.Commit(map[string]string{
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {cluster: \"${CLUSTER}\", mode: \"${MODE:=fast}\"}\n",
		"apps/extra.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n",
		"base/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
	})
	secret, repo := s.Source("flux", "repo", time.Second)
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "vars", Namespace: "flux"}, Data: map[string]string{"CLUSTER": "eu-1"}},
		secret, repo,
	)
	startControllers(t)
	// apps depends on base, which is created later: it waits, then goes
	// as soon as base is Ready, though its own retry is an hour away.
	create(t, kustomization("apps", "apps", func(ks *syncv1.Kustomization) {
		ks.Spec.TargetNamespace = "shop"
		ks.Spec.DependsOn = []syncv1.DependencyReference{{Name: "base"}}
		ks.Spec.PostBuild = &syncv1.PostBuild{SubstituteFrom: []syncv1.SubstituteReference{{Kind: "ConfigMap", Name: "vars"}}}
		ks.Spec.Patches = []syncv1.Patch{
			{Patch: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {patched: strategic}\n"},
			{Patch: `[{"op": "add", "path": "/data/json", "value": "6902"}]`, Target: &syncv1.Selector{Kind: "ConfigMap", Name: "settings"}},
		}
	}))
	waitReady(t, "apps", func(ks *syncv1.Kustomization) bool {
		c := meta.FindStatusCondition(ks.Status.Conditions, "Ready")
		return c != nil && c.Reason == ReasonDependencyNotReady
	})
	create(t, kustomization("base", "base", nil))
	revision := "main@sha1:" + head
	waitReady(t, "base", readyAt(revision))
	apps := waitReady(t, "apps", readyAt(revision))
	if apps.Status.Inventory == nil || len(apps.Status.Inventory.Entries) != 2 {
		t.Fatalf("inventory %+v", apps.Status.Inventory)
	}
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["cluster"] != "eu-1" || cm.Data["mode"] != "fast" || cm.Data["patched"] != "strategic" || cm.Data["json"] != "6902" {
		t.Fatalf("substituted data %v", cm.Data)
	}

	// A commit that removes a manifest prunes its object.
	next := s.Commit(map[string]string{"apps/extra.yaml": ""})
	waitReady(t, "apps", readyAt("main@sha1:"+next))
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "extra"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the removed ConfigMap is still there: %v", err)
	}

	// A bad manifest fails the apply by name and leaves the rest alone.
	bad := s.Commit(map[string]string{"apps/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n"})
	failed := waitReady(t, "apps", func(ks *syncv1.Kustomization) bool {
		return ks.Status.LastAttemptedRevision == "main@sha1:"+bad && meta.IsStatusConditionFalse(ks.Status.Conditions, "Ready")
	})
	if c := meta.FindStatusCondition(failed.Status.Conditions, "Ready"); c.Reason != ReasonFailed || !strings.Contains(c.Message, "ConfigMap/shop/Bad_Name") || !strings.Contains(c.Message, "metadata.name") {
		t.Fatalf("Ready %+v", c)
	}
	// The API server will refuse this revision every time: kstatus reads
	// the Kustomization as Failed, not as still in progress.
	if !meta.IsStatusConditionTrue(failed.Status.Conditions, "Stalled") || meta.FindStatusCondition(failed.Status.Conditions, "Reconciling") != nil {
		t.Fatalf("conditions %+v, want Stalled and not Reconciling", failed.Status.Conditions)
	}
	if failed.Status.LastAppliedRevision != "main@sha1:"+next {
		t.Fatalf("lastAppliedRevision %s moved on a failed apply", failed.Status.LastAppliedRevision)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "settings"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("a failed apply touched what was applied: %v", err)
	}
}

// tenant creates a namespace with a Git server's repository and returns
// the server.
func tenant(t *testing.T, ns string, files map[string]string) (*gitserver.Server, string) {
	t.Helper()
	s := gitserver.New(t)
	head := s.Commit(files)
	secret, repo := s.Source(ns, "repo", time.Hour)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, repo)
	return s, "main@sha1:" + head
}

func condition(ks *syncv1.Kustomization, typ string) *metav1.Condition {
	return meta.FindStatusCondition(ks.Status.Conditions, typ)
}

func TestAKustomizationAppliesOnlyWhatItsServiceAccountMay(t *testing.T) {
	const ns = "tenant"
	_, revision := tenant(t, ns, map[string]string{
		"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"app/creds.yaml":    "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {a: b}\n",
	})
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}, Rules: rules}
	create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}},
		role,
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}},
		},
	)
	startControllers(t)
	ks := kustomization("app", "app", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Spec.TargetNamespace, ks.Spec.ServiceAccountName = ns, ns, "deployer"
	})
	create(t, ks)
	key := client.ObjectKeyFromObject(ks)
	denied := waitFor(t, key, func(ks *syncv1.Kustomization) bool {
		return ks.Status.LastAttemptedRevision == revision && meta.IsStatusConditionFalse(ks.Status.Conditions, "Ready")
	})
	if c := condition(denied, "Ready"); !strings.Contains(c.Message, "Secret/tenant/creds") || !strings.Contains(c.Message, "system:serviceaccount:tenant:deployer") || !strings.Contains(c.Message, "forbidden") {
		t.Fatalf("Ready %+v, want the denied object and the account named", c)
	}
	if c := condition(denied, "Stalled"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Stalled %+v: RBAC denies the same apply until someone changes it", c)
	}
	// The dry run of the whole set failed: nothing was applied.
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Fatalf("an allowed object was applied from a denied set: %v", err)
	}

	// The tenant's admin grants Secrets and asks for a reconcile now.
	role.Rules[0].Resources = append(role.Rules[0].Resources, "secrets")
	if err := cp.Client.Update(t.Context(), role); err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"now"}}}`))
	if err := cp.Client.Patch(t.Context(), ks, patch); err != nil {
		t.Fatal(err)
	}
	applied := waitFor(t, key, readyAt(revision))
	if applied.Status.LastHandledReconcileAt != "now" || condition(applied, "Stalled") != nil || condition(applied, "Reconciling") != nil {
		t.Fatalf("status %+v", applied.Status)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "creds"}, &corev1.Secret{}); err != nil {
		t.Fatal(err)
	}
}

func TestAFailingHealthCheckIsReportedAndRetried(t *testing.T) {
	const ns = "health"
	_, revision := tenant(t, ns, map[string]string{
		"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		// This control plane runs no controllers: the Deployment is never
		// observed, so kstatus never calls it Current.
		"app/web.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: web:1}]}\n",
	})
	startControllers(t)
	tests := []struct {
		name   string
		mutate func(*syncv1.Kustomization)
		ready  bool
	}{
		{"a health check on a ConfigMap passes", func(ks *syncv1.Kustomization) {
			ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "settings", Namespace: ns}}
		}, true},
		{"a health check on a Deployment that never rolls out fails", func(ks *syncv1.Kustomization) {
			ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: ns}}
		}, false},
		{"wait fails on the Deployment too", func(ks *syncv1.Kustomization) { ks.Spec.Wait = true }, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := kustomization(fmt.Sprintf("app-%d", i), "app", func(ks *syncv1.Kustomization) {
				ks.Namespace, ks.Spec.TargetNamespace = ns, ns
				ks.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
				tt.mutate(ks)
			})
			create(t, ks)
			got := waitFor(t, client.ObjectKeyFromObject(ks), func(ks *syncv1.Kustomization) bool {
				return ks.Status.LastAttemptedRevision == revision && condition(ks, "Ready") != nil && condition(ks, "Ready").Status != metav1.ConditionUnknown
			})
			ready := condition(got, "Ready")
			if tt.ready {
				if ready.Status != metav1.ConditionTrue {
					t.Fatalf("Ready %+v", ready)
				}
				return
			}
			if ready.Status != metav1.ConditionFalse || ready.Reason != ReasonHealthCheckFailed || !strings.Contains(ready.Message, "Deployment/health/web") {
				t.Fatalf("Ready %+v, want HealthCheckFailed naming the Deployment", ready)
			}
			// A rollout may still finish: the Kustomization retries.
			if c := condition(got, "Reconciling"); c == nil || c.Reason != status.ReasonProgressingWithRetry || condition(got, "Stalled") != nil {
				t.Fatalf("conditions %+v, want Reconciling with retry and not Stalled", got.Status.Conditions)
			}
		})
	}
}
