package syncbench

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
	"sluice.dev/sluice/test/inprocess"
)

// smallChart is a ConfigMap, a Service and a one-replica Deployment.
var smallChart = map[string]string{
	"configmap.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {greeting: '{{ .Values.greeting }}'}\n",
	"service.yaml":    "apiVersion: v1\nkind: Service\nmetadata: {name: '{{ .Release.Name }}'}\nspec:\n  selector: {app: '{{ .Release.Name }}'}\n  ports: [{port: 80}]\n",
	"deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: '{{ .Release.Name }}'}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: '{{ .Release.Name }}'}}\n  template:\n    metadata: {labels: {app: '{{ .Release.Name }}'}}\n    spec: {containers: [{name: app, image: 'app:1'}]}\n",
}

// BenchmarkInstall200HelmReleases installs 200 releases of a small chart
// from one chart repository, waiting for each as Helm does, and reports
// the wall time until all are Ready and the process's peak RSS (operator
// and benchmark together). Flux publishes 1000 HelmReleases in 8m12s and
// 400 MiB on a 16-core runner.
func BenchmarkInstall200HelmReleases(b *testing.B) {
	const n, ns = 200, "helm-bench"
	for b.Loop() {
		repo := helmrepo.NewHTTP(b)
		repo.Add(b, helmrepo.NewChart("small", "1.0.0", smallChart, map[string]any{"greeting": "hello"}))
		create(b,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
		)
		resetPeakRSS(b)
		began := time.Now()
		inprocess.Start(b, cp.Config, ns, inprocess.ErrorLogger())
		for i := range n {
			create(b, &syncv2.HelmRelease{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i), Namespace: ns},
				Spec: syncv2.HelmReleaseSpec{
					Interval: metav1.Duration{Duration: time.Hour},
					Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
						Chart: "small", Version: "1.x", SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
					}},
				},
			})
		}
		controlplane.Eventually(b, 30*time.Minute, "all HelmReleases Ready", func(ctx context.Context) (bool, string) {
			var list syncv2.HelmReleaseList
			if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, err.Error()
			}
			ready := 0
			for _, hr := range list.Items {
				if meta.IsStatusConditionTrue(hr.Status.Conditions, "Ready") {
					ready++
				}
			}
			return ready == n, fmt.Sprintf("%d of %d Ready", ready, n)
		})
		b.ReportMetric(time.Since(began).Seconds(), "s/200-releases")
		b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MiB")
	}
}
