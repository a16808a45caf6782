package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/helmrepo"
)

// releaseStatus is the status label Helm puts on the latest record of a
// release in its storage.
func releaseStatus(ctx context.Context, ns, name string) (string, error) {
	var list corev1.SecretList
	if err := cp.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": name}); err != nil {
		return "", err
	}
	latest, status := "", ""
	for _, s := range list.Items {
		if v := s.Labels["version"]; len(v) > len(latest) || (len(v) == len(latest) && v > latest) {
			latest, status = v, s.Labels["status"]
		}
	}
	return status, nil
}

func TestAReleaseLeftPendingByAKilledOperatorIsFinishedByTheNext(t *testing.T) {
	const ns = "helm-kill"
	kubeconfig := installRBAC(t)
	repo := helmrepo.NewHTTP(t)
	// This control plane runs no controllers: the Deployment never becomes
	// available, so Helm waits and the release stays pending-install.
	repo.Add(t, helmrepo.NewChart("app", "1.0.0", map[string]string{
		"deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec: {containers: [{name: app, image: 'app:1'}]}\n",
	}, nil))
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Timeout: &metav1.Duration{Duration: 10 * time.Minute},
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{Chart: "app", SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"}}},
		},
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
		hr,
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	first := startOperator(t, kubeconfig)
	controlplane.Eventually(t, time.Minute, "the install is under way", func(ctx context.Context) (bool, string) {
		status, err := releaseStatus(ctx, ns, "app")
		return status == "pending-install", fmt.Sprintf("status %q, %v", status, err)
	})
	if err := first.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.Exited()
	if status, err := releaseStatus(t.Context(), ns, "app"); err != nil || status != "pending-install" {
		t.Fatalf("after the kill the release is %q (%v), want pending-install", status, err)
	}

	// The next operator must finish the job, not fail with "another
	// operation is in progress". Waiting is off now, so it can succeed
	// here.
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hr), hr); err != nil {
		t.Fatal(err)
	}
	hr.Spec.Install = &syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
	if err := cp.Client.Update(t.Context(), hr); err != nil {
		t.Fatal(err)
	}
	second := startOperator(t, kubeconfig)
	controlplane.Eventually(t, 2*time.Minute, "the release deployed by the next operator", func(ctx context.Context) (bool, string) {
		got := &syncv2.HelmRelease{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
			return false, err.Error()
		}
		status, err := releaseStatus(ctx, ns, "app")
		return meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") && status == "deployed", fmt.Sprintf("release %q (%v); status %+v", status, err, got.Status)
	})
	// A clean stop hands the lease back for the tests after this one.
	if code := second.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
