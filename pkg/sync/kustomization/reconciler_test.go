package kustomization

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/apply"
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
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	store := source.NewStore()
	git := &source.GitRepositoryReconciler{Client: mgr.GetClient(), Events: mgr.GetEventRecorder("test"), Store: store}
	ks := &Reconciler{Client: mgr.GetClient(), Applier: apply.New(mgr.GetClient()), Sources: store, Events: mgr.GetEventRecorder("test")}
	if err := git.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := ks.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
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
	ks := &syncv1.Kustomization{}
	controlplane.Eventually(t, 30*time.Second, "Kustomization "+name, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "flux", Name: name}, ks); err != nil {
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

func TestACommitIsAppliedSubstitutedAndPruned(t *testing.T) {
	s := gitserver.New(t)
	head := s.Commit(map[string]string{
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {cluster: \"${CLUSTER}\", mode: \"${MODE:=fast}\"}\n",
		"apps/extra.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n",
		"base/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
	})
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: "flux"}, StringData: map[string]string{"username": "sluice", "password": "s3cret"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "vars", Namespace: "flux"}, Data: map[string]string{"CLUSTER": "eu-1"}},
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "flux"}, Spec: sourcev1.GitRepositorySpec{
			URL: s.URL, Interval: metav1.Duration{Duration: time.Second}, SecretRef: &sourcev1.LocalObjectReference{Name: "git"},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		}},
	)
	startControllers(t)
	// apps depends on base, which is created later: it waits, then goes
	// as soon as base is Ready, though its own retry is an hour away.
	create(t, kustomization("apps", "apps", func(ks *syncv1.Kustomization) {
		ks.Spec.TargetNamespace = "shop"
		ks.Spec.DependsOn = []syncv1.DependencyReference{{Name: "base"}}
		ks.Spec.PostBuild = &syncv1.PostBuild{SubstituteFrom: []syncv1.SubstituteReference{{Kind: "ConfigMap", Name: "vars"}}}
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
	if cm.Data["cluster"] != "eu-1" || cm.Data["mode"] != "fast" {
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
	if c := meta.FindStatusCondition(failed.Status.Conditions, "Ready"); c.Reason != ReasonFailed || !strings.Contains(c.Message, "ConfigMap/shop/Bad_Name") {
		t.Fatalf("Ready %+v", c)
	}
	if failed.Status.LastAppliedRevision != "main@sha1:"+next {
		t.Fatalf("lastAppliedRevision %s moved on a failed apply", failed.Status.LastAppliedRevision)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "settings"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("a failed apply touched what was applied: %v", err)
	}
}
