package kustomization_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/controlplane"
)

// widgetGroup is the group of the Widget CRD the CEL tests install: a
// kind kstatus knows nothing of, which is Current as soon as it exists.
const widgetGroup = "cel.sluice.test"

// installWidgetCRD installs the Widget CRD, with a status subresource,
// and waits until it is served.
func installWidgetCRD(t *testing.T) {
	t.Helper()
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + widgetGroup},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: widgetGroup,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Widget", ListKind: "WidgetList", Plural: "widgets", Singular: "widget"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	if err := cp.Client.Create(t.Context(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	controlplane.Eventually(t, 30*time.Second, "the Widget CRD served", func(ctx context.Context) (bool, string) {
		err := cp.Client.List(ctx, widgetList())
		return err == nil, fmt.Sprint(err)
	})
}

func widgetList() *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion(widgetGroup + "/v1")
	l.SetKind("WidgetList")
	return l
}

func widgetYAML(name string) string {
	return "apiVersion: " + widgetGroup + "/v1\nkind: Widget\nmetadata: {name: " + name + "}\nspec: {size: 1}\n"
}

// setPhase writes a Widget's status.phase, as its controller would.
func setPhase(t *testing.T, ns, name, phase string) {
	t.Helper()
	w := &unstructured.Unstructured{}
	w.SetAPIVersion(widgetGroup + "/v1")
	w.SetKind("Widget")
	w.SetNamespace(ns)
	w.SetName(name)
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"status":{"phase":%q}}`, phase))
	if err := cp.Client.Status().Patch(t.Context(), w, patch); err != nil {
		t.Fatalf("set the phase of Widget %s: %v", name, err)
	}
}

// warned tells whether a Warning Event with reason about the object named
// says what.
func warned(ctx context.Context, ns, name, reason, what string) (bool, string) {
	var list eventsv1.EventList
	if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return false, err.Error()
	}
	for _, ev := range list.Items {
		if ev.Regarding.Name == name && ev.Type == corev1.EventTypeWarning && ev.Reason == reason && strings.Contains(ev.Note, what) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%d events, none a %s Warning about %s naming %s", len(list.Items), reason, name, what)
}

// widgetHealth is Flux's way of judging a kind by its status.phase.
var widgetHealth = []syncv1.CustomHealthCheck{{
	APIVersion: widgetGroup + "/v1", Kind: "Widget",
	Failed:  "status.phase == 'Failed'",
	Current: "status.phase == 'Ready'",
}}

func TestHealthCheckExprsDecideWhenACustomResourceIsHealthy(t *testing.T) {
	const ns = "cel-health"
	installWidgetCRD(t)
	_, revision := tenant(t, ns, map[string]string{
		"ready/widget.yaml":   widgetYAML("ready"),
		"failed/widget.yaml":  widgetYAML("failed"),
		"never/widget.yaml":   widgetYAML("never"),
		"checks/widget.yaml":  widgetYAML("checked"),
		"invalid/widget.yaml": widgetYAML("invalid"),
	})
	startControllers(t)
	ks := func(name string, mutate func(*syncv1.Kustomization)) *syncv1.Kustomization {
		k := kustomization(name, name, func(ks *syncv1.Kustomization) {
			ks.Namespace, ks.Spec.TargetNamespace = ns, ns
			ks.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
			ks.Spec.HealthCheckExprs = widgetHealth
			mutate(ks)
		})
		create(t, k)
		return k
	}
	waitsFor := func(what string) func(*syncv1.Kustomization) bool {
		return func(ks *syncv1.Kustomization) bool {
			c := condition(ks, "Ready")
			return ks.Status.LastAppliedRevision == revision && c != nil && c.Status == metav1.ConditionUnknown && strings.Contains(c.Message, "waiting for: "+what)
		}
	}

	// Without a phase the expressions cannot be evaluated yet: the
	// Kustomization waits, where kstatus would call the Widget Current.
	ready := ks("ready", func(ks *syncv1.Kustomization) { ks.Spec.Wait = true })
	waitFor(t, client.ObjectKeyFromObject(ready), waitsFor("Widget/cel-health/ready"))
	setPhase(t, ns, "ready", "Pending")
	// Neither expression is true: still waiting.
	time.Sleep(time.Second)
	waitFor(t, client.ObjectKeyFromObject(ready), waitsFor("Widget/cel-health/ready"))
	setPhase(t, ns, "ready", "Ready")
	waitFor(t, client.ObjectKeyFromObject(ready), readyAt(revision))

	// healthChecks naming the Widget are judged the same way.
	checked := ks("checks", func(ks *syncv1.Kustomization) {
		ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{{APIVersion: widgetGroup + "/v1", Kind: "Widget", Name: "checked", Namespace: ns}}
	})
	waitFor(t, client.ObjectKeyFromObject(checked), waitsFor("Widget/cel-health/checked"))
	setPhase(t, ns, "checked", "Ready")
	waitFor(t, client.ObjectKeyFromObject(checked), readyAt(revision))

	// failed ends the wait at once, long before the timeout.
	failed := ks("failed", func(ks *syncv1.Kustomization) { ks.Spec.Wait = true })
	waitFor(t, client.ObjectKeyFromObject(failed), waitsFor("Widget/cel-health/failed"))
	setPhase(t, ns, "failed", "Failed")
	got := waitFor(t, client.ObjectKeyFromObject(failed), func(ks *syncv1.Kustomization) bool {
		c := condition(ks, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse
	})
	if c := condition(got, "Ready"); c.Reason != syncv1.ReasonHealthCheckFailed || !strings.Contains(c.Message, "Widget/cel-health/failed status: 'Failed': spec.healthCheckExprs[0].failed is true") {
		t.Fatalf("Ready %+v, want HealthCheckFailed naming the Widget and the expression", c)
	}

	// An expression that never evaluates is waited on until the timeout,
	// as in Flux, and then named with its error.
	never := ks("never", func(ks *syncv1.Kustomization) {
		ks.Spec.Wait = true
		ks.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
	})
	got = waitFor(t, client.ObjectKeyFromObject(never), func(ks *syncv1.Kustomization) bool {
		c := condition(ks, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse
	})
	if c := condition(got, "Ready"); c.Reason != syncv1.ReasonHealthCheckFailed || !strings.Contains(c.Message, "timeout waiting for") ||
		!strings.Contains(c.Message, "Widget/cel-health/never status: 'Unknown': spec.healthCheckExprs[0].failed: no such attribute") {
		t.Fatalf("Ready %+v, want a timeout naming the Widget and the expression's error", c)
	}

	// An expression that does not compile stops the Kustomization before
	// anything is applied, until the spec changes.
	invalid := ks("invalid", func(ks *syncv1.Kustomization) {
		ks.Spec.Wait = true
		ks.Spec.HealthCheckExprs = []syncv1.CustomHealthCheck{widgetHealth[0], {APIVersion: "v1", Kind: "ConfigMap", Current: "has(data)"}}
	})
	got = waitFor(t, client.ObjectKeyFromObject(invalid), func(ks *syncv1.Kustomization) bool {
		c := condition(ks, "Ready")
		return c != nil && c.Reason == syncv1.ReasonInvalidCELExpression
	})
	if c := condition(got, "Ready"); c.Status != metav1.ConditionFalse || !strings.HasPrefix(c.Message, "spec.healthCheckExprs[1].current: invalid CEL expression") {
		t.Fatalf("Ready %+v, want the expression named", c)
	}
	if c := condition(got, "Stalled"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("conditions %+v, want Stalled", got.Status.Conditions)
	}
	controlplane.Eventually(t, 10*time.Second, "a Warning Event naming the expression", func(ctx context.Context) (bool, string) {
		return warned(ctx, ns, "invalid", syncv1.ReasonInvalidCELExpression, "spec.healthCheckExprs[1].current")
	})
	w := &unstructured.Unstructured{}
	w.SetAPIVersion(widgetGroup + "/v1")
	w.SetKind("Widget")
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "invalid"}, w); !apierrors.IsNotFound(err) {
		t.Fatalf("a Kustomization with an invalid expression applied its Widget: %v", err)
	}
}

func TestAReadyExprHoldsADependentUntilTheDependencyMatches(t *testing.T) {
	const ns = "cel-deps"
	_, revision := tenant(t, ns, map[string]string{
		"frontend/settings.yaml": settingsYAML,
	})
	startControllers(t)
	// The backend never turns Ready: its source does not exist. The
	// readyExpr replaces the Ready check, as in Flux.
	backend := kustomization("backend", "backend", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Labels = ns, map[string]string{"app/version": "v1"}
		ks.Spec.SourceRef.Name = "nowhere"
	})
	frontend := kustomization("frontend", "frontend", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Spec.TargetNamespace, ks.Labels = ns, ns, map[string]string{"app/version": "v2"}
		ks.Spec.DependsOn = []syncv1.DependencyReference{{
			Name:      "backend",
			ReadyExpr: "dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] && dep.kind == 'Kustomization'",
		}}
	})
	create(t, backend, frontend)
	held := waitFor(t, client.ObjectKeyFromObject(frontend), func(ks *syncv1.Kustomization) bool {
		c := condition(ks, "Ready")
		return c != nil && c.Reason == syncv1.ReasonDependencyNotReady
	})
	if c := condition(held, "Ready"); !strings.Contains(c.Message, "dependency cel-deps/backend is not ready: spec.dependsOn[0].readyExpr is false") {
		t.Fatalf("Ready %+v, want the readyExpr named", c)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the dependent applied before its dependency matched: %v", err)
	}

	// The backend moves to v2: the change wakes the frontend at once,
	// though its retry is an hour away and the backend is still not Ready.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"app/version":"v2"}}}`))
	if err := cp.Client.Patch(t.Context(), backend, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client.ObjectKeyFromObject(frontend), readyAt(revision))
	if b := waitFor(t, client.ObjectKeyFromObject(backend), func(*syncv1.Kustomization) bool { return true }); condition(b, "Ready") != nil && condition(b, "Ready").Status == metav1.ConditionTrue {
		t.Fatalf("the backend turned Ready: %+v", b.Status.Conditions)
	}

	// A readyExpr that does not compile is named, and nothing waits on
	// the dependency.
	broken := kustomization("broken", "frontend", func(ks *syncv1.Kustomization) {
		ks.Namespace, ks.Spec.TargetNamespace = ns, ns
		ks.Spec.DependsOn = []syncv1.DependencyReference{{Name: "backend"}, {Name: "frontend", ReadyExpr: "dep.status.conditions.exists(c, c.type == 'Ready' &&"}}
	})
	create(t, broken)
	got := waitFor(t, client.ObjectKeyFromObject(broken), func(ks *syncv1.Kustomization) bool {
		c := condition(ks, "Ready")
		return c != nil && c.Reason == syncv1.ReasonInvalidCELExpression
	})
	if c := condition(got, "Ready"); !strings.HasPrefix(c.Message, "spec.dependsOn[1].readyExpr: invalid CEL expression") || condition(got, "Stalled") == nil {
		t.Fatalf("conditions %+v, want Stalled naming the readyExpr", got.Status.Conditions)
	}
	controlplane.Eventually(t, 10*time.Second, "a Warning Event naming the readyExpr", func(ctx context.Context) (bool, string) {
		return warned(ctx, ns, "broken", syncv1.ReasonInvalidCELExpression, "spec.dependsOn[1].readyExpr")
	})
}

func TestTheAPIServerRefusesHealthCheckExprsWithoutTheirFields(t *testing.T) {
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cel-refused"}})
	tests := []struct {
		name  string
		check syncv1.CustomHealthCheck
		field string
	}{
		{"an empty current", syncv1.CustomHealthCheck{APIVersion: "example.com/v1", Kind: "Widget"}, "spec.healthCheckExprs[0].current"},
		{"an apiVersion with two slashes", syncv1.CustomHealthCheck{APIVersion: "example.com/v1/x", Kind: "Widget", Current: "true"}, "spec.healthCheckExprs[0].apiVersion"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := kustomization(fmt.Sprintf("refused-%d", i), "app", func(ks *syncv1.Kustomization) {
				ks.Namespace = "cel-refused"
				ks.Spec.HealthCheckExprs = []syncv1.CustomHealthCheck{tt.check}
			})
			err := cp.Client.Create(t.Context(), ks)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("create: %v, want it refused naming %s", err, tt.field)
			}
		})
	}
}
