package kustomization_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

// startControllers runs the operator as cmd/sluice builds it
// (operator.New), over every namespace, until the test ends. The tests of
// this package run one at a time.
func startControllers(t *testing.T, configure ...func(*operator.Options)) {
	t.Helper()
	inprocess.Start(t, cp.Config, "", testr.NewWithOptions(t, testr.Options{Verbosity: 0}), configure...)
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
		return c != nil && c.Reason == syncv1.ReasonDependencyNotReady
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
	if c := meta.FindStatusCondition(failed.Status.Conditions, "Ready"); c.Reason != syncv1.ReasonFailed || !strings.Contains(c.Message, "ConfigMap/shop/Bad_Name") || !strings.Contains(c.Message, "metadata.name") {
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

	// status.history holds one snapshot per digest and outcome, the
	// latest first, each with the revision it came from, as Flux's.
	h := failed.Status.History
	if len(h) != 3 || h[0].LastReconciledStatus != syncv1.ReasonFailed || h[0].Metadata["revision"] != "main@sha1:"+bad ||
		h[1].LastReconciledStatus != syncv1.ReasonSucceeded || h[1].Metadata["revision"] != "main@sha1:"+next ||
		h[2].Metadata["revision"] != revision || !strings.HasPrefix(h[0].Digest, "sha256:") || h[0].Digest == h[1].Digest {
		t.Fatalf("history %+v, want the failed, the pruning and the first apply, latest first", h)
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
	// A reconcile that something else queued (the source's own status
	// write) may apply first, once the Role allows it; the request is
	// answered by the next one.
	applied := waitFor(t, key, func(ks *syncv1.Kustomization) bool {
		return readyAt(revision)(ks) && ks.Status.LastHandledReconcileAt == "now"
	})
	if condition(applied, "Stalled") != nil || condition(applied, "Reconciling") != nil {
		t.Fatalf("status %+v", applied.Status)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "creds"}, &corev1.Secret{}); err != nil {
		t.Fatal(err)
	}
}

// deploymentYAML is a one-replica Deployment; a nodeSelector no node
// matches keeps it from ever rolling out.
func deploymentYAML(name, nodeSelector string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name + "}}\n" +
		"  template:\n    metadata: {labels: {app: " + name + "}}\n    spec: {" + nodeSelector + "containers: [{name: " + name + ", image: " + name + ":1}]}\n"
}

const (
	neverScheduled = "nodeSelector: {no-such-node: \"true\"}, "
	serviceYAML    = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
	settingsYAML   = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
)

func TestHealthIsJudgedByKstatusAsTheOperatorRuns(t *testing.T) {
	const ns = "health"
	_, revision := tenant(t, ns, map[string]string{
		"app/settings.yaml": settingsYAML,
		"app/service.yaml":  serviceYAML,
		"app/web.yaml":      deploymentYAML("web", ""),
		"stuck/stuck.yaml":  deploymentYAML("stuck", neverScheduled),
	})
	startControllers(t)
	tests := []struct {
		name   string
		path   string
		mutate func(*syncv1.Kustomization)
		ready  bool
	}{
		{"wait passes once the ConfigMap, Service and Deployment are ready", "app", func(ks *syncv1.Kustomization) { ks.Spec.Wait = true }, true},
		{"health checks on a ConfigMap and a Deployment that rolls out pass", "app", func(ks *syncv1.Kustomization) {
			ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{
				{APIVersion: "v1", Kind: "ConfigMap", Name: "settings", Namespace: ns},
				{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: ns},
			}
		}, true},
		{"a health check on a Deployment that never rolls out fails", "stuck", func(ks *syncv1.Kustomization) {
			ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "stuck", Namespace: ns}}
		}, false},
		{"wait fails on a Deployment that never rolls out", "stuck", func(ks *syncv1.Kustomization) { ks.Spec.Wait = true }, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := kustomization(fmt.Sprintf("%s-%d", tt.path, i), tt.path, func(ks *syncv1.Kustomization) {
				ks.Namespace, ks.Spec.TargetNamespace = ns, ns
				ks.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Second}
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
			if ready.Status != metav1.ConditionFalse || ready.Reason != syncv1.ReasonHealthCheckFailed || !strings.Contains(ready.Message, "Deployment/health/stuck status: 'InProgress'") {
				t.Fatalf("Ready %+v, want HealthCheckFailed naming the Deployment", ready)
			}
			// A rollout may still finish: the Kustomization retries.
			if c := condition(got, "Reconciling"); c == nil || c.Reason != status.ReasonProgressingWithRetry || condition(got, "Stalled") != nil {
				t.Fatalf("conditions %+v, want Reconciling with retry and not Stalled", got.Status.Conditions)
			}
		})
	}
}

func TestAKustomizationWaitingOnHealthHoldsNoWorker(t *testing.T) {
	_, revision := tenant(t, "waiting", map[string]string{"stuck/stuck.yaml": deploymentYAML("stuck", neverScheduled)})
	_, otherRevision := tenant(t, "other", map[string]string{"app/settings.yaml": settingsYAML})
	// One worker: a wait that held it would hold up every other
	// Kustomization for its whole timeout.
	startControllers(t, func(o *operator.Options) { o.Workers = 1 })
	stuck := kustomization("stuck", "stuck", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Spec.TargetNamespace, ks.Spec.Wait = "waiting", "waiting", true
		ks.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
	})
	create(t, stuck)
	waiting := waitFor(t, client.ObjectKeyFromObject(stuck), func(ks *syncv1.Kustomization) bool {
		return ks.Status.LastAppliedRevision == revision
	})
	if c := condition(waiting, "Ready"); c == nil || c.Status != metav1.ConditionUnknown || !strings.Contains(c.Message, "waiting for: Deployment/waiting/stuck") {
		t.Fatalf("Ready %+v, want Unknown naming what it waits for", c)
	}
	if c := condition(waiting, "Reconciling"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Reconciling %+v, want True while it waits", c)
	}

	start := time.Now()
	other := kustomization("app", "app", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Spec.TargetNamespace, ks.Spec.Wait = "other", "other", true
	})
	create(t, other)
	key := client.ObjectKeyFromObject(other)
	controlplane.Eventually(t, 15*time.Second, "the other Kustomization Ready beside the waiting one", func(ctx context.Context) (bool, string) {
		ks := &syncv1.Kustomization{}
		if err := cp.Client.Get(ctx, key, ks); err != nil {
			return false, err.Error()
		}
		return readyAt(otherRevision)(ks), fmt.Sprintf("status %+v", ks.Status)
	})
	t.Logf("Ready %s after creation, beside a Kustomization waiting on a stuck Deployment", time.Since(start).Round(time.Millisecond))
	if got := waitFor(t, client.ObjectKeyFromObject(stuck), func(*syncv1.Kustomization) bool { return true }); condition(got, "Ready").Status != metav1.ConditionUnknown {
		t.Fatalf("the stuck Kustomization stopped waiting: %+v", got.Status.Conditions)
	}
}
