package flagger

import (
	"fmt"
	"slices"
	"testing"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	testprom "sluice.dev/sluice/test/prometheus"
)

// prometheusHost is the base URL the manifests give Prometheus, as
// Flagger's Helm chart installs it next to Flagger.
const prometheusHost = "http://flagger-prometheus.flagger-system:9090"

func TestAWeightedCanaryIsPromotedWhileItsPrometheusMetricPassesAndRolledBackOnceItFails(t *testing.T) {
	t.Parallel()
	const ns = "prometheus-metric"
	s := newScenario(t, ns, "podinfo")
	// A real Prometheus scraping an exporter that plays podinfo's pods:
	// the labels are those Kubernetes service discovery would add to a
	// canary pod's series.
	exporter := testprom.StartExporter(t)
	prom := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{
		Addr:   exporter.Addr,
		Labels: map[string]string{"namespace": ns, "pod": "podinfo-7d9f8b6c5d-x2x9q"},
	}}})
	s.redirects[prometheusHost] = prom.URL
	s.apply("podinfo-deployment.yaml", "canary-prometheus.yaml")
	s.waitPhase(initialized, time.Minute)
	routes := s.followRoute(plain)

	// No errors: the canary takes 25% then 50% of the traffic, and is
	// promoted.
	release := s.history.mark()
	s.release("Deployment", podinfo601)
	s.waitPhase(succeeded, 2*time.Minute)
	s.checkPhases(release, promoted)
	if got := positive(s.history.weightsSince(release.weights)); !slices.Equal(got, []int{25, 50}) {
		t.Errorf("the canary weight went %v, want [25 50]", got)
	}
	s.waitSplits(routes, plain, []split{primaryOnly, {75, 25}, {50, 50}, primaryOnly})
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the promotion", img)
	}

	// 30% of the requests fail: the error rate is over its 1% maximum at
	// the first analysis, and again at the next; at the threshold of two
	// failed checks the canary is rolled back.
	exporter.Set(0.3, 10*time.Millisecond)
	release = s.history.mark()
	s.release("Deployment", podinfo602)
	s.waitPhase(failed, 2*time.Minute)
	s.checkPhases(release, []sluicev1beta1.CanaryPhase{progressing, failed})
	if got := positive(s.history.weightsSince(release.weights)); !slices.Equal(got, []int{25}) {
		t.Errorf("the canary weight went %v, want [25]: one step, then the analysis failed", got)
	}
	s.waitSplits(routes, plain, []split{primaryOnly, {75, 25}, {50, 50}, primaryOnly, {75, 25}, primaryOnly})
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the rollback", img)
	}
	eventually(t, 30*time.Second, "the canary scaled to zero", func() (bool, string) {
		r := s.replicas("podinfo")
		return r == 0, fmt.Sprintf("%d replicas", r)
	})
	// Flagger's events name the failing metric, then the rollback.
	s.waitEventMessage("Warning", "error-rate", 10*time.Second)
	s.waitEventMessage("Warning", "Rolling back", 10*time.Second)
}
