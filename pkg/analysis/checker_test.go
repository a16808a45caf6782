package analysis

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// prometheusAPI answers instant queries with value, once n queries are in
// flight at the same time, so that only concurrent queries get answers.
func prometheusAPI(t *testing.T, n int, value string) *httptest.Server {
	var mu sync.Mutex
	inFlight := 0
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		if inFlight == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			http.Error(w, "queries were not concurrent", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,%q]}]}}`, value)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newChecker(t *testing.T, metricsServer string) *Checker {
	t.Helper()
	ch, err := NewChecker(Options{
		Reader:        cp.Client,
		MetricsServer: metricsServer,
		Signals: func(*sluicev1beta1.Canary) (traffic.GoldenSignals, error) {
			return traffic.GoldenSignals{SuccessRate: `success{namespace="{{ namespace }}"}`, Duration: `p99{namespace="{{ namespace }}"}`}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func TestEveryMetricOfAStepRunsAtOnceAndIsRecorded(t *testing.T) {
	t.Parallel()
	srv := prometheusAPI(t, 3, "42")
	ch := newChecker(t, srv.URL)
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "concurrent"}}
	c.Spec.TargetRef.Name = "podinfo"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Metrics: []sluicev1beta1.CanaryMetric{
		{Name: sluicev1beta1.MetricRequestSuccessRate, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		{Name: sluicev1beta1.MetricRequestDuration, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
		{Name: "inline", Query: `up{namespace="{{ namespace }}"}`, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(100.0)}},
	}}
	got := ch.Check(t.Context(), c)
	if got.Outcome != plan.Fail || len(got.Metrics) != 3 {
		t.Fatalf("got %s %q with %+v", got.Outcome, got.Message, got.Metrics)
	}
	want := []sluicev1beta1.MetricOutcome{sluicev1beta1.MetricFail, sluicev1beta1.MetricPass, sluicev1beta1.MetricPass}
	for i, m := range got.Metrics {
		if m.Outcome != want[i] || m.Value != "42" {
			t.Errorf("metric %s: %s %q, want %s at 42", m.Name, m.Outcome, m.Value, want[i])
		}
	}
}

func TestProvidersAreRebuiltOnlyWhenTheTemplateOrSecretChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	namespace(t, "cache")
	srv := prometheusAPI(t, 1, "1")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom", Namespace: "cache"}, Data: map[string][]byte{"token": []byte("a")}}
	tpl := &sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: "cache"},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: srv.URL, SecretRef: &corev1.LocalObjectReference{Name: "prom"}},
			Query:    `errors{namespace="{{ namespace }}"}`,
		},
	}
	for _, o := range []client.Object{secret, tpl} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "cache"}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Metrics: []sluicev1beta1.CanaryMetric{
		{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}},
	}}
	ch := newChecker(t, "")
	current := func() *cached {
		t.Helper()
		resolved, err := ch.resolve(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return resolved[0].provider
	}
	first := current()
	if again := current(); again != first {
		t.Fatal("a provider was rebuilt with nothing changed")
	}
	secret.Data["token"] = []byte("b")
	if err := cp.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	afterSecret := current()
	if afterSecret == first {
		t.Fatal("a changed Secret kept the old provider")
	}
	tpl.Spec.Query = `errors{namespace="{{ namespace }}", code="5xx"}`
	if err := cp.Client.Update(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	if current() == afterSecret {
		t.Fatal("a changed template kept the old provider")
	}
}

func TestPrepareNamesTheMetricAtFault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	namespace(t, "prepare")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	t.Cleanup(down.Close)
	templates := []*sluicev1beta1.MetricTemplate{
		{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "prepare"}, Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: down.URL}, Query: `x{a="{{ variables.missing }}"}`}},
		{ObjectMeta: metav1.ObjectMeta{Name: "locked", Namespace: "prepare"}, Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: down.URL}, Query: `x`}},
		{ObjectMeta: metav1.ObjectMeta{Name: "secretless", Namespace: "prepare"}, Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: down.URL, SecretRef: &corev1.LocalObjectReference{Name: "nope"}}, Query: `x`}},
	}
	for _, tpl := range templates {
		if err := cp.Client.Create(ctx, tpl); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		template  string
		reason    string
		unhealthy bool
	}{
		{"a template that does not render blocks", "broken", "TemplateRenderFailed", false},
		{"a missing template blocks", "absent", "MetricTemplateNotFound", false},
		{"a missing Secret blocks", "secretless", "MetricSecretNotFound", false},
		{"a provider that refuses the credentials is reported, not blocking", "locked", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "prepare"}}
			c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Metrics: []sluicev1beta1.CanaryMetric{
				{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: tt.template}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}},
			}}
			state, err := newChecker(t, "").Prepare(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.reason != "":
				if state.Problem == nil || state.Problem.Reason != tt.reason || !strings.Contains(state.Problem.Message, "spec.analysis.metrics[0] (errors)") {
					t.Fatalf("problem %+v, want %s naming the metric", state.Problem, tt.reason)
				}
			case tt.unhealthy:
				if state.Problem != nil || !strings.Contains(state.Unhealthy, "spec.analysis.metrics[0] (errors)") || !strings.Contains(state.Unhealthy, "authentication failed") {
					t.Fatalf("state %+v, want an unhealthy provider named", state)
				}
			}
		})
	}
}
