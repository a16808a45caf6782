package helmrelease_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/helmrepo"
)

// neverReady is a Deployment that never becomes Ready: this control
// plane runs no controllers, so Helm's wait for it only ends at a
// timeout. Its image follows the values, so new values change it.
const neverReady = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: app
        image: "ghcr.io/stefanprodan/podinfo:{{ .Values.greeting }}"
`

// held is a ConfigMap whose finalizer nothing removes: deleting it never
// ends, so Helm's wait for an uninstall only ends at a timeout.
const held = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-held
  finalizers: [test.sluice.dev/held]
`

// change updates hr on the API server as mutate says.
func change(t *testing.T, hr *syncv2.HelmRelease, mutate func(*syncv2.HelmRelease)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got := &syncv2.HelmRelease{}
		if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hr), got); err != nil {
			return err
		}
		mutate(got)
		return cp.Client.Update(t.Context(), got)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func greeting(value string) *apiextensionsv1.JSON {
	return &apiextensionsv1.JSON{Raw: []byte(`{"greeting": "` + value + `"}`)}
}

// conditionReason is a wait for the condition of type typ with reason.
func conditionReason(typ, reason string) func(*syncv2.HelmRelease) bool {
	return func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, typ)
		return c != nil && c.Reason == reason
	}
}

// TestEachHelmActionWaitsAsLongAsItsTimeoutSaysUnlessItsWaitIsDisabled
// releases a Deployment that never becomes Ready. spec.timeout is ten
// minutes unless a case says otherwise, so each action that gives up or
// succeeds within the minute a wait here allows does so because of its
// own timeout or disableWait.
func TestEachHelmActionWaitsAsLongAsItsTimeoutSaysUnlessItsWaitIsDisabled(t *testing.T) {
	startControllers(t)
	short := &metav1.Duration{Duration: 2 * time.Second}
	long := &metav1.Duration{Duration: 10 * time.Minute}
	retryOnce := &syncv2.UpgradeRemediation{Retries: 1}
	tests := []struct {
		name      string
		templates map[string]string
		spec      func(*syncv2.HelmReleaseSpec)
		// upgrade, when set, changes the values once the release is
		// installed, and the wait is for what the upgrade does.
		upgrade bool
		want    func(*syncv2.HelmRelease) bool
	}{
		{"install.timeout bounds the install", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{Timeout: short}
		}, false, conditionReason(syncv2.ReleasedCondition, syncv2.ReasonInstallFailed)},
		{"spec.timeout bounds an action that has no timeout of its own", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Timeout = short
		}, false, conditionReason(syncv2.ReleasedCondition, syncv2.ReasonInstallFailed)},
		{"upgrade.timeout bounds the upgrade", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
			s.Upgrade = &syncv2.Upgrade{Timeout: short}
		}, true, conditionReason(syncv2.ReleasedCondition, syncv2.ReasonUpgradeFailed)},
		{"upgrade.disableWait upgrades without waiting", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
			s.Upgrade = &syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
		}, true, func(hr *syncv2.HelmRelease) bool {
			return conditionReason(syncv2.ReleasedCondition, syncv2.ReasonUpgradeSucceeded)(hr) && len(hr.Status.History) > 0 && hr.Status.History[0].Version == 2
		}},
		{"rollback.timeout bounds the rollback", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
			s.Upgrade = &syncv2.Upgrade{Timeout: short, Remediation: retryOnce}
			s.Rollback = &syncv2.Rollback{Timeout: short}
		}, true, conditionReason(syncv2.RemediatedCondition, syncv2.ReasonRollbackFailed)},
		{"rollback.disableWait rolls back without waiting", nil, func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWait: true}}
			s.Upgrade = &syncv2.Upgrade{Timeout: short, Remediation: retryOnce}
			s.Rollback = &syncv2.Rollback{DisableWait: true}
		}, true, conditionReason(syncv2.RemediatedCondition, syncv2.ReasonRollbackSucceeded)},
		{"uninstall.timeout bounds the uninstall", map[string]string{"deploy.yaml": neverReady, "held.yaml": held}, func(s *syncv2.HelmReleaseSpec) {
			yes := true
			s.Install = &syncv2.Install{Timeout: short, Remediation: &syncv2.InstallRemediation{Retries: 1, RemediateLastFailure: &yes}}
			s.Uninstall = &syncv2.Uninstall{Timeout: short}
		}, false, conditionReason(syncv2.RemediatedCondition, syncv2.ReasonUninstallFailed)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("helm-wait-%d", i)
			templates := tt.templates
			if templates == nil {
				templates = map[string]string{"deploy.yaml": neverReady}
			}
			namespaceWithRepo(t, ns, chartOf("1.0.0", templates))
			hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
				hr.Spec.Timeout = long
				tt.spec(&hr.Spec)
			})
			create(t, hr)
			if tt.upgrade {
				waitFor(t, hr, "installed without waiting", readyWith("1.0.0"))
				change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Values = greeting("hello") })
			}
			got := waitFor(t, hr, tt.name, tt.want)
			// Each failure is Helm's wait giving up: on the Deployment,
			// or on the deletion of the held ConfigMap.
			for _, typ := range []string{syncv2.ReleasedCondition, syncv2.RemediatedCondition} {
				c := condition(got, typ)
				if c == nil || c.Status != metav1.ConditionFalse {
					continue
				}
				if !strings.Contains(c.Message, "Deployment/"+ns+"/web not ready") && !strings.Contains(c.Message, "ConfigMap/"+ns+"/web-held still exists") {
					t.Errorf("%s %+v, want Helm's wait to have given up", typ, c)
				}
			}
		})
	}
}

// TestTheStatusSaysWhatWasReleasedWhereAndKeepsMaxHistoryRevisions
// installs a chart into a target namespace, with Helm's records in
// another, then upgrades it twice: the status names the release, its
// chart, values and times as Helm's records have them, and Helm keeps
// only spec.maxHistory revisions, as status.history shows.
func TestTheStatusSaysWhatWasReleasedWhereAndKeepsMaxHistoryRevisions(t *testing.T) {
	const ns, target, storage = "helm-status", "helm-status-apps", "helm-status-records"
	repo := helmrepo.NewHTTP(t)
	withAppVersion := func(version, appVersion string) {
		ch := helmrepo.NewChart("app", version, map[string]string{"settings.yaml": settings}, defaults)
		ch.Metadata.AppVersion = appVersion
		repo.Add(t, ch)
	}
	withAppVersion("1.0.0", "6.0.0")
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: target}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: storage}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
	)
	startControllers(t)
	two := 2
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.TargetNamespace, hr.Spec.StorageNamespace, hr.Spec.MaxHistory = target, storage, &two
		hr.Spec.Values = greeting("hello")
	})
	create(t, hr)
	// check compares the status with Helm's records of the release.
	check := func(got *syncv2.HelmRelease, action, revision, appVersion string) {
		t.Helper()
		st := got.Status
		if st.LastAttemptedReleaseAction != action || st.LastAttemptedRevision != revision || st.StorageNamespace != storage {
			t.Fatalf("last attempted %s of %s, storage namespace %q; want %s of %s in %s", st.LastAttemptedReleaseAction, st.LastAttemptedRevision, st.StorageNamespace, action, revision, storage)
		}
		if st.LastAttemptedValuesChecksum != "" || !strings.HasPrefix(st.LastAttemptedConfigDigest, "sha256:") {
			t.Fatalf("lastAttemptedValuesChecksum %q and lastAttemptedConfigDigest %q, want the deprecated checksum left empty, as Flux leaves it, and the config digest", st.LastAttemptedValuesChecksum, st.LastAttemptedConfigDigest)
		}
		rels := releases(t, storage)
		if len(rels) != 1 {
			t.Fatalf("helm list in %s: %+v", storage, rels)
		}
		rel := rels[0]
		s := st.History[0]
		if s.Name != target+"-web" || s.Namespace != target || s.ChartName != "app" || s.ChartVersion != revision || s.AppVersion != appVersion || s.Version != rel.Version {
			t.Fatalf("snapshot %+v, want release %s-web in %s of chart app %s (app %s), revision %d", s, target, target, revision, appVersion, rel.Version)
		}
		if s.ConfigDigest != st.LastAttemptedConfigDigest {
			t.Fatalf("snapshot config digest %s, want the values' %s", s.ConfigDigest, st.LastAttemptedConfigDigest)
		}
		if s.FirstDeployed.Unix() != rel.Info.FirstDeployed.Unix() || s.LastDeployed.Unix() != rel.Info.LastDeployed.Unix() {
			t.Fatalf("deployed first %s and last %s, Helm says %s and %s", s.FirstDeployed, s.LastDeployed, rel.Info.FirstDeployed, rel.Info.LastDeployed)
		}
	}

	installed := waitFor(t, hr, "installed", readyWith("1.0.0"))
	check(installed, "install", "1.0.0", "6.0.0")

	// A new chart is an upgrade with the same values.
	withAppVersion("1.1.0", "6.1.0")
	upgraded := waitFor(t, hr, "upgraded to 1.1.0", readyWith("1.1.0"))
	check(upgraded, "upgrade", "1.1.0", "6.1.0")
	if h := upgraded.Status.History; len(h) != 2 || h[1].ConfigDigest != h[0].ConfigDigest || !h[0].FirstDeployed.Equal(&h[1].FirstDeployed) || h[0].LastDeployed.Before(&h[1].LastDeployed) {
		t.Fatalf("history %+v, want the upgrade first deployed with the install, with the same values", h)
	}

	// New values are another upgrade, and Helm forgets the install.
	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Values = greeting("bonjour") })
	third := waitFor(t, hr, "upgraded with new values", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.1.0")(hr) && hr.Status.History[0].Version == 3
	})
	check(third, "upgrade", "1.1.0", "6.1.0")
	if h := third.Status.History; len(h) != 2 || h[1].Version != 2 || h[0].ConfigDigest == h[1].ConfigDigest || h[1].ConfigDigest != installed.Status.History[0].ConfigDigest {
		t.Fatalf("history %+v, want revisions 3 and 2 only, 3 with new values", h)
	}
	if third.Status.LastAttemptedConfigDigest == installed.Status.LastAttemptedConfigDigest {
		t.Fatalf("lastAttemptedConfigDigest %s did not follow the new values", third.Status.LastAttemptedConfigDigest)
	}
	if versions := storedRevisions(t, storage); !slices.Equal(versions, []string{"2", "3"}) {
		t.Fatalf("Helm keeps revisions %v, want 2 and 3 (maxHistory 2)", versions)
	}
}

// storedRevisions lists the revisions Helm keeps in ns, by the version
// label of its Secrets.
func storedRevisions(t *testing.T, ns string) []string {
	t.Helper()
	var secrets corev1.SecretList
	if err := cp.Client.List(t.Context(), &secrets, client.InNamespace(ns), client.MatchingLabels{"owner": "helm"}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range secrets.Items {
		out = append(out, s.Labels["version"])
	}
	slices.Sort(out)
	return out
}

// TestAReleaseFindsItsChartInTheNamespaceItsReferenceNames releases
// from a chart repository of another namespace, which holds 2.0.0 where
// the HelmRelease's own holds 1.0.0: spec.chart's HelmChart is made
// beside its source, and chartRef finds a HelmChart in its namespace, or
// in the HelmRelease's own when it names none.
func TestAReleaseFindsItsChartInTheNamespaceItsReferenceNames(t *testing.T) {
	const ns, shared = "helm-refs", "helm-refs-shared"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	namespaceWithRepo(t, shared, chartOf("2.0.0", map[string]string{"settings.yaml": settings}))
	for _, n := range []string{ns, shared} {
		create(t, &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: n}, Spec: sourcev1.HelmChartSpec{
			Chart: "app", Version: "*", Interval: metav1.Duration{Duration: time.Hour},
			SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
		}})
	}
	startControllers(t)
	fromShared := helmRelease(ns, "templated", "*", func(hr *syncv2.HelmRelease) { hr.Spec.Chart.Spec.SourceRef.Namespace = shared })
	byRef := func(name, namespace string) *syncv2.HelmRelease {
		return helmRelease(ns, name, "", func(hr *syncv2.HelmRelease) {
			hr.Spec.Chart = nil
			hr.Spec.ChartRef = &syncv2.ChartReference{Kind: "HelmChart", Name: "app", Namespace: namespace}
		})
	}
	sharedRef, ownRef := byRef("shared-ref", shared), byRef("own-ref", "")
	create(t, fromShared, sharedRef, ownRef)

	got := waitFor(t, fromShared, "released from the shared repository", readyWith("2.0.0"))
	if want := shared + "/" + ns + "-templated"; got.Status.HelmChart != want {
		t.Fatalf("status.helmChart %q, want %q", got.Status.HelmChart, want)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: shared, Name: ns + "-templated"}, &sourcev1.HelmChart{}); err != nil {
		t.Fatalf("the HelmChart is not beside its source: %v", err)
	}
	waitFor(t, sharedRef, "released from the shared HelmChart", readyWith("2.0.0"))
	waitFor(t, ownRef, "released from its own namespace's HelmChart", readyWith("1.0.0"))
}

// TestAReleaseIsLeftAloneWhileSuspendedAndLookedAtAgainAtItsInterval
// checks spec.suspend and spec.interval: a suspended HelmRelease is
// neither installed nor given a status until it is resumed, and new
// values in a ConfigMap, which is not watched, reach the release at the
// next interval.
func TestAReleaseIsLeftAloneWhileSuspendedAndLookedAtAgainAtItsInterval(t *testing.T) {
	const ns = "helm-suspend-interval"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	values := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "values", Namespace: ns}, Data: map[string]string{"values.yaml": "greeting: one\n"}}
	create(t, values)
	startControllers(t)
	fromValues := func(name string, interval time.Duration, suspend bool) *syncv2.HelmRelease {
		return helmRelease(ns, name, "*", func(hr *syncv2.HelmRelease) {
			hr.Spec.Interval.Duration, hr.Spec.Suspend = interval, suspend
			hr.Spec.ValuesFrom = []syncv2.ValuesReference{{Kind: "ConfigMap", Name: "values"}}
		})
	}
	fast, slow, suspended := fromValues("fast", 2*time.Second, false), fromValues("slow", time.Hour, false), fromValues("suspended", time.Second, true)
	create(t, fast, slow, suspended)
	waitFor(t, fast, "installed", readyWith("1.0.0"))
	waitFor(t, slow, "installed", readyWith("1.0.0"))

	// By now the suspended one would have been installed several times
	// over.
	got := &syncv2.HelmRelease{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(suspended), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) > 0 || len(got.Finalizers) > 0 || slices.ContainsFunc(releases(t, ns), func(r *releasev1.Release) bool { return r.Name == "suspended" }) {
		t.Fatalf("a suspended HelmRelease was acted on: status %+v, finalizers %v", got.Status, got.Finalizers)
	}

	values.Data["values.yaml"] = "greeting: two\n"
	if err := cp.Client.Update(t.Context(), values); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fast, "upgraded with the new values at its interval", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && hr.Status.History[0].Version == 2
	})
	if data := configMap(t, ns, "fast-settings"); data["greeting"] != "two" {
		t.Fatalf("rendered %v", data)
	}
	if data := configMap(t, ns, "slow-settings"); data["greeting"] != "one" {
		t.Fatalf("the release an hour from its next look was upgraded: %v", data)
	}

	change(t, suspended, func(hr *syncv2.HelmRelease) { hr.Spec.Suspend = false })
	waitFor(t, suspended, "installed once resumed", readyWith("1.0.0"))
}

// TestInstallCreatesTheTargetNamespaceAndUninstallKeepsHistoryAsAsked
// checks install.createNamespace, which makes a missing target
// namespace, and uninstall.keepHistory, which leaves Helm's record of an
// uninstalled release.
func TestInstallCreatesTheTargetNamespaceAndUninstallKeepsHistoryAsAsked(t *testing.T) {
	const ns = "helm-namespaces-history"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings}))
	startControllers(t)
	created := helmRelease(ns, "created", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.TargetNamespace = "helm-made-by-install"
		hr.Spec.Install = &syncv2.Install{CreateNamespace: true}
	})
	missing := helmRelease(ns, "missing", "*", func(hr *syncv2.HelmRelease) { hr.Spec.TargetNamespace = "helm-never-made" })
	kept := helmRelease(ns, "kept", "*", func(hr *syncv2.HelmRelease) { hr.Spec.Uninstall = &syncv2.Uninstall{KeepHistory: true} })
	dropped := helmRelease(ns, "dropped", "*", nil)
	create(t, created, missing, kept, dropped)

	waitFor(t, created, "installed", readyWith("1.0.0"))
	if data := configMap(t, "helm-made-by-install", "helm-made-by-install-created-settings"); data["greeting"] != "hi" {
		t.Fatalf("rendered %v", data)
	}
	waitFor(t, missing, "failed", conditionReason(syncv2.ReleasedCondition, syncv2.ReasonInstallFailed))
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: "helm-never-made"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the namespace of a release without createNamespace: %v", err)
	}

	waitFor(t, kept, "installed", readyWith("1.0.0"))
	waitFor(t, dropped, "installed", readyWith("1.0.0"))
	for _, hr := range []*syncv2.HelmRelease{kept, dropped} {
		if err := cp.Client.Delete(t.Context(), hr); err != nil {
			t.Fatal(err)
		}
	}
	controlplane.Eventually(t, 30*time.Second, "both uninstalled", func(ctx context.Context) (bool, string) {
		var list syncv2.HelmReleaseList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		left := slices.ContainsFunc(list.Items, func(hr syncv2.HelmRelease) bool { return hr.Name == "kept" || hr.Name == "dropped" })
		return !left, fmt.Sprintf("%d HelmReleases", len(list.Items))
	})
	var names []string
	for _, r := range releases(t, ns) {
		if r.Name == "kept" || r.Name == "dropped" {
			names = append(names, r.Name+" "+string(r.Info.Status))
		}
	}
	if fmt.Sprint(names) != fmt.Sprint([]string{"kept " + string(common.StatusUninstalled)}) {
		t.Fatalf("helm list --all after the uninstalls: %v, want only kept, uninstalled", names)
	}
}
