package helmrelease_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/helmrepo"
)

// otherSettings is the template of chart "other": another application,
// with other objects than chart "app".
const otherSettings = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-other
data:
  chart: {{ .Chart.Name | quote }}
`

// release is the namespace's release of that name in Helm's storage.
func release(t *testing.T, ns, name string) *releasev1.Release {
	t.Helper()
	for _, r := range releases(t, ns) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("helm list has no release %s", name)
	return nil
}

// releasedChart is a wait for the HelmRelease Ready with the chart of
// that name at history's head, at its own version.
func releasedChart(name string, version int) func(*syncv2.HelmRelease) bool {
	return func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Ready") && hr.Status.ObservedGeneration == hr.Generation &&
			len(hr.Status.History) > 0 && hr.Status.History[0].ChartName == name && hr.Status.History[0].Version == version
	}
}

// TestAChartOfAnotherNameIsReinstalledOrUpgradedInPlace changes
// spec.chart.spec.chart to a chart of another name at the same version:
// upgrade.chartNameChangeStrategy Reinstall (the default) uninstalls the
// release and installs the new chart as revision 1, InPlaceUpdate
// upgrades the release to it as revision 2, as in Flux.
func TestAChartOfAnotherNameIsReinstalledOrUpgradedInPlace(t *testing.T) {
	const ns = "helm-chart-name"
	repo := namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	repo.Add(t, helmrepo.NewChart("other", "1.0.0", map[string]string{"other.yaml": otherSettings}, defaults))
	startControllers(t)
	reinstalled := helmRelease(ns, "reinstalled", "1.0.0", nil)
	inPlace := helmRelease(ns, "in-place", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.Upgrade = &syncv2.Upgrade{ChartNameChangeStrategy: syncv2.ChartNameChangeInPlaceUpdate}
	})
	create(t, reinstalled, inPlace)
	for _, hr := range []*syncv2.HelmRelease{reinstalled, inPlace} {
		waitFor(t, hr, "installed", releasedChart("app", 1))
		change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Chart.Spec.Chart = "other" })
	}

	got := waitFor(t, reinstalled, "reinstalled with chart other", releasedChart("other", 1))
	if len(got.Status.History) != 1 {
		t.Errorf("history %+v, want only the new install", got.Status.History)
	}
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonInstallSucceeded {
		t.Errorf("Released %+v, want the chart installed", c)
	}
	if rel := release(t, ns, "reinstalled"); rel.Version != 1 || rel.Chart.Name() != "other" {
		t.Errorf("helm list: revision %d of chart %s, want a new revision 1 of chart other", rel.Version, rel.Chart.Name())
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "reinstalled-settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old chart's ConfigMap after the reinstall: %v, want it uninstalled", err)
	}
	if data := configMap(t, ns, "reinstalled-other"); data["chart"] != "other" {
		t.Errorf("rendered %v", data)
	}
	uninstalled := false
	var list eventsv1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		uninstalled = uninstalled || (e.Regarding.Name == "reinstalled" && e.Reason == syncv2.ReasonUninstallSucceeded && strings.Contains(e.Note, "chartNameChangeStrategy is Reinstall"))
	}
	if !uninstalled {
		t.Error("no UninstallSucceeded Event says why the release was reinstalled")
	}

	got = waitFor(t, inPlace, "upgraded in place to chart other", releasedChart("other", 2))
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonUpgradeSucceeded {
		t.Errorf("Released %+v, want the release upgraded", c)
	}
	if len(got.Status.History) != 2 || got.Status.History[1].ChartName != "app" || got.Status.History[1].Status != "superseded" {
		t.Errorf("history %+v, want chart app superseded by chart other", got.Status.History)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "in-place-settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old chart's ConfigMap after the upgrade: %v, want it gone with the chart", err)
	}
	if data := configMap(t, ns, "in-place-other"); data["chart"] != "other" {
		t.Errorf("rendered %v", data)
	}
}

// TestALiteralValuesFromKeepsItsContentVerbatim sets a Secret's list of
// brokers and a config file at targetPaths: with literal, the commas,
// colons, braces, brackets, equal signs and backslashes are kept, as
// helm --set-literal keeps them; without it Helm's --set syntax cannot
// read the list, and the HelmRelease says so, as in Flux (flux2#2625).
func TestALiteralValuesFromKeepsItsContentVerbatim(t *testing.T) {
	const ns = "helm-literal"
	const brokers, config = "kafka01.net:9092,kafka02.net:9092", "kafka {\n  hosts = [\"b-1:9098\", \"b-2\"]\n  dir = \"C:\\\\data\"\n}\n"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kafka", Namespace: ns}, StringData: map[string]string{"brokers": brokers, "config": config}})
	startControllers(t)
	literal := helmRelease(ns, "literal", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.ValuesFrom = []syncv2.ValuesReference{
			{Kind: "Secret", Name: "kafka", ValuesKey: "brokers", TargetPath: "auth.password", Literal: true},
			{Kind: "Secret", Name: "kafka", ValuesKey: "config", TargetPath: "greeting", Literal: true},
		}
	})
	parsed := helmRelease(ns, "parsed", "1.0.0", func(hr *syncv2.HelmRelease) {
		hr.Spec.ValuesFrom = []syncv2.ValuesReference{{Kind: "Secret", Name: "kafka", ValuesKey: "brokers", TargetPath: "auth.password"}}
	})
	create(t, literal, parsed)
	waitFor(t, literal, "installed", readyWith("1.0.0"))
	if data := configMap(t, ns, "literal-settings"); data["password"] != brokers || data["greeting"] != config {
		t.Errorf("rendered password %q and greeting %q, want the Secret's %q and %q verbatim", data["password"], data["greeting"], brokers, config)
	}
	got := waitFor(t, parsed, "refused", conditionReason("Ready", syncv2.ReasonValuesFailed))
	if c := condition(got, "Ready"); !strings.Contains(c.Message, "spec.valuesFrom[0]") || !strings.Contains(c.Message, `targetPath "auth.password"`) {
		t.Errorf("Ready %+v, want the entry and its targetPath named", c)
	}
}

// TestTheLegacyWaitStrategyIgnoresHealthCheckExprs releases a Widget
// whose phase is never written, judged by spec.healthCheckExprs: the
// poller (the default) waits on the expressions until its timeout, and
// Helm 3's legacy waiter, which does not read them, as in Flux, finds
// the Widget ready as it exists.
func TestTheLegacyWaitStrategyIgnoresHealthCheckExprs(t *testing.T) {
	const ns = "helm-wait-strategy"
	installCELWidgetCRD(t)
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "widget.yaml": widgetTemplate}))
	startControllers(t)
	judged := func(strategy string) func(*syncv2.HelmRelease) {
		return func(hr *syncv2.HelmRelease) {
			hr.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
			hr.Spec.HealthCheckExprs = widgetHealthExprs
			if strategy != "" {
				hr.Spec.WaitStrategy = &syncv2.WaitStrategy{Name: strategy}
			}
		}
	}
	legacy, poller := helmRelease(ns, "legacy", "1.0.0", judged(syncv2.WaitStrategyLegacy)), helmRelease(ns, "poller", "1.0.0", judged(""))
	create(t, legacy, poller)
	got := waitFor(t, legacy, "installed", readyWith("1.0.0"))
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonInstallSucceeded {
		t.Fatalf("Released %+v", c)
	}
	got = waitFor(t, poller, "failed", conditionReason("Released", syncv2.ReasonInstallFailed))
	if c := condition(got, "Released"); !strings.Contains(c.Message, "Widget") {
		t.Fatalf("Released %+v, want the install's wait on the Widget to have failed", c)
	}
}

// TestServerSideApplyDecidesHowHelmAppliesTheRelease reads Helm's record
// of each revision and the field managers of what it applied:
// install.serverSideApply false installs client-side, an upgrade with
// upgrade.serverSideApply unset (auto) keeps to that, and enabled moves
// the release to server-side apply; an install by default is
// server-side.
func TestServerSideApplyDecidesHowHelmAppliesTheRelease(t *testing.T) {
	const ns = "helm-server-side-apply"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	off := false
	clientSide := helmRelease(ns, "client", "1.0.0", func(hr *syncv2.HelmRelease) { hr.Spec.Install = &syncv2.Install{ServerSideApply: &off} })
	create(t, clientSide, helmRelease(ns, "server", "1.0.0", nil))
	applied := func(name string) (method string, operations []string) {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name + "-settings"}, cm); err != nil {
			t.Fatal(err)
		}
		for _, f := range cm.ManagedFields {
			operations = append(operations, string(f.Operation))
		}
		return release(t, ns, name).ApplyMethod, operations
	}
	check := func(name string, version int, want string) {
		t.Helper()
		waitFor(t, helmRelease(ns, name, "", nil), fmt.Sprintf("at revision %d", version), func(hr *syncv2.HelmRelease) bool {
			return readyWith("1.0.0")(hr) && hr.Status.History[0].Version == version
		})
		method, operations := applied(name)
		operation := "Update"
		if want == "ssa" {
			operation = "Apply"
		}
		if method != want || !slices.Contains(operations, operation) {
			t.Errorf("revision %d of %s applied %q with field operations %v, want %q with %s", version, name, method, operations, want, operation)
		}
	}
	check("server", 1, "ssa")
	check("client", 1, "csa")
	change(t, clientSide, func(hr *syncv2.HelmRelease) { hr.Spec.Values = greeting("auto") })
	check("client", 2, "csa")
	change(t, clientSide, func(hr *syncv2.HelmRelease) {
		hr.Spec.Values = greeting("enabled")
		hr.Spec.Upgrade = &syncv2.Upgrade{ServerSideApply: syncv2.ServerSideApplyEnabled}
	})
	check("client", 3, "ssa")
}

// TestTheNewFieldsAreRefusedOutsideFluxsValues: the enums are Flux's.
func TestTheNewFieldsAreRefusedOutsideFluxsValues(t *testing.T) {
	tests := []struct {
		name, field string
		mutate      func(*syncv2.HelmRelease)
	}{
		{"upgrade.serverSideApply", "spec.upgrade.serverSideApply", func(hr *syncv2.HelmRelease) { hr.Spec.Upgrade = &syncv2.Upgrade{ServerSideApply: "true"} }},
		{"rollback.serverSideApply", "spec.rollback.serverSideApply", func(hr *syncv2.HelmRelease) { hr.Spec.Rollback = &syncv2.Rollback{ServerSideApply: "on"} }},
		{"postRenderStrategy", "spec.postRenderStrategy", func(hr *syncv2.HelmRelease) { hr.Spec.PostRenderStrategy = "all" }},
		{"upgrade.chartNameChangeStrategy", "spec.upgrade.chartNameChangeStrategy", func(hr *syncv2.HelmRelease) {
			hr.Spec.Upgrade = &syncv2.Upgrade{ChartNameChangeStrategy: "Replace"}
		}},
		{"waitStrategy.name", "spec.waitStrategy.name", func(hr *syncv2.HelmRelease) { hr.Spec.WaitStrategy = &syncv2.WaitStrategy{Name: "watcher"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := helmRelease("default", "enum-"+strings.ToLower(strings.NewReplacer(".", "-").Replace(tt.name)), "1.0.0", tt.mutate)
			err := cp.Client.Create(t.Context(), hr)
			if err == nil || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "Unsupported value") {
				t.Fatalf("creating a HelmRelease with an unknown %s gave %v, want a refusal naming the field", tt.name, err)
			}
		})
	}
}
