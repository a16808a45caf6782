package helmrelease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/controlplane"
)

// celGroup is the group of the Widget CRD the CEL tests install: a kind
// kstatus knows nothing of, which is Current as soon as it exists.
const celGroup = "cel.helm.sluice.test"

// installCELWidgetCRD installs the Widget CRD, with a status subresource,
// and waits until it is served.
func installCELWidgetCRD(t *testing.T) {
	t.Helper()
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + celGroup},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: celGroup,
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
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(celGroup + "/v1")
		l.SetKind("WidgetList")
		err := cp.Client.List(ctx, l)
		return err == nil, fmt.Sprint(err)
	})
}

func celWidget(ns, name string) *unstructured.Unstructured {
	w := &unstructured.Unstructured{}
	w.SetAPIVersion(celGroup + "/v1")
	w.SetKind("Widget")
	w.SetNamespace(ns)
	w.SetName(name)
	return w
}

// widgetTemplate is a Widget named after the release.
const widgetTemplate = "apiVersion: " + celGroup + "/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}-widget\nspec:\n  size: 1\n"

// widgetHealthExprs judge a Widget by its status.phase.
var widgetHealthExprs = []syncv1.CustomHealthCheck{{
	APIVersion: celGroup + "/v1", Kind: "Widget",
	Failed:  "status.phase == 'Failed'",
	Current: "status.phase == 'Ready'",
}}

// setWidgetPhase waits for the Widget and writes its status.phase, as its
// controller would.
func setWidgetPhase(t *testing.T, ns, name, phase string) {
	t.Helper()
	w := celWidget(ns, name)
	controlplane.Eventually(t, 30*time.Second, "Widget "+name, func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(w), w)
		return err == nil, fmt.Sprint(err)
	})
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"status":{"phase":%q}}`, phase))
	if err := cp.Client.Status().Patch(t.Context(), w, patch); err != nil {
		t.Fatalf("set the phase of Widget %s: %v", name, err)
	}
}

func TestHealthCheckExprsDecideWhenHelmsWaitForAReleaseEnds(t *testing.T) {
	const ns = "helm-cel"
	installCELWidgetCRD(t)
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "widget.yaml": widgetTemplate}))
	startControllers(t)

	// Helm's wait holds the install until the Widget's phase is Ready,
	// where kstatus would call it Current at once.
	hr := helmRelease(ns, "web", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Timeout = &metav1.Duration{Duration: time.Minute}
		hr.Spec.HealthCheckExprs = widgetHealthExprs
	})
	create(t, hr)
	setWidgetPhase(t, ns, "web-widget", "Pending")
	time.Sleep(2 * time.Second)
	if rels := releases(t, ns); len(rels) != 1 || rels[0].Info.Status != common.StatusPendingInstall {
		t.Fatalf("helm list: %+v, want the install still waiting", rels)
	}
	setWidgetPhase(t, ns, "web-widget", "Ready")
	got := waitFor(t, hr, "installed", readyWith("1.0.0"))
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonInstallSucceeded {
		t.Fatalf("Released %+v", c)
	}

	// A failed phase ends the wait at once, and the install fails.
	failed := helmRelease(ns, "bad", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
		hr.Spec.HealthCheckExprs = widgetHealthExprs
	})
	create(t, failed)
	setWidgetPhase(t, ns, "bad-widget", "Failed")
	start := time.Now()
	got = waitFor(t, failed, "failed", func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, "Released")
		return c != nil && c.Status == metav1.ConditionFalse
	})
	if c := condition(got, "Released"); c.Reason != syncv2.ReasonInstallFailed || !strings.Contains(c.Message, "Widget") || !strings.Contains(c.Message, "spec.healthCheckExprs[0].failed is true") {
		t.Fatalf("Released %+v, want the install failed naming the Widget and the expression", c)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("the failed Widget was noticed after %s", d)
	}

	// An expression that does not compile stops the HelmRelease before
	// anything is released, until the spec changes.
	invalid := helmRelease(ns, "invalid", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.HealthCheckExprs = []syncv1.CustomHealthCheck{{APIVersion: celGroup + "/v1", Kind: "Widget", Current: "status.phase =="}}
	})
	create(t, invalid)
	got = waitFor(t, invalid, "refused", func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, "Ready")
		return c != nil && c.Reason == syncv2.ReasonInvalidCELExpression
	})
	if c := condition(got, "Ready"); c.Status != metav1.ConditionFalse || !strings.HasPrefix(c.Message, "spec.healthCheckExprs[0].current: invalid CEL expression") || !meta.IsStatusConditionTrue(got.Status.Conditions, "Stalled") {
		t.Fatalf("conditions %+v, want Stalled naming the expression", got.Status.Conditions)
	}
	controlplane.Eventually(t, 10*time.Second, "a Warning Event naming the expression", func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.Regarding.Name == "invalid" && e.Type == corev1.EventTypeWarning && e.Reason == syncv2.ReasonInvalidCELExpression && strings.Contains(e.Note, "spec.healthCheckExprs[0].current") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(list.Items))
	})
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(celWidget(ns, "invalid-widget")), celWidget(ns, "invalid-widget")); !apierrors.IsNotFound(err) {
		t.Fatalf("a HelmRelease with an invalid expression released its Widget: %v", err)
	}
}

func TestAReadyExprHoldsAReleaseUntilItsDependencyMatches(t *testing.T) {
	const ns = "helm-cel-deps"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	database := helmRelease(ns, "database", "*", func(hr *syncv2.HelmRelease) { hr.Labels = map[string]string{"app/version": "v1"} })
	app := helmRelease(ns, "app", "*", func(hr *syncv2.HelmRelease) {
		hr.Labels = map[string]string{"app/version": "v2"}
		hr.Spec.DependsOn = []syncv1.DependencyReference{{
			Name:      "database",
			ReadyExpr: "dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] && dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
		}}
	})
	create(t, database, app)
	waitFor(t, database, "installed", readyWith("1.0.0"))
	waitFor(t, app, "held", func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, "Ready")
		return c != nil && c.Reason == syncv2.ReasonDependencyNotReady && strings.Contains(c.Message, "spec.dependsOn[0].readyExpr is false")
	})
	if rels := releases(t, ns); len(rels) != 1 {
		t.Fatalf("helm list: %+v, want the database alone", rels)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"app/version":"v2"}}}`))
	if err := cp.Client.Patch(t.Context(), database, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, app, "installed", readyWith("1.0.0"))
}
