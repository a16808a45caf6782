package helmrelease_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/helmrelease"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// startControllers runs the operator as cmd/sluice builds it
// (operator.New), over every namespace, until the test ends. The tests of
// this package run one at a time.
func startControllers(t *testing.T) {
	t.Helper()
	inprocess.Start(t, cp.Config, "", testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// defaults are the chart's values.
var defaults = map[string]any{"greeting": "hi", "auth": map[string]any{"password": ""}}

const settings = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
  password: {{ .Values.auth.password | quote }}
  chart: {{ .Chart.Version | quote }}
`

// broken is rejected by the API server: a ConfigMap name may not hold
// upper case or underscores.
const broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"

func chartOf(version string, templates map[string]string) *helmrepoChart {
	return &helmrepoChart{version: version, templates: templates}
}

type helmrepoChart struct {
	version   string
	templates map[string]string
}

// namespaceWithRepo makes a namespace with a HelmRepository on a chart
// repository holding the given versions of chart "app".
func namespaceWithRepo(t *testing.T, ns string, charts ...*helmrepoChart) *helmrepo.HTTPRepo {
	t.Helper()
	repo := helmrepo.NewHTTP(t)
	for _, c := range charts {
		repo.Add(t, helmrepo.NewChart("app", c.version, c.templates, defaults))
	}
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
	)
	return repo
}

func helmRelease(ns, name, version string, mutate func(*syncv2.HelmRelease)) *syncv2.HelmRelease {
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 20 * time.Second},
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart: "app", Version: version, Interval: &metav1.Duration{Duration: time.Second},
				SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			}},
		},
	}
	if mutate != nil {
		mutate(hr)
	}
	return hr
}

func waitFor(t *testing.T, hr *syncv2.HelmRelease, what string, want func(*syncv2.HelmRelease) bool) *syncv2.HelmRelease {
	t.Helper()
	got := &syncv2.HelmRelease{}
	controlplane.Eventually(t, 60*time.Second, "HelmRelease "+hr.Name+" "+what, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
			return false, err.Error()
		}
		return want(got), fmt.Sprintf("status %+v", got.Status)
	})
	return got
}

func readyWith(revision string) func(*syncv2.HelmRelease) bool {
	return func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Ready") && hr.Status.ObservedGeneration == hr.Generation &&
			len(hr.Status.History) > 0 && hr.Status.History[0].ChartVersion == revision
	}
}

func condition(hr *syncv2.HelmRelease, typ string) *metav1.Condition {
	return meta.FindStatusCondition(hr.Status.Conditions, typ)
}

// releases lists the namespace's releases the way `helm list` does, from
// Helm's own storage.
func releases(t *testing.T, ns string) []*releasev1.Release {
	t.Helper()
	rels, err := helmrelease.Releases(cp.Config, ns)
	if err != nil {
		t.Fatal(err)
	}
	return rels
}

func configMap(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

func TestAReleaseIsInstalledAndUpgradedOnANewChartAndOnNewValues(t *testing.T) {
	const ns = "helm-upgrade"
	repo := namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: ns}, StringData: map[string]string{"password": "s3cret"}})
	startControllers(t)
	hr := helmRelease(ns, "web", "1.x", func(hr *syncv2.HelmRelease) {
		hr.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting": "hello"}`)}
		hr.Spec.ValuesFrom = []syncv2.ValuesReference{{Kind: "Secret", Name: "auth", ValuesKey: "password", TargetPath: "auth.password"}}
		hr.Spec.PostRenderers = []syncv2.PostRenderer{{Kustomize: &syncv2.KustomizePostRenderer{Patches: []syncv1.Patch{{
			Patch: `[{"op": "add", "path": "/data/patched", "value": "by a post-renderer"}]`, Target: &syncv1.Selector{Kind: "ConfigMap"},
		}}}}}
	})
	create(t, hr)
	got := waitFor(t, hr, "installed", readyWith("1.0.0"))
	if data := configMap(t, ns, "web-settings"); data["greeting"] != "hello" || data["password"] != "s3cret" || data["chart"] != "1.0.0" || data["patched"] != "by a post-renderer" {
		t.Fatalf("rendered %v", data)
	}
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonInstallSucceeded {
		t.Fatalf("Released %+v", c)
	}
	rels := releases(t, ns)
	if len(rels) != 1 || rels[0].Name != "web" || rels[0].Info.Status != common.StatusDeployed || rels[0].Version != 1 {
		t.Fatalf("helm list: %+v", rels)
	}

	// A new chart version in range is released by an upgrade.
	repo.Add(t, helmrepo.NewChart("app", "1.1.0", map[string]string{"settings.yaml": settings}, defaults))
	got = waitFor(t, hr, "upgraded to 1.1.0", readyWith("1.1.0"))
	if c := condition(got, "Released"); c == nil || c.Reason != syncv2.ReasonUpgradeSucceeded {
		t.Fatalf("Released %+v", c)
	}
	if data := configMap(t, ns, "web-settings"); data["chart"] != "1.1.0" {
		t.Fatalf("rendered %v", data)
	}

	// New values are released by an upgrade too.
	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Values = greeting("bonjour") })
	got = waitFor(t, hr, "upgraded with new values", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.1.0")(hr) && hr.Status.History[0].Version == 3
	})
	if data := configMap(t, ns, "web-settings"); data["greeting"] != "bonjour" {
		t.Fatalf("rendered %v", data)
	}
	if len(got.Status.History) != 3 || got.Status.History[1].Status != "superseded" {
		t.Fatalf("history %+v", got.Status.History)
	}
	rels = releases(t, ns)
	if len(rels) != 1 || rels[0].Version != 3 || rels[0].Chart.Metadata.Version != "1.1.0" {
		t.Fatalf("helm list: %+v", rels)
	}

	// Deleting the HelmRelease uninstalls the release.
	if err := cp.Client.Delete(t.Context(), hr); err != nil {
		t.Fatal(err)
	}
	controlplane.Eventually(t, 30*time.Second, "release uninstalled", func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-settings"}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	controlplane.Eventually(t, 30*time.Second, "its HelmChart deleted", func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns + "-web"}, &sourcev1.HelmChart{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func TestAFailingInstallIsRetriedThenUninstalled(t *testing.T) {
	const ns = "helm-install-fails"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"broken.yaml": broken}))
	startControllers(t)
	remediateLast := true
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{Retries: 2, RemediateLastFailure: &remediateLast}}
	})
	// Flux's default for an install: the last failure stays, to be
	// looked at.
	kept := helmRelease(ns, "kept", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{Retries: 1}}
	})
	create(t, hr, kept)
	waitFor(t, kept, "stalled", func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") && hr.Status.InstallFailures == 2
	})
	if rels := releases(t, ns); !slices.ContainsFunc(rels, func(r *releasev1.Release) bool { return r.Name == "kept" && r.Info.Status == common.StatusFailed }) {
		t.Fatalf("the last failed install was uninstalled though install.remediation.remediateLastFailure defaults to false: %+v", rels)
	}
	got := waitFor(t, hr, "stalled", func(hr *syncv2.HelmRelease) bool { return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") })
	if got.Status.InstallFailures != 3 {
		t.Fatalf("%d install failures, want 1 and 2 retries", got.Status.InstallFailures)
	}
	ready := condition(got, "Ready")
	if ready.Reason != syncv2.ReasonRetriesExceeded || !strings.Contains(ready.Message, "Bad_Name") {
		t.Fatalf("Ready %+v, want retries exceeded with the cause", ready)
	}
	if c := condition(got, "Remediated"); c == nil || c.Reason != syncv2.ReasonUninstallSucceeded {
		t.Fatalf("Remediated %+v", c)
	}
	if rels := releases(t, ns); slices.ContainsFunc(rels, func(r *releasev1.Release) bool { return r.Name == "web" }) {
		t.Fatalf("the last failed install was not uninstalled: %+v", rels)
	}
}

func TestAFailingUpgradeIsRolledBackToTheLastGoodRevision(t *testing.T) {
	const ns = "helm-upgrade-fails"
	repo := namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Upgrade = &syncv2.Upgrade{Remediation: &syncv2.UpgradeRemediation{Retries: 1}}
	})
	create(t, hr)
	waitFor(t, hr, "installed", readyWith("1.0.0"))
	repo.Add(t, helmrepo.NewChart("app", "2.0.0", map[string]string{"settings.yaml": settings, "broken.yaml": broken}, defaults))
	got := waitFor(t, hr, "stalled", func(hr *syncv2.HelmRelease) bool { return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") })
	if got.Status.UpgradeFailures != 2 {
		t.Fatalf("%d upgrade failures, want 1 and 1 retry", got.Status.UpgradeFailures)
	}
	if c := condition(got, "Remediated"); c == nil || c.Reason != syncv2.ReasonRollbackSucceeded {
		t.Fatalf("Remediated %+v", c)
	}
	rels := releases(t, ns)
	if len(rels) != 1 || rels[0].Info.Status != common.StatusDeployed || rels[0].Chart.Metadata.Version != "1.0.0" {
		t.Fatalf("helm list after the rollback: %+v", rels)
	}
	if data := configMap(t, ns, "web-settings"); data["chart"] != "1.0.0" {
		t.Fatalf("the last good revision does not serve: %v", data)
	}
}

const testHook = `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers: [{name: test, image: busybox, command: ["false"]}]
`

func TestAFailingHelmTestIsReported(t *testing.T) {
	const ns = "helm-test-fails"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "test.yaml": testHook}))
	startControllers(t)
	// This control plane runs no pods: the test hook never succeeds.
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Test = &syncv2.Test{Enable: true, Timeout: &metav1.Duration{Duration: 3 * time.Second}}
	})
	create(t, hr)
	got := waitFor(t, hr, "test failed", func(hr *syncv2.HelmRelease) bool { return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") })
	if c := condition(got, "TestSuccess"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != syncv2.ReasonTestFailed {
		t.Fatalf("TestSuccess %+v; all conditions %+v", c, got.Status.Conditions)
	}
	if c := condition(got, "Ready"); c.Reason != syncv2.ReasonTestFailed {
		t.Fatalf("Ready %+v", c)
	}
	if phase := got.Status.History[0].TestHooks["web-test"]; phase == "" || phase == "Succeeded" {
		t.Fatalf("test hooks in history %+v", got.Status.History[0].TestHooks)
	}
}

func TestAReleaseLeftPendingIsRecovered(t *testing.T) {
	const ns = "helm-pending"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	// An operator killed mid-install leaves the release pending in Helm's
	// storage, which makes Helm refuse any further action.
	ch := helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": settings}, defaults)
	if err := helmrelease.InstallPending(t.Context(), cp.Config, "web", ns, ch); err != nil {
		t.Fatal(err)
	}
	startControllers(t)
	hr := helmRelease(ns, "web", "*", nil)
	create(t, hr)
	waitFor(t, hr, "recovered", readyWith("1.0.0"))
	rels := releases(t, ns)
	if len(rels) != 1 || rels[0].Info.Status != common.StatusDeployed {
		t.Fatalf("helm list: %+v", rels)
	}
}

func TestAChartFromGitIsReleasedAgainOnEachCommit(t *testing.T) {
	const ns = "helm-git"
	git := gitserver.New(t)
	files := map[string]string{
		"charts/app/Chart.yaml":              "apiVersion: v2\nname: app\nversion: 1.0.0\n",
		"charts/app/values.yaml":             "greeting: hi\nauth: {password: \"\"}\n",
		"charts/app/templates/settings.yaml": settings,
	}
	first := git.Commit(files)
	secret, repo := git.Source(ns, "repo", time.Second)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, repo)
	startControllers(t)
	hr := helmRelease(ns, "web", "", func(hr *syncv2.HelmRelease) {
		hr.Spec.Chart.Spec.Chart = "charts/app"
		hr.Spec.Chart.Spec.SourceRef = syncv2.HelmChartSourceReference{Kind: "GitRepository", Name: "repo"}
		hr.Spec.Chart.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyRevision
	})
	create(t, hr)
	waitFor(t, hr, "installed", readyWith("1.0.0+"+first[:12]))
	// A template change without a version bump is still a new release.
	files["charts/app/values.yaml"] = "greeting: changed\nauth: {password: \"\"}\n"
	second := git.Commit(files)
	got := waitFor(t, hr, "upgraded", readyWith("1.0.0+"+second[:12]))
	if got.Status.History[0].Version != 2 {
		t.Fatalf("history %+v", got.Status.History)
	}
	if data := configMap(t, ns, "web-settings"); data["greeting"] != "changed" {
		t.Fatalf("rendered %v", data)
	}
}

func TestDriftIsCorrectedOrOnlyReported(t *testing.T) {
	const ns = "helm-drift"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	tests := []struct {
		name      string
		mode      string
		greeting  string
		corrected bool
	}{
		{"enabled corrects a changed object", syncv2.DriftDetectionEnabled, "hi", true},
		{"warn reports it and leaves it", syncv2.DriftDetectionWarn, "edited", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := helmRelease(ns, tt.mode, "*", func(hr *syncv2.HelmRelease) {
				hr.Spec.DriftDetection = &syncv2.DriftDetection{Mode: tt.mode}
			})
			create(t, hr)
			got := waitFor(t, hr, "installed", readyWith("1.0.0"))
			if c := condition(got, "Drifted"); c == nil || c.Status != metav1.ConditionFalse {
				t.Fatalf("Drifted right after install: %+v", c)
			}
			// Someone edits the object by hand, then a reconcile comes.
			cm := &corev1.ConfigMap{}
			key := client.ObjectKey{Namespace: ns, Name: tt.mode + "-settings"}
			if err := cp.Client.Get(t.Context(), key, cm); err != nil {
				t.Fatal(err)
			}
			cm.Data["greeting"] = "edited"
			if err := cp.Client.Update(t.Context(), cm, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
			if err := cp.Client.Patch(t.Context(), got, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"drift"}}}`))); err != nil {
				t.Fatal(err)
			}
			subject := "ConfigMap/" + ns + "/" + tt.mode + "-settings"
			got = waitFor(t, hr, "checked for drift", func(hr *syncv2.HelmRelease) bool {
				if hr.Status.LastHandledReconcileAt != "drift" {
					return false
				}
				if tt.corrected {
					// A later reconcile finds no drift left, so the event
					// is the lasting record of the correction.
					return configMap(t, ns, tt.mode+"-settings")["greeting"] == "hi" && driftEvent(t, ns, hr.Name, subject)
				}
				c := condition(hr, "Drifted")
				return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, subject)
			})
			if !meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") {
				t.Fatalf("Ready %+v", condition(got, "Ready"))
			}
			if data := configMap(t, ns, tt.mode+"-settings"); data["greeting"] != tt.greeting {
				t.Fatalf("greeting %q, want %q", data["greeting"], tt.greeting)
			}
		})
	}
}

// driftEvent tells whether a DriftDetected event about the HelmRelease
// names the object.
func driftEvent(t *testing.T, ns, name, subject string) bool {
	t.Helper()
	var list eventsv1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == syncv2.ReasonDriftDetected && strings.Contains(e.Note, subject) {
			return true
		}
	}
	return false
}

func TestAChartFromAnOCIRegistryIsInstalled(t *testing.T) {
	const ns = "helm-oci"
	registry := helmrepo.NewOCI(t)
	registry.Push(t, helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": settings}, defaults))
	registry.Push(t, helmrepo.NewChart("app", "1.2.0", map[string]string{"settings.yaml": settings}, defaults))
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{
			URL: registry.URL, Type: sourcev1.HelmRepositoryTypeOCI, Insecure: true, Interval: metav1.Duration{Duration: time.Hour},
		}},
	)
	startControllers(t)
	hr := helmRelease(ns, "web", "^1", nil)
	create(t, hr)
	waitFor(t, hr, "installed", readyWith("1.2.0"))
	if data := configMap(t, ns, "web-settings"); data["chart"] != "1.2.0" {
		t.Fatalf("rendered %v", data)
	}
}

func TestAReleaseActsAsItsServiceAccount(t *testing.T) {
	const ns = "helm-tenant"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	// The account may keep Helm's records but not create ConfigMaps.
	create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
		}},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}},
		},
	)
	startControllers(t)
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) { hr.Spec.ServiceAccountName = "deployer" })
	create(t, hr)
	got := waitFor(t, hr, "denied", func(hr *syncv2.HelmRelease) bool { return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") })
	released := condition(got, "Released")
	if released == nil || released.Reason != syncv2.ReasonInstallFailed || !strings.Contains(released.Message, "system:serviceaccount:helm-tenant:deployer") || !strings.Contains(released.Message, "forbidden") {
		t.Fatalf("Released %+v, want the install denied to the account", released)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the ConfigMap exists: %v", err)
	}
}

func TestAReleaseWaitsForThoseItDependsOn(t *testing.T) {
	const ns = "helm-depends"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	app := helmRelease(ns, "app", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.DependsOn = []syncv1.DependencyReference{{Name: "database"}}
	})
	create(t, app)
	waitFor(t, app, "waiting", func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, "Ready")
		return c != nil && c.Reason == syncv2.ReasonDependencyNotReady
	})
	if rels := releases(t, ns); len(rels) != 0 {
		t.Fatalf("released before its dependency: %+v", rels)
	}
	// The dependency turning Ready wakes it at once, though its own
	// interval is an hour away.
	create(t, helmRelease(ns, "database", "*", nil))
	waitFor(t, app, "installed", readyWith("1.0.0"))
}
