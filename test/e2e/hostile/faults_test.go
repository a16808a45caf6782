package hostile

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/hook"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
)

// faulty is a namespace with podinfo, its operator and what the fault
// needs.
type faulty struct {
	*fixture.Namespace
	logs *logs
}

// canary is a blue/green Canary on plain Services, two iterations of
// 10 s, that rolls back at the first failed check.
func canary(ns string, change func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: fixture.Name, Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: fixture.Name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: "10s", Iterations: 2, Threshold: 1},
		},
	}
	if change != nil {
		change(c)
	}
	return c
}

// promAnswer is a fake Prometheus: its health probe, vector(1), is
// answered 1, and every other query with answer, written as is.
func promAnswer(t *testing.T, answer func(w http.ResponseWriter)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("query") == "vector(1)" {
			_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"1"]}]}}`, time.Now().Unix())
			return
		}
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// promValue answers every query with one sample of value, a string as
// Prometheus writes it ("NaN", "+Inf").
func promValue(t *testing.T, value string) string {
	return promAnswer(t, func(w http.ResponseWriter) {
		_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,%q]}]}}`, time.Now().Unix(), value)
	})
}

// huge writes n bytes in chunks, so that the length is not announced.
func huge(w http.ResponseWriter, n int) {
	chunk := []byte(strings.Repeat(" ", 64<<10))
	for written := 0; written < n; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// withTemplate adds a MetricTemplate named errors, of provider at
// address with its Secret secretRef (none when empty), and a metric of
// the Canary that uses it.
func withTemplate(f *faulty, provider sluicev1beta1.MetricProviderType, address, secretRef string) func(*sluicev1beta1.Canary) {
	tpl := &sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: f.Name},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: provider, Address: address},
			Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}",status=~"5.."}[{{ interval }}]))`,
		},
	}
	if secretRef != "" {
		tpl.Spec.Provider.SecretRef = &corev1.LocalObjectReference{Name: secretRef}
	}
	f.Create(tpl)
	return func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{
			Name: "errors", Interval: "10s", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"},
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
		}}
	}
}

// fault is one thing that goes wrong at run time.
type fault struct {
	name string
	// setup creates what the fault needs and returns how the Canary is
	// changed from canary's.
	setup func(f *faulty) func(*sluicev1beta1.Canary)
	// release, when set, releases podinfo:2 once the Canary is
	// initialized, so that the fault meets a rollout.
	release bool
	// during runs once the rollout is progressing.
	during func(f *faulty)
	// condition and reason are the Canary's status condition that reports
	// the fault and its reason.
	condition, reason string
	// says is what its message says, the field to fix among it.
	says []string
	// warning is the reason of the Warning Event about the Canary, whose
	// note says says too.
	warning string
	// also checks what else reports the fault, such as the object at
	// fault.
	also func(f *faulty)
}

// TestRuntimeFaultsAreReportedNamingTheField meets each fault with the
// operator as operator.New wires it. Each is reported in a named status
// condition and a Warning Event, both naming the field to fix; none
// panics, and none ends in a promotion: the primary keeps podinfo:1.
func TestRuntimeFaultsAreReportedNamingTheField(t *testing.T) {
	t.Parallel()
	tests := []fault{
		{
			name: "a target that does not exist",
			setup: func(*faulty) func(*sluicev1beta1.Canary) {
				return func(c *sluicev1beta1.Canary) { c.Spec.TargetRef.Name = "absent" }
			},
			condition: sluicev1beta1.ReadyCondition, reason: "TargetNotFound", says: []string{"spec.targetRef: target absent not found"},
			warning: "TargetNotFound",
		},
		{
			name:    "a target deleted in the middle of a rollout",
			setup:   func(*faulty) func(*sluicev1beta1.Canary) { return nil },
			release: true,
			during: func(f *faulty) {
				d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fixture.Name, Namespace: f.Name}}
				if err := cp.Client.Delete(f.T.Context(), d); err != nil {
					f.T.Fatal(err)
				}
			},
			condition: sluicev1beta1.ReadyCondition, reason: "TargetNotFound", says: []string{"spec.targetRef: target podinfo not found"},
			warning: "TargetNotFound",
		},
		{
			name: "a MetricTemplate whose Secret does not exist",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				return withTemplate(f, "prometheus", "http://prometheus.invalid:9090", "absent")
			},
			condition: sluicev1beta1.MetricsReadyCondition, reason: "MetricSecretNotFound",
			says:    []string{"spec.analysis.metrics[0] (errors).templateRef: MetricTemplate missing-secret/errors: spec.provider.secretRef: Secret missing-secret/absent not found"},
			warning: "MetricSecretNotFound",
		},
		{
			name: "a MetricTemplate whose Secret lacks the provider's keys",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				f.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "datadog", Namespace: f.Name}, StringData: map[string]string{"api_key": "x"}})
				return withTemplate(f, "datadog", "", "datadog")
			},
			condition: sluicev1beta1.MetricsReadyCondition, reason: "MetricProviderInvalid",
			says:    []string{"spec.analysis.metrics[0] (errors).templateRef: MetricTemplate malformed-secret/errors: datadog provider: secret key datadog_api_key is required"},
			warning: "MetricProviderInvalid",
		},
		{
			name: "an AlertProvider whose Secret has no address",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				f.Create(
					&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: f.Name}, StringData: map[string]string{"channel": "releases"}},
					&sluicev1beta1.AlertProvider{
						ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: f.Name},
						Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", SecretRef: &corev1.LocalObjectReference{Name: "slack"}},
					},
				)
				return func(c *sluicev1beta1.Canary) {
					c.Spec.Analysis.Alerts = []sluicev1beta1.CanaryAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "slack"}}}
				}
			},
			condition: sluicev1beta1.AlertsReadyCondition, reason: "AlertProviderNotReady", says: []string{"slack"},
			warning: "AlertProviderNotReady",
			also: func(f *faulty) {
				ap := &sluicev1beta1.AlertProvider{}
				controlplane.Eventually(f.T, time.Minute, "the AlertProvider not Ready for its address", func(ctx context.Context) (bool, string) {
					if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.Name, Name: "slack"}, ap); err != nil {
						return false, err.Error()
					}
					ready := meta.FindStatusCondition(ap.Status.Conditions, sluicev1beta1.ReadyCondition)
					return ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == sluicev1beta1.AlertProviderReasonAddressNotFound &&
						strings.Contains(ready.Message, "address"), fmt.Sprintf("%+v", ready)
				})
				waitWarning(f.T, f.Name, "AlertProvider", "slack", sluicev1beta1.AlertProviderReasonAddressNotFound, []string{"address"}, time.Minute)
			},
		},
		{
			name: "a query template that does not render",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				change := withTemplate(f, "prometheus", "http://prometheus.invalid:9090", "")
				tpl := &sluicev1beta1.MetricTemplate{}
				if err := cp.Client.Get(f.T.Context(), client.ObjectKey{Namespace: f.Name, Name: "errors"}, tpl); err != nil {
					f.T.Fatal(err)
				}
				tpl.Spec.Query = `sum(rate(http_requests_total{pod="{{ podname }}"}[{{ interval }}]))`
				if err := cp.Client.Update(f.T.Context(), tpl); err != nil {
					f.T.Fatal(err)
				}
				return change
			},
			condition: sluicev1beta1.MetricsReadyCondition, reason: "TemplateRenderFailed",
			says: []string{"spec.analysis.metrics[0] (errors).templateRef: the query does not render"}, warning: "TemplateRenderFailed",
		},
		{
			name: "a metric provider answering NaN",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				return withTemplate(f, "prometheus", promValue(f.T, "NaN"), "")
			},
			release:   true,
			condition: sluicev1beta1.ReadyCondition, reason: string(sluicev1beta1.CanaryPhaseFailed),
			says: []string{"spec.analysis.metrics[0] (errors): no values found: the value is NaN"}, warning: "ChecksFailed",
		},
		{
			name: "a metric provider answering +Inf",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				return withTemplate(f, "prometheus", promValue(f.T, "+Inf"), "")
			},
			release:   true,
			condition: sluicev1beta1.ReadyCondition, reason: string(sluicev1beta1.CanaryPhaseFailed),
			says: []string{"spec.analysis.metrics[0] (errors): no values found: the value is +Inf"}, warning: "ChecksFailed",
		},
		{
			name: "a metric provider answering garbage",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				return withTemplate(f, "prometheus", promAnswer(f.T, func(w http.ResponseWriter) {
					_, _ = w.Write([]byte("<html>this is not Prometheus</html>"))
				}), "")
			},
			release:   true,
			condition: sluicev1beta1.ReadyCondition, reason: string(sluicev1beta1.CanaryPhaseFailed),
			says: []string{"spec.analysis.metrics[0] (errors): query prometheus"}, warning: "ChecksFailed",
		},
		{
			name: "a metric provider answering 10 MB",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				return withTemplate(f, "prometheus", promAnswer(f.T, func(w http.ResponseWriter) { huge(w, 10<<20) }), "")
			},
			release:   true,
			condition: sluicev1beta1.ReadyCondition, reason: string(sluicev1beta1.CanaryPhaseFailed),
			says: []string{"spec.analysis.metrics[0] (errors): ", fmt.Sprintf("answer too large: more than %d bytes", 8<<20)}, warning: "ChecksFailed",
		},
		{
			name: "a webhook answering 10 MB",
			setup: func(f *faulty) func(*sluicev1beta1.Canary) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { huge(w, 10<<20) }))
				f.T.Cleanup(srv.Close)
				return func(c *sluicev1beta1.Canary) {
					c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "chatty", Type: sluicev1beta1.PreRolloutHook, URL: srv.URL}}
				}
			},
			release:   true,
			condition: sluicev1beta1.ReadyCondition, reason: string(sluicev1beta1.CanaryPhaseFailed),
			says:    []string{"pre-rollout hook chatty (spec.analysis.webhooks[0]): POST http://127.0.0.1:", fmt.Sprintf("read the answer: answer too large: more than %d bytes", hook.MaxAnswer)},
			warning: "ChecksFailed",
		},
	}
	namespaces := map[string]string{
		"a MetricTemplate whose Secret does not exist":            "missing-secret",
		"a MetricTemplate whose Secret lacks the provider's keys": "malformed-secret",
	}
	for i, tt := range tests {
		t.Run(tt.name+" is reported and never promoted", func(t *testing.T) {
			t.Parallel()
			ns := namespaces[tt.name]
			if ns == "" {
				ns = fmt.Sprintf("fault-%d", i)
			}
			f := &faulty{Namespace: fixture.New(t, cp.Client, ns), logs: &logs{}}
			inprocess.Start(t, cp.Config, ns, f.logs.logger())
			f.Create(canary(ns, tt.setup(f)))
			if tt.release {
				f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
				f.Release("podinfo:2")
				if tt.during != nil {
					f.WaitPhase(sluicev1beta1.CanaryPhaseProgressing, time.Minute)
					tt.during(f)
				}
			}
			c := f.WaitFor(fmt.Sprintf("%s %s", tt.condition, tt.reason), 2*time.Minute, func(c *sluicev1beta1.Canary) bool {
				cond := meta.FindStatusCondition(c.Status.Conditions, tt.condition)
				return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tt.reason
			})
			cond := meta.FindStatusCondition(c.Status.Conditions, tt.condition)
			for _, w := range tt.says {
				if !strings.Contains(cond.Message, w) {
					t.Errorf("%s says %q, want it to say %q", tt.condition, cond.Message, w)
				}
			}
			waitWarning(t, ns, "Canary", fixture.Name, tt.warning, tt.says, time.Minute)
			if tt.also != nil {
				tt.also(f)
			}
			if c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded || c.Status.Phase == sluicev1beta1.CanaryPhasePromoting {
				t.Fatalf("phase %s after the fault", c.Status.Phase)
			}
			primary := &appsv1.Deployment{}
			err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: fixture.Name + "-primary"}, primary)
			if err == nil && primary.Spec.Template.Spec.Containers[0].Image != "podinfo:1" {
				t.Fatalf("the primary runs %s: the fault ended in a promotion", primary.Spec.Template.Spec.Containers[0].Image)
			}
			f.logs.noPanic(t)
		})
	}
}
