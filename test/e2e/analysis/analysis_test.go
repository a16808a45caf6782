package analysis

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
	testprom "sluice.dev/sluice/test/prometheus"
)

// analysed is a namespace with a Deployment, an exporter that plays its
// pods' request metrics, a Prometheus scraping it, and the operator.
type analysed struct {
	*fixture.Namespace
	exporter *testprom.Exporter
	// promURL is the address of the Prometheus scraping the exporter.
	promURL string
}

// newFixture starts everything; labelled says whether the exporter's
// series carry this namespace's pod labels, so that the built-in metrics
// find them.
func newFixture(t *testing.T, ns string, labelled bool) *analysed {
	t.Helper()
	f := &analysed{Namespace: fixture.New(t, cp.Client, ns), exporter: testprom.StartExporter(t)}
	podNamespace := ns
	if !labelled {
		podNamespace = "elsewhere"
	}
	prom := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{
		Addr: f.exporter.Addr,
		// What Kubernetes service discovery would add for a canary pod.
		Labels: map[string]string{"namespace": podNamespace, "pod": "podinfo-7d9f8b6c5d-x2x9q"},
	}}})
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), func(o *operator.Options) {
		o.MetricsServer = prom.URL
	})
	f.promURL = prom.URL
	return f
}

// builtIn are the two built-in metrics with the usual SRE ranges.
func builtIn() []sluicev1beta1.CanaryMetric {
	return []sluicev1beta1.CanaryMetric{
		{Name: "request-success-rate", Interval: "10s", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		{Name: "request-duration", Interval: "10s", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
	}
}

// canary creates a blue/green Canary on plain Services with the metrics.
func (f *analysed) canary(metrics []sluicev1beta1.CanaryMetric, change func(*sluicev1beta1.Canary)) {
	f.T.Helper()
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.Name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: "10s", Iterations: 2, Threshold: 1, Metrics: metrics},
		},
	}
	if change != nil {
		change(c)
	}
	f.Create(c)
}

func metric(c *sluicev1beta1.Canary, name string) sluicev1beta1.CanaryMetricStatus {
	for _, m := range c.Status.Metrics {
		if m.Name == name {
			return m
		}
	}
	return sluicev1beta1.CanaryMetricStatus{}
}

func TestALowErrorRatePromotes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "healthy", true)
	f.canary(builtIn(), nil)
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
	if img := f.PrimaryImage(); img != "podinfo:2" {
		t.Fatalf("primary runs %s after promotion", img)
	}
	rate, duration := metric(c, "request-success-rate"), metric(c, "request-duration")
	if rate.Outcome != sluicev1beta1.MetricPass || rate.Value != "100" || duration.Outcome != sluicev1beta1.MetricPass || duration.Value == "" {
		t.Fatalf("status metrics %+v", c.Status.Metrics)
	}
	if cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("MetricsReady %+v", cond)
	}
	// The history says how the release went, step by step.
	if len(c.Status.Releases) != 1 || c.Status.Releases[0].Outcome != sluicev1beta1.ReleasePromoted || c.Status.Releases[0].EndTime == nil {
		t.Fatalf("status.releases %+v, want one promoted release", c.Status.Releases)
	}
	if v := stepValues(c, "request-success-rate"); len(v) < 2 || v[0] != "100" {
		t.Fatalf("request-success-rate at each step %v, want 100 at each of the 2 iterations; steps %+v", v, c.Status.Steps)
	}
}

// stepValues are a metric's values at each step of the latest release.
func stepValues(c *sluicev1beta1.Canary, name string) []string {
	var values []string
	for _, s := range c.Status.Steps {
		for _, m := range s.Metrics {
			if m.Name == name {
				values = append(values, m.Value)
			}
		}
	}
	return values
}

func TestAHighErrorRateRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "failing", true)
	var mu sync.Mutex
	var alerts []map[string]any
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		alerts = append(alerts, body)
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(slack.Close)
	f.Create(&sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "oncall", Namespace: f.Name},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", Channel: "releases", Address: slack.URL},
	})
	f.canary(builtIn(), func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Alerts = []sluicev1beta1.CanaryAlert{{Name: "oncall", Severity: sluicev1beta1.SeverityError, ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "oncall"}}}
	})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.exporter.Set(0.3, 10*time.Millisecond)
	f.Release("podinfo:2")
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
	if img := f.PrimaryImage(); img != "podinfo:1" {
		t.Fatalf("primary runs %s after a rollback", img)
	}
	rate := metric(c, "request-success-rate")
	if rate.Outcome != sluicev1beta1.MetricFail || rate.Value != "70" {
		t.Fatalf("request-success-rate %+v, want a failure at 70", rate)
	}
	ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
	if ready == nil || !strings.Contains(ready.Message, "request-success-rate 70 < 99") {
		t.Fatalf("Ready %+v does not say which metric failed", ready)
	}
	if r := c.Status.Releases; len(r) != 1 || r[0].Outcome != sluicev1beta1.ReleaseRolledBack || !strings.Contains(r[0].Message, "request-success-rate 70 < 99") {
		t.Fatalf("status.releases %+v, want one rolled back naming the metric", r)
	}
	if v := stepValues(c, "request-success-rate"); len(v) == 0 || v[len(v)-1] != "70" {
		t.Fatalf("request-success-rate at each step %v, want 70 last", v)
	}
	// Only the rollback is an error; the info alerts are filtered out.
	controlplane.Eventually(t, 30*time.Second, "the rollback alert", func(context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		raw, _ := json.Marshal(alerts)
		text := string(raw)
		return len(alerts) == 1 && alerts[0]["channel"] == "releases" && strings.Contains(text, "Rolling back") &&
			strings.Contains(text, "request-success-rate") && strings.Contains(text, "70"), text
	})
}

func TestAbsentSeriesHoldAndNeverPromote(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "absent", false)
	f.canary(builtIn(), func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.NoData = sluicev1beta1.NoDataHold
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](50)
	})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	held := f.WaitFor("a hold for missing data", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.HoldingSince != nil })
	if held.Status.FailedChecks != 0 || metric(held, "request-success-rate").Outcome != sluicev1beta1.MetricNoData {
		t.Fatalf("a hold counted as failed or recorded wrongly: %+v", held.Status)
	}
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
	if reasons := f.EventReasons(); slices.Contains(reasons, "Promoting") || slices.Contains(reasons, "Promoted") || !slices.Contains(reasons, "Halted") {
		t.Fatalf("events %v: want halts and no promotion", reasons)
	}
	if img := f.PrimaryImage(); img != "podinfo:1" {
		t.Fatalf("primary runs %s: promoted on missing data", img)
	}
	ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
	if ready == nil || !strings.Contains(ready.Message, "no data") {
		t.Fatalf("Ready %+v does not say the data was missing", ready)
	}
}

func TestATemplateThatDoesNotRenderBlocksBeforeTheRollout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "badtemplate", true)
	tpl := &sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: f.Name},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: "http://prometheus.invalid:9090"},
			Query:    `sum(rate(http_request_duration_seconds_count{namespace="{{ namespace }}",status="{{ variables.status }}"}[{{ interval }}]))`,
		},
	}
	f.Create(tpl)
	f.canary([]sluicev1beta1.CanaryMetric{{
		Name: "errors", Interval: "10s", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
	}}, nil)
	c := f.WaitFor("MetricsReady=False", time.Minute, func(c *sluicev1beta1.Canary) bool {
		cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == "TemplateRenderFailed"
	})
	cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
	if !strings.Contains(cond.Message, "spec.analysis.metrics[0] (errors)") || !strings.Contains(cond.Message, `"status"`) {
		t.Fatalf("MetricsReady message %q does not name the metric and the missing variable", cond.Message)
	}
	if c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing || c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded {
		t.Fatalf("phase %s with a broken template", c.Status.Phase)
	}
	f.WaitEvent("TemplateRenderFailed", 30*time.Second)

	// Fixing the template unblocks the Canary at once: the operator
	// watches MetricTemplates.
	patch := client.MergeFrom(tpl.DeepCopy())
	tpl.Spec.Query = strings.ReplaceAll(tpl.Spec.Query, "{{ variables.status }}", "500")
	if err := cp.Client.Patch(t.Context(), tpl, patch); err != nil {
		t.Fatal(err)
	}
	f.WaitFor("the Canary unblocked", time.Minute, func(c *sluicev1beta1.Canary) bool {
		cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
		return cond != nil && cond.Reason != "TemplateRenderFailed" && c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized
	})
}

func TestAnAbortEndsARolloutWhoseTemplateWasDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "abortblocked", true)
	tpl := &sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: f.Name},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: f.promURL},
			Query:    `vector(0)`,
		},
	}
	f.Create(tpl)
	f.canary([]sluicev1beta1.CanaryMetric{{
		Name: "errors", Interval: "10s", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
	}}, func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 10 })
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	f.WaitFor("the first iteration", 2*time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })

	// The analysis breaks mid-rollout: the Canary is blocked, and waits.
	if err := cp.Client.Delete(t.Context(), tpl); err != nil {
		t.Fatal(err)
	}
	f.WaitFor("blocked by the missing template", time.Minute, func(c *sluicev1beta1.Canary) bool {
		cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
		return cond != nil && cond.Reason == "MetricTemplateNotFound"
	})
	// People see it in kubectl's events too, as for a missing target.
	f.WaitWarning("MetricTemplateNotFound", 30*time.Second)

	// An abort still gets production back to the primary alone.
	var out strings.Builder
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &out})
	root.SetArgs([]string{"--kubeconfig", cp.Kubeconfig, "-n", f.Name, "abort", "podinfo"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("abort: %v\n%s", err, out.String())
	}
	c := f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, time.Minute)
	if c.Status.LastRequest == nil || c.Status.LastRequest.Outcome != sluicev1beta1.RequestAccepted {
		t.Fatalf("lastRequest %+v", c.Status.LastRequest)
	}
	if img := f.PrimaryImage(); img != "podinfo:1" {
		t.Fatalf("primary runs %s after the abort", img)
	}
	f.WaitFor("the canary scaled to zero", time.Minute, func(*sluicev1beta1.Canary) bool {
		d := &appsv1.Deployment{}
		err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: f.Name, Name: fixture.Name}, d)
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 0
	})
}
