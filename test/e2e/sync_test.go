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

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
)

// TestTheOperatorBinaryJudgesHealthFromItsCache runs the binary users run,
// with the permissions they install, on a Kustomization that waits for
// what it applies and health-checks it: the wiring that once judged every
// object Unknown ("non-exact field matches are not supported by the
// cache").
func TestTheOperatorBinaryJudgesHealthFromItsCache(t *testing.T) {
	const ns = "binary-sync"
	git := gitserver.New(t)
	head := git.Commit(map[string]string{
		"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"app/service.yaml":  "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
	})
	secret, repo := git.Source(ns, "repo", time.Hour)
	ks := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      "app", Prune: true, TargetNamespace: ns, Wait: true,
			Interval:     metav1.Duration{Duration: time.Hour},
			Timeout:      &metav1.Duration{Duration: time.Minute},
			HealthChecks: []syncv1.NamespacedObjectKindReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "settings", Namespace: ns}},
		},
	}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, repo, ks} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	startOperator(t, installRBAC(t), "--leader-elect=false")
	controlplane.Eventually(t, time.Minute, "the Kustomization Ready", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ks), ks); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(ks.Status.Conditions, "Ready")
		return ready != nil && ready.Status == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+head,
			fmt.Sprintf("conditions %+v", ks.Status.Conditions)
	})
}
