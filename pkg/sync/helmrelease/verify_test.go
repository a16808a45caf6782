package helmrelease_test

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
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/signing"
)

func TestChartSpecVerifyIsCheckedByTheHelmChartTheReleaseMakes(t *testing.T) {
	const ns = "helm-verify"
	registry := helmrepo.NewOCI(t)
	registry.Push(t, helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": settings}, defaults))
	key := signing.NewKey(t)
	key.SignTag(t, signing.NewTarget(t, registry.Image("app"), registry.ManifestDigest(t, "app", "1.0.0"), nil))
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cosign-keys", Namespace: ns}, Data: map[string][]byte{"cosign.pub": key.PublicPEM(t)}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{
			URL: registry.URL, Type: sourcev1.HelmRepositoryTypeOCI, Insecure: true, Interval: metav1.Duration{Duration: time.Hour},
		}},
	)
	startControllers(t)
	hr := helmRelease(ns, "web", "^1", func(hr *syncv2.HelmRelease) {
		hr.Spec.Chart.Spec.Verify = &syncv2.HelmChartTemplateVerification{Provider: "cosign", SecretRef: &syncv1.LocalObjectReference{Name: "cosign-keys"}}
	})
	create(t, hr)
	waitFor(t, hr, "installed from the signed chart", readyWith("1.0.0"))
	hc := &sourcev1.HelmChart{}
	chartKey := client.ObjectKey{Namespace: ns, Name: ns + "-web"}
	if err := cp.Client.Get(t.Context(), chartKey, hc); err != nil {
		t.Fatal(err)
	}
	if v := hc.Spec.Verify; v == nil || v.Provider != "cosign" || v.SecretRef == nil || v.SecretRef.Name != "cosign-keys" {
		t.Fatalf("the HelmChart's spec.verify is %+v, want the template's", v)
	}
	if !meta.IsStatusConditionTrue(hc.Status.Conditions, sourcev1.SourceVerifiedCondition) {
		t.Fatalf("the HelmChart's conditions are %+v, want SourceVerified", hc.Status.Conditions)
	}

	// An unsigned version in the range is refused by the HelmChart, and
	// the release stays at the signed one.
	registry.Push(t, helmrepo.NewChart("app", "1.1.0", map[string]string{"settings.yaml": settings}, defaults))
	controlplane.Eventually(t, 30*time.Second, "the unsigned 1.1.0 refused", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, chartKey, hc); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(hc.Status.Conditions, sourcev1.SourceVerifiedCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == sourcev1.ReasonVerificationError, fmt.Sprintf("%+v", c)
	})
	got := &syncv2.HelmRelease{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	if a := hc.Status.Artifact; a == nil || a.Revision != "1.0.0" || len(got.Status.History) != 1 || got.Status.History[0].ChartVersion != "1.0.0" {
		t.Fatalf("the HelmChart's artifact is %+v and the release's history %+v, want both at the signed 1.0.0 only", a, got.Status.History)
	}
	t.Logf("the release: %+v", meta.FindStatusCondition(got.Status.Conditions, "Ready"))
}
