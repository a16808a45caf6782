package analysis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
)

// keptnOperator plays the Keptn metrics operator, which does not run
// here: it completes each Analysis the provider creates, as passed or not,
// and records what it saw.
type keptnOperator struct {
	pass     atomic.Bool
	analyses atomic.Int32
	lastSpec atomic.Value
	// lastErr is the last error it met, for failures.
	lastErr atomic.Value
}

func startKeptnOperator(t *testing.T, namespace string) *keptnOperator {
	k := &keptnOperator{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &unstructured.UnstructuredList{}
			list.SetAPIVersion("metrics.keptn.sh/v1beta1")
			list.SetKind("AnalysisList")
			err := cp.Client.List(ctx, list, client.InNamespace(namespace))
			if err != nil {
				k.lastErr.Store(err.Error())
			} else {
				for i := range list.Items {
					a := &list.Items[i]
					if state, _, _ := unstructured.NestedString(a.Object, "status", "state"); state == "Completed" {
						continue
					}
					now := time.Now().UTC()
					a.Object["status"] = map[string]any{
						"state": "Completed", "pass": k.pass.Load(), "raw": "{}",
						"timeframe": map[string]any{"from": now.Add(-time.Minute).Format(time.RFC3339), "to": now.Format(time.RFC3339)},
					}
					if err := cp.Client.Status().Update(ctx, a); err != nil {
						k.lastErr.Store(err.Error())
					} else {
						k.analyses.Add(1)
						k.lastSpec.Store(fmt.Sprint(a.Object["spec"]))
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return k
}

func keptnTemplate(f *fixture.Namespace, name, query string) {
	f.Create(&sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.Name},
		Spec:       sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: "keptn", Timeout: "20s"}, Query: query},
	})
}

func keptnCanary(f *fixture.Namespace, metrics ...sluicev1beta1.CanaryMetric) {
	f.Create(&sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.Name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 80},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: "10s", Iterations: 2, Threshold: 1, Metrics: metrics},
		},
	})
}

func TestAKeptnMetricDecidesTheRelease(t *testing.T) {
	t.Parallel()
	f := fixture.New(t, cp.Client, "keptn-metric")
	inprocess.Start(t, cp.Config, f.Name, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	keptnMetric := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric",
		"metadata": map[string]any{"name": "error-rate", "namespace": f.Name},
		"spec":     map[string]any{"provider": map[string]any{"name": "prometheus"}, "query": "sum(rate(errors[1m]))", "fetchIntervalSeconds": int64(10)},
	}}
	f.Create(keptnMetric)
	setValue := func(v string) {
		t.Helper()
		if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(keptnMetric), keptnMetric); err != nil {
			t.Fatal(err)
		}
		keptnMetric.Object["status"] = map[string]any{"value": v, "lastUpdated": time.Now().UTC().Format(time.RFC3339)}
		if err := cp.Client.Status().Update(t.Context(), keptnMetric); err != nil {
			t.Fatal(err)
		}
	}
	setValue("0.5")
	keptnTemplate(f, "error-rate", `keptnmetric/{{ namespace }}/error-rate`)
	keptnCanary(f, sluicev1beta1.CanaryMetric{Name: "error-rate", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "error-rate"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)

	f.Release("podinfo:2")
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
	if m := metric(c, "error-rate"); m.Outcome != sluicev1beta1.MetricPass || m.Value != "0.5" {
		t.Fatalf("error-rate %+v, want a pass at 0.5", m)
	}

	setValue("3")
	f.Release("podinfo:3")
	c = f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
	if m := metric(c, "error-rate"); m.Outcome != sluicev1beta1.MetricFail || m.Value != "3" {
		t.Fatalf("error-rate %+v, want a failure at 3", m)
	}
}

func TestAKeptnAnalysisDecidesTheRelease(t *testing.T) {
	t.Parallel()
	f := fixture.New(t, cp.Client, "keptn-analysis")
	inprocess.Start(t, cp.Config, f.Name, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	keptn := startKeptnOperator(t, f.Name)
	keptn.pass.Store(true)
	keptnTemplate(f, "slo", `analysis/{{ namespace }}/slo/2m/workload={{ target }}`)
	keptnCanary(f, sluicev1beta1.CanaryMetric{Name: "slo", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "slo"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(1.0)}})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)

	f.Release("podinfo:2")
	defer func() {
		if t.Failed() {
			t.Logf("the Keptn stand-in's last error: %v", keptn.lastErr.Load())
		}
	}()
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
	if m := metric(c, "slo"); m.Outcome != sluicev1beta1.MetricPass || m.Value != "1" {
		t.Fatalf("slo %+v, want a pass at 1", m)
	}
	spec, _ := keptn.lastSpec.Load().(string)
	if keptn.analyses.Load() == 0 || !strings.Contains(spec, "name:slo") || !strings.Contains(spec, "recent:2m") || !strings.Contains(spec, "workload:podinfo") {
		t.Fatalf("%d Analyses, the last %s", keptn.analyses.Load(), spec)
	}
	// Each Analysis is deleted once read.
	controlplane.Eventually(t, 30*time.Second, "no Analysis left", func(ctx context.Context) (bool, string) {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("metrics.keptn.sh/v1beta1")
		list.SetKind("AnalysisList")
		if err := cp.Client.List(ctx, list, client.InNamespace(f.Name)); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
	})

	keptn.pass.Store(false)
	f.Release("podinfo:3")
	c = f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
	if m := metric(c, "slo"); m.Outcome != sluicev1beta1.MetricFail || m.Value != "0" {
		t.Fatalf("slo %+v, want a failure at 0", m)
	}
}
