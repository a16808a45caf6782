package v1beta1_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// readManifests decodes every object of a multi-document YAML file.
func readManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.SplitYAML(string(data))
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return objs
}

// pruned lists the paths of want that are missing from or different in
// have: fields the schema does not know are silently dropped by the API
// server, so a manifest that is accepted may still have lost settings.
func pruned(want, have any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range w {
			out = append(out, pruned(v, h[k], path+"."+k)...)
		}
		return out
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return []string{path}
		}
		var out []string
		for i := range w {
			out = append(out, pruned(w[i], h[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if fmt.Sprint(want) != fmt.Sprint(have) {
			return []string{fmt.Sprintf("%s: %v became %v", path, want, have)}
		}
		return nil
	}
}

func TestFlaggerManifestsAreAcceptedAfterChangingOnlyTheAPIVersion(t *testing.T) {
	const ns = "flagger"
	createNamespace(t, ns)
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "test", "fixtures", "flagger", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	kinds := map[string]int{}
	for _, file := range files {
		for _, obj := range readManifests(t, file) {
			name := fmt.Sprintf("%s/%s %s", filepath.Base(file), obj.GetKind(), obj.GetName())
			t.Run(name, func(t *testing.T) {
				if obj.GetAPIVersion() != "flagger.app/v1beta1" {
					t.Fatalf("fixture apiVersion is %q, want flagger.app/v1beta1", obj.GetAPIVersion())
				}
				original := obj.DeepCopy().Object
				obj.SetAPIVersion(sluicev1beta1.GroupVersion.String())
				obj.SetNamespace(ns)
				if err := cp.Client.Create(t.Context(), obj); err != nil {
					t.Fatalf("rejected: %v", err)
				}
				stored := &unstructured.Unstructured{}
				stored.SetGroupVersionKind(obj.GroupVersionKind())
				if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), stored); err != nil {
					t.Fatal(err)
				}
				if lost := pruned(original["spec"], stored.Object["spec"], "spec"); len(lost) > 0 {
					sort.Strings(lost)
					t.Fatalf("the API server dropped or changed fields:\n%s", strings.Join(lost, "\n"))
				}
				kinds[obj.GetKind()]++
			})
		}
	}
	for _, kind := range []string{"Canary", "MetricTemplate", "AlertProvider"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s was accepted", kind)
		}
	}
}

func TestSchemaDefaultsAreApplied(t *testing.T) {
	const ns = "defaults"
	createNamespace(t, ns)
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
			Service:   sluicev1beta1.CanaryService{Port: 80},
			Analysis: &sluicev1beta1.CanaryAnalysis{
				StepWeight:      10,
				SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "canary"},
				Metrics: []sluicev1beta1.CanaryMetric{{
					Name:           sluicev1beta1.MetricRequestSuccessRate,
					ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptrTo(99.0)},
				}},
				Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "load", URL: "http://load.test/"}},
				Alerts:   []sluicev1beta1.CanaryAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "slack"}}},
			},
		},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	a := c.Spec.Analysis
	got := map[string]any{
		"progressDeadlineSeconds": *c.Spec.ProgressDeadlineSeconds,
		"interval":                a.Interval,
		"threshold":               a.Threshold,
		"primaryReadyThreshold":   *a.PrimaryReadyThreshold,
		"canaryReadyThreshold":    *a.CanaryReadyThreshold,
		"metric interval":         a.Metrics[0].Interval,
		"webhook timeout":         a.Webhooks[0].Timeout,
		"alert severity":          a.Alerts[0].Severity,
		"cookie maxAge":           a.SessionAffinity.MaxAge,
	}
	want := map[string]any{
		"progressDeadlineSeconds": int32(sluicev1beta1.DefaultProgressDeadlineSeconds),
		"interval":                sluicev1beta1.DefaultAnalysisInterval,
		"threshold":               1,
		"primaryReadyThreshold":   sluicev1beta1.DefaultReadyThreshold,
		"canaryReadyThreshold":    sluicev1beta1.DefaultReadyThreshold,
		"metric interval":         sluicev1beta1.DefaultMetricInterval,
		"webhook timeout":         sluicev1beta1.DefaultWebhookTimeout,
		"alert severity":          sluicev1beta1.SeverityInfo,
		"cookie maxAge":           sluicev1beta1.DefaultSessionAffinityMaxAge,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %v\nwant %v", got, want)
	}

	at := &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: ns},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", Address: "https://hooks.slack.com/services/x"},
	}
	if err := cp.Client.Create(t.Context(), at); err != nil {
		t.Fatal(err)
	}
	if at.Spec.Channel != "general" || at.Spec.Username != "sluice" {
		t.Fatalf("alert provider defaults: channel %q username %q", at.Spec.Channel, at.Spec.Username)
	}
}

func ptrTo[T any](v T) *T { return &v }

const (
	validCanary = `
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
    webhooks:
      - name: load-test
        url: http://loadtester.test/
    alerts:
      - name: team
        providerRef: {name: slack}
`
	validMetricTemplate = `
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: errors}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: sum(rate(errors[1m]))
`
	validAlertProvider = `
apiVersion: sluice.dev/v1beta1
kind: AlertProvider
metadata: {name: slack}
spec:
  type: slack
  address: https://hooks.slack.com/services/x
`
)

func TestInvalidSpecsAreRejectedNamingTheField(t *testing.T) {
	const ns = "invalid"
	createNamespace(t, ns)
	tests := []struct {
		name  string
		base  string
		patch string // a JSON merge patch, in YAML; null removes a field
		want  []string
	}{
		{"stepWeight and stepWeights together", validCanary, `{spec: {analysis: {stepWeights: [10, 20]}}}`,
			[]string{"spec.analysis.stepWeights", "stepWeight and stepWeights are mutually exclusive"}},
		{"stepWeights out of order", validCanary, `{spec: {analysis: {stepWeight: null, stepWeights: [10, 5, 20]}}}`,
			[]string{"spec.analysis.stepWeights", "ascending order"}},
		{"a step weight of zero", validCanary, `{spec: {analysis: {stepWeight: null, stepWeights: [0, 50]}}}`,
			[]string{"spec.analysis.stepWeights[0]", "greater than or equal to 1"}},
		{"a step weight above 100", validCanary, `{spec: {analysis: {stepWeight: null, stepWeights: [50, 101]}}}`,
			[]string{"spec.analysis.stepWeights[1]", "less than or equal to 100"}},
		{"a repeated step weight", validCanary, `{spec: {analysis: {stepWeight: null, stepWeights: [10, 10]}}}`,
			[]string{"spec.analysis.stepWeights[1]", "Duplicate value"}},
		{"a stepWeight above 100", validCanary, `{spec: {analysis: {stepWeight: 150, maxWeight: null}}}`,
			[]string{"spec.analysis.stepWeight", "less than or equal to 100"}},
		{"a stepWeight above maxWeight", validCanary, `{spec: {analysis: {stepWeight: 60}}}`,
			[]string{"spec.analysis.stepWeight", "stepWeight must not be greater than maxWeight"}},
		{"a maxWeight of zero", validCanary, `{spec: {analysis: {maxWeight: 0}}}`,
			[]string{"spec.analysis.maxWeight", "greater than or equal to 1"}},
		{"thresholdRange min above max", validCanary, `{spec: {analysis: {metrics: [{name: request-success-rate, thresholdRange: {min: 99, max: 90}}]}}}`,
			[]string{"spec.analysis.metrics[0].thresholdRange.min", "min must not be greater than thresholdRange.max"}},
		{"a metric with no bounds", validCanary, `{spec: {analysis: {metrics: [{name: request-success-rate}]}}}`,
			[]string{"spec.analysis.metrics[0].thresholdRange", "can never fail"}},
		{"a custom metric with no template", validCanary, `{spec: {analysis: {metrics: [{name: error-rate, thresholdRange: {max: 1}}]}}}`,
			[]string{"spec.analysis.metrics[0].templateRef", "needs templateRef"}},
		{"an unknown provider", validCanary, `{spec: {provider: envoy}}`,
			[]string{"spec.provider", `Unsupported value: "envoy"`}},
		{"equal session affinity cookie names", validCanary, `{spec: {analysis: {sessionAffinity: {cookieName: canary, primaryCookieName: canary}}}}`,
			[]string{"spec.analysis.sessionAffinity.primaryCookieName", "must differ from cookieName"}},
		{"an interval below 10s", validCanary, `{spec: {analysis: {interval: 5s}}}`,
			[]string{"spec.analysis.interval", "at least 10s"}},
		{"an interval that is not a duration", validCanary, `{spec: {analysis: {interval: soon}}}`,
			[]string{"spec.analysis.interval", "at least 10s"}},
		{"no strategy at all", validCanary, `{spec: {analysis: {stepWeight: null, maxWeight: null}}}`,
			[]string{"spec.analysis", "one of iterations (A/B testing, blue/green) or stepWeight or stepWeights (canary) is required"}},
		{"iterations with stepWeight", validCanary, `{spec: {analysis: {iterations: 10}}}`,
			[]string{"spec.analysis.iterations", "cannot be combined with stepWeight"}},
		{"mirrorWeight without mirror", validCanary, `{spec: {analysis: {stepWeight: null, maxWeight: null, iterations: 5, mirrorWeight: 50}}}`,
			[]string{"spec.analysis.mirrorWeight", "requires mirror: true"}},
		{"an unknown webhook type", validCanary, `{spec: {analysis: {webhooks: [{name: x, type: pre-promotion, url: "http://x.test/"}]}}}`,
			[]string{"spec.analysis.webhooks[0].type", `Unsupported value: "pre-promotion"`}},
		{"a webhook url that is not a URL", validCanary, `{spec: {analysis: {webhooks: [{name: x, url: "loadtester"}]}}}`,
			[]string{"spec.analysis.webhooks[0].url", "http or https URL"}},
		{"a webhook timeout that is not a duration", validCanary, `{spec: {analysis: {webhooks: [{name: x, url: "http://x.test/", timeout: "10"}]}}}`,
			[]string{"spec.analysis.webhooks[0].timeout", "should match"}},
		{"an unknown alert severity", validCanary, `{spec: {analysis: {alerts: [{name: x, severity: critical, providerRef: {name: slack}}]}}}`,
			[]string{"spec.analysis.alerts[0].severity", `Unsupported value: "critical"`}},
		{"a StatefulSet target", validCanary, `{spec: {targetRef: {kind: StatefulSet}}}`,
			[]string{"spec.targetRef.kind", `Unsupported value: "StatefulSet"`}},
		{"no target", validCanary, `{spec: {targetRef: null}}`,
			[]string{"spec.targetRef", "Required value"}},
		{"a service port of zero", validCanary, `{spec: {service: {port: 0}}}`,
			[]string{"spec.service.port", "greater than or equal to 1"}},
		{"a ready threshold above 100", validCanary, `{spec: {analysis: {primaryReadyThreshold: 120}}}`,
			[]string{"spec.analysis.primaryReadyThreshold", "less than or equal to 100"}},
		{"nginx without an ingress", validCanary, `{spec: {provider: nginx}}`,
			[]string{"spec.ingressRef", "ingressRef is required when provider is nginx or skipper"}},
		{"apisix without a route", validCanary, `{spec: {provider: apisix}}`,
			[]string{"spec.routeRef", "routeRef is required when provider is apisix"}},
		{"appmesh without a mesh", validCanary, `{spec: {provider: appmesh}}`,
			[]string{"spec.service.meshName", "service.meshName is required when provider is appmesh"}},
		{"a Service target under another apex name", validCanary, `{spec: {targetRef: {apiVersion: v1, kind: Service, name: podinfo}, service: {name: web}}}`,
			[]string{"spec.service.name", "the target Service is the apex"}},
		{"a Service target with an autoscaler", validCanary, `{spec: {targetRef: {apiVersion: v1, kind: Service, name: podinfo}, autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}}}`,
			[]string{"spec.autoscalerRef", "a Service has no replicas"}},
		{"a Knative Service target on another provider", validCanary, `{spec: {provider: istio, targetRef: {apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}}}`,
			[]string{"spec.provider", "provider knative and a Knative Service target"}},
		{"provider knative on a Deployment", validCanary, `{spec: {provider: knative}}`,
			[]string{"spec.provider", "provider knative and a Knative Service target"}},
		{"an ingressRef that is not an Ingress", validCanary, `{spec: {provider: nginx, ingressRef: {apiVersion: v1, kind: Service, name: web}}}`,
			[]string{"spec.ingressRef.kind", "must be Ingress"}},
		{"a metricsServer that is not a URL", validCanary, `{spec: {metricsServer: "prometheus:9090 "}}`,
			[]string{"spec.metricsServer", "http or https URL"}},
		{"an unknown cookie SameSite", validCanary, `{spec: {analysis: {sessionAffinity: {cookieName: c, sameSite: Sometimes}}}}`,
			[]string{"spec.analysis.sessionAffinity.sameSite", `Unsupported value: "Sometimes"`}},
		{"a header match with two kinds", validCanary, `{spec: {analysis: {match: [{headers: {x-canary: {exact: a, regex: b}}}]}}}`,
			[]string{"spec.analysis.match[0].headers[x-canary]", "only one of exact, prefix, suffix and regex"}},
		{"an unknown metric provider", validMetricTemplate, `{spec: {provider: {type: statsd}}}`,
			[]string{"spec.provider.type", `Unsupported value: "statsd"`}},
		{"a Prometheus template without an address", validMetricTemplate, `{spec: {provider: {address: null}}}`,
			[]string{"spec.provider.address", "address is required for this provider type"}},
		{"a template without a query", validMetricTemplate, `{spec: {query: null}}`,
			[]string{"spec.query", "Required value"}},
		{"an unknown alert provider", validAlertProvider, `{spec: {type: pagerduty}}`,
			[]string{"spec.type", `Unsupported value: "pagerduty"`}},
		{"an alert provider with nowhere to post", validAlertProvider, `{spec: {address: null}}`,
			[]string{"spec.address", "one of address or secretRef is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is rejected", func(t *testing.T) {
			obj := patched(t, tt.base, tt.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(t.Context(), obj, client.DryRunAll, client.FieldValidation("Strict"))
			if err == nil {
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}

	t.Run("the unpatched bases are accepted", func(t *testing.T) {
		for _, base := range []string{validCanary, validMetricTemplate, validAlertProvider} {
			obj := patched(t, base, `{}`)
			obj.SetNamespace(ns)
			if err := cp.Client.Create(t.Context(), obj, client.DryRunAll); err != nil {
				t.Errorf("%s rejected: %v", obj.GetKind(), err)
			}
		}
	})
}

// patched applies a JSON merge patch, written in YAML, to a YAML manifest.
func patched(t *testing.T, base, patch string) *unstructured.Unstructured {
	t.Helper()
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, err := yaml.YAMLToJSON([]byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := jsonpatch.MergePatch(baseJSON, patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(merged); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestStatusKeepsEveryField(t *testing.T) {
	const ns = "status"
	createNamespace(t, ns)
	c := patched(t, validCanary, `{}`)
	c.SetNamespace(ns)
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	status := map[string]any{
		"observedGeneration":            int64(1),
		"phase":                         "Progressing",
		"failedChecks":                  int64(1),
		"canaryWeight":                  int64(20),
		"iterations":                    int64(2),
		"sessionAffinityCookie":         "canary=abc",
		"previousSessionAffinityCookie": "canary=old",
		"primarySessionAffinityCookie":  "primary=def",
		"trackedConfigs":                map[string]any{"configmap/podinfo-config": "5d8f"},
		"lastAppliedSpec":               "7c9b6f",
		"lastPromotedSpec":              "6b8a5e",
		"lastTrackedRevision":           "7c9b6f",
		"lastTransitionTime":            "2026-11-23T10:00:00Z",
		"conditions": []any{
			map[string]any{"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Advance podinfo weight 20", "lastTransitionTime": "2026-11-23T10:00:00Z", "observedGeneration": int64(1)},
			map[string]any{"type": "Promoted", "status": "Unknown", "reason": "Progressing", "message": "New revision detected", "lastTransitionTime": "2026-11-23T10:00:00Z"},
		},
	}
	c.Object["status"] = status
	if err := cp.Client.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	var typed sluicev1beta1.Canary
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(c), &typed); err != nil {
		t.Fatal(err)
	}
	if lost := pruned(status, runtimeToMap(t, typed.Status), "status"); len(lost) > 0 {
		t.Fatalf("status lost fields:\n%s", strings.Join(lost, "\n"))
	}
	if typed.Status.Phase != sluicev1beta1.CanaryPhaseProgressing {
		t.Fatalf("phase %q", typed.Status.Phase)
	}
}

func runtimeToMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCRDsAreServedAsDeclared(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: "canaries.sluice.dev"}, &crd); err != nil {
		t.Fatal(err)
	}
	v := crd.Spec.Versions[0]
	t.Run("the Canary printer columns show status, weight, failed checks and last transition", func(t *testing.T) {
		var columns []string
		for _, c := range v.AdditionalPrinterColumns {
			if c.Priority == 0 {
				columns = append(columns, c.Name)
			}
		}
		want := []string{"Status", "Weight", "FailedChecks", "LastTransitionTime"}
		if !slices.Equal(columns, want) {
			t.Fatalf("columns %v, want %v", columns, want)
		}
	})
	t.Run("the provider enum is the list the operator accepts", func(t *testing.T) {
		var enum []string
		for _, e := range v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["provider"].Enum {
			enum = append(enum, strings.Trim(string(e.Raw), `"`))
		}
		var known []string
		for _, p := range sluicev1beta1.Providers() {
			known = append(known, string(p))
		}
		if !slices.Equal(enum, known) {
			t.Fatalf("CRD enum %v, Providers() %v", enum, known)
		}
	})
	t.Run("the Helm chart ships the same CRDs as kustomize", func(t *testing.T) {
		root := controlplane.RepoRoot()
		for _, name := range []string{"sluice.dev_canaries.yaml", "sluice.dev_metrictemplates.yaml", "sluice.dev_alertproviders.yaml"} {
			a, errA := os.ReadFile(filepath.Join(root, "kustomize", "crds", name))
			b, errB := os.ReadFile(filepath.Join(root, "charts", "sluice", "crds", name))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between kustomize/crds and charts/sluice/crds (%v, %v): run make generate", name, errA, errB)
			}
		}
	})
}
