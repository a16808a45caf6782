package kustomization_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
)

// TestAKustomizationReadsTheSourceItsRefNamesAndUndoesDriftAtItsInterval
// applies one commit through three Kustomizations: two name a
// GitRepository of another namespace, one that looks again every two
// seconds and one every hour, and the third names none, so it waits for
// one in its own. A hand edit of what they applied is undone at the next
// interval, and status.history counts each look with its times.
func TestAKustomizationReadsTheSourceItsRefNamesAndUndoesDriftAtItsInterval(t *testing.T) {
	const ns, sources = "ks-fields", "ks-fields-sources"
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n"})
	secret, repo := s.Source(sources, "repo", time.Hour)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sources}}, secret, repo)
	for _, target := range []string{"ks-fields-fast", "ks-fields-slow", "ks-fields-own"} {
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: target}})
	}
	startControllers(t)
	started := time.Now()
	ks := func(name string, interval time.Duration, sourceNamespace string) *syncv1.Kustomization {
		return kustomization(name, "app", func(ks *syncv1.Kustomization) {
			ks.Namespace, ks.Spec.TargetNamespace = ns, "ks-fields-"+name
			ks.Spec.Interval.Duration, ks.Spec.RetryInterval.Duration = interval, interval
			ks.Spec.SourceRef.Namespace = sourceNamespace
		})
	}
	fast, slow, own := ks("fast", 2*time.Second, sources), ks("slow", time.Hour, sources), ks("own", 2*time.Second, "")
	create(t, fast, slow, own)
	revision := "main@sha1:" + head
	waitFor(t, client.ObjectKeyFromObject(fast), readyAt(revision))
	waitFor(t, client.ObjectKeyFromObject(slow), readyAt(revision))

	// Without a namespace, the source is looked for beside the
	// Kustomization, where there is none yet.
	waitFor(t, client.ObjectKeyFromObject(own), func(ks *syncv1.Kustomization) bool {
		return meta.IsStatusConditionFalse(ks.Status.Conditions, "Ready") && ks.Status.LastAttemptedRevision == ""
	})
	ownSecret, ownRepo := s.Source(ns, "repo", time.Hour)
	create(t, ownSecret, ownRepo)
	waitFor(t, client.ObjectKeyFromObject(own), readyAt(revision))

	for _, target := range []string{"ks-fields-fast", "ks-fields-slow"} {
		cm := &corev1.ConfigMap{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: target, Name: "settings"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["mode"] = "by-hand"
		if err := cp.Client.Update(t.Context(), cm, client.FieldOwner("kubectl")); err != nil {
			t.Fatal(err)
		}
	}
	mode := func(ctx context.Context, target string) (string, error) {
		cm := &corev1.ConfigMap{}
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: target, Name: "settings"}, cm)
		return cm.Data["mode"], err
	}
	controlplane.Eventually(t, 30*time.Second, "the edit undone at the two-second interval", func(ctx context.Context) (bool, string) {
		got, err := mode(ctx, "ks-fields-fast")
		return err == nil && got == "fast", fmt.Sprintf("mode %q, %v", got, err)
	})
	if got, err := mode(t.Context(), "ks-fields-slow"); err != nil || got != "by-hand" {
		t.Fatalf("the Kustomization an hour from its next look changed the edit: mode %q, %v", got, err)
	}

	// Every look at the same objects with the same outcome is counted in
	// one snapshot, which says when it was first and last reconciled and
	// how long the last took.
	got := waitFor(t, client.ObjectKeyFromObject(fast), func(ks *syncv1.Kustomization) bool {
		h := ks.Status.History
		return len(h) > 0 && h[0].TotalReconciliations >= 3 && h[0].LastReconciled.After(h[0].FirstReconciled.Time)
	})
	s0 := got.Status.History[0]
	if first := s0.FirstReconciled.Time; first.Before(started.Truncate(time.Second)) || first.After(started.Add(time.Minute)) {
		t.Fatalf("firstReconciled %s, want soon after the Kustomization was made at %s", first, started)
	}
	if took := s0.LastReconciledDuration.Duration; took <= 0 || took > 30*time.Second {
		t.Fatalf("lastReconciledDuration %s", took)
	}
}
