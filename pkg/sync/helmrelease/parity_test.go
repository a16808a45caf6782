package helmrelease_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	helmcommon "helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/sync/helmrelease"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/helmrepo"
)

// elsewhere is a ConfigMap in the namespace of the value elsewhere: the
// release fails while that namespace does not exist, and a retry
// succeeds once it does, with nothing changed in the HelmRelease.
const elsewhere = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-elsewhere
  namespace: {{ .Values.elsewhere }}
data: {}
`

// annotate merges annotations into the HelmRelease's.
func annotate(t *testing.T, hr *syncv2.HelmRelease, annotations map[string]string) {
	t.Helper()
	var pairs []string
	for k, v := range annotations {
		pairs = append(pairs, fmt.Sprintf("%q: %q", k, v))
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%s}}}`, strings.Join(pairs, ","))
	if err := cp.Client.Patch(t.Context(), hr, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func values(js string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(js)} }

// readyFor is a Ready condition of the reason whose message holds text.
func readyFor(reason, text string) func(*syncv2.HelmRelease) bool {
	return func(hr *syncv2.HelmRelease) bool {
		c := condition(hr, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason && strings.Contains(c.Message, text) && hr.Status.ObservedGeneration == hr.Generation
	}
}

func TestRetryOnFailureRetriesAFailedInstallAndUpgradeWithoutRemediating(t *testing.T) {
	const ns = "helm-retry"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "elsewhere.yaml": elsewhere}))
	startControllers(t)
	retry := &syncv2.ActionStrategy{Name: syncv2.StrategyRetryOnFailure, RetryInterval: &metav1.Duration{Duration: time.Second}}
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Values = values(`{"elsewhere": "helm-retry-a"}`)
		hr.Spec.Install = &syncv2.Install{Strategy: retry}
		hr.Spec.Upgrade = &syncv2.Upgrade{Strategy: retry}
	})
	create(t, hr)
	got := waitFor(t, hr, "failed, with a retry coming", readyFor(syncv2.ReasonInstallFailed, "RetryOnFailure retries in 1s"))
	if c := condition(got, "Remediated"); c != nil {
		t.Fatalf("RetryOnFailure remediated the failed install: %+v", c)
	}
	if rels := releases(t, ns); len(rels) != 1 || rels[0].Info.Status != helmcommon.StatusFailed {
		t.Fatalf("helm list: %+v, want the failed release left in place", rels)
	}

	// The cause goes away; a retry releases it, with an upgrade, though
	// nothing changed in the HelmRelease and no retries were given.
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "helm-retry-a"}})
	got = waitFor(t, hr, "released by a retry", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && hr.Status.History[0].Version >= 2
	})
	if c := condition(got, "Released"); c.Reason != syncv2.ReasonUpgradeSucceeded || got.Status.InstallFailures < 1 || got.Status.Failures < 1 {
		t.Fatalf("Released %+v, failures %d (install %d): want an upgrade after a counted failure", c, got.Status.Failures, got.Status.InstallFailures)
	}

	// A failed upgrade is not rolled back either.
	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Values = values(`{"elsewhere": "helm-retry-b"}`) })
	got = waitFor(t, hr, "a failed upgrade, with a retry coming", readyFor(syncv2.ReasonUpgradeFailed, "RetryOnFailure retries in 1s"))
	if c := condition(got, "Remediated"); c != nil {
		t.Fatalf("RetryOnFailure remediated the failed upgrade: %+v", c)
	}
	if rels := releases(t, ns); len(rels) != 1 || rels[0].Info.Status != helmcommon.StatusFailed {
		t.Fatalf("helm list: %+v, want the failed upgrade as the latest revision, not a rollback", rels)
	}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "helm-retry-b"}})
	waitFor(t, hr, "upgraded by a retry", readyWith("1.0.0"))
	configMap(t, "helm-retry-b", "web-elsewhere")
}

func TestARetryIntervalWithoutRetryOnFailureIsRefused(t *testing.T) {
	hr := helmRelease("default", "interval", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Upgrade = &syncv2.Upgrade{Strategy: &syncv2.ActionStrategy{Name: syncv2.StrategyRemediateOnFailure, RetryInterval: &metav1.Duration{Duration: time.Minute}}}
	})
	err := cp.Client.Create(t.Context(), hr)
	if err == nil || !strings.Contains(err.Error(), "spec.upgrade.strategy.retryInterval") {
		t.Fatalf("creating a HelmRelease with retryInterval under RemediateOnFailure gave %v, want a refusal naming the field", err)
	}
}

func TestForceAtUpgradesOnceAndResetAtRetriesASpentRelease(t *testing.T) {
	const ns = "helm-requests"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "elsewhere.yaml": elsewhere}))
	startControllers(t)

	forced := helmRelease(ns, "forced", "*", func(hr *syncv2.HelmRelease) { hr.Spec.Values = values(`{"elsewhere": "helm-requests"}`) })
	create(t, forced)
	waitFor(t, forced, "installed", readyWith("1.0.0"))
	annotate(t, forced, map[string]string{sourcev1.ReconcileRequestAnnotation: "f1", syncv2.ForceRequestAnnotation: "f1"})
	waitFor(t, forced, "upgraded though nothing changed", func(hr *syncv2.HelmRelease) bool {
		return hr.Status.LastHandledForceAt == "f1" && readyWith("1.0.0")(hr) && hr.Status.History[0].Version == 2
	})
	// A force request that is not the reconcile request is recorded, and
	// does nothing.
	annotate(t, forced, map[string]string{sourcev1.ReconcileRequestAnnotation: "r2", syncv2.ForceRequestAnnotation: "f2"})
	got := waitFor(t, forced, "the request recorded", func(hr *syncv2.HelmRelease) bool {
		return hr.Status.LastHandledForceAt == "f2" && hr.Status.LastHandledReconcileAt == "r2"
	})
	if got.Status.History[0].Version != 2 {
		t.Fatalf("a force request without the same reconcile request upgraded to v%d", got.Status.History[0].Version)
	}

	stuck := helmRelease(ns, "stuck", "*", func(hr *syncv2.HelmRelease) { hr.Spec.Values = values(`{"elsewhere": "helm-requests-later"}`) })
	create(t, stuck)
	waitFor(t, stuck, "stalled without retries", func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled") && hr.Status.InstallFailures == 1
	})
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "helm-requests-later"}})
	// A reconcile request alone does not try again: the retries are spent.
	annotate(t, stuck, map[string]string{sourcev1.ReconcileRequestAnnotation: "x1"})
	got = waitFor(t, stuck, "looked at again", func(hr *syncv2.HelmRelease) bool { return hr.Status.LastHandledReconcileAt == "x1" })
	if !meta.IsStatusConditionTrue(got.Status.Conditions, "Stalled") {
		t.Fatalf("a reconcile request retried a release whose retries are spent: %+v", condition(got, "Ready"))
	}
	annotate(t, stuck, map[string]string{sourcev1.ReconcileRequestAnnotation: "x2", syncv2.ResetRequestAnnotation: "x2"})
	got = waitFor(t, stuck, "released after the reset", readyWith("1.0.0"))
	if got.Status.LastHandledResetAt != "x2" {
		t.Fatalf("lastHandledResetAt %q, want x2", got.Status.LastHandledResetAt)
	}
}

const (
	// marked is kept out of drift detection by its annotation.
	marked = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-marked
  annotations:
    helm.toolkit.fluxcd.io/driftDetection: disabled
data: {v: chart}
`
	// plain is labelled out of drift detection in the cluster.
	plain = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-plain
data: {v: chart}
`
)

func TestDriftIgnoreRulesAndTheDisabledMarkKeepChangesFromBeingCorrected(t *testing.T) {
	const ns = "helm-drift-ignore"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "marked.yaml": marked, "plain.yaml": plain}))
	startControllers(t)
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.DriftDetection = &syncv2.DriftDetection{Mode: syncv2.DriftDetectionEnabled, Ignore: []syncv1.IgnoreRule{
			{Paths: []string{"/data/greeting"}, Target: &syncv1.Selector{Kind: "ConfigMap", Name: ".*-settings"}},
		}}
	})
	create(t, hr)
	got := waitFor(t, hr, "installed", readyWith("1.0.0"))
	edit := func(name string, mutate func(*corev1.ConfigMap)) {
		cm := &corev1.ConfigMap{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
			t.Fatal(err)
		}
		mutate(cm)
		if err := cp.Client.Update(t.Context(), cm, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
	}
	edit("web-settings", func(cm *corev1.ConfigMap) { cm.Data["greeting"], cm.Data["password"] = "edited", "edited" })
	edit("web-marked", func(cm *corev1.ConfigMap) { cm.Data["v"] = "edited" })
	edit("web-plain", func(cm *corev1.ConfigMap) {
		cm.Data["v"] = "edited"
		cm.Labels[syncv2.DriftDetectionMetadataKey] = syncv2.DriftDetectionDisabledValue
	})
	annotate(t, got, map[string]string{sourcev1.ReconcileRequestAnnotation: "drift"})
	waitFor(t, hr, "drift corrected", func(hr *syncv2.HelmRelease) bool {
		return hr.Status.LastHandledReconcileAt == "drift" && configMap(t, ns, "web-settings")["password"] == ""
	})
	if v := configMap(t, ns, "web-settings")["greeting"]; v != "edited" {
		t.Errorf("the ignored path /data/greeting was corrected to %q", v)
	}
	if v := configMap(t, ns, "web-marked")["v"]; v != "edited" {
		t.Errorf("the object annotated driftDetection: disabled was corrected to %q", v)
	}
	if v := configMap(t, ns, "web-plain")["v"]; v != "edited" {
		t.Errorf("the object labelled driftDetection: disabled in the cluster was corrected to %q", v)
	}
	if !driftEvent(t, ns, "web", "ConfigMap/"+ns+"/web-settings") || driftEvent(t, ns, "web", "web-marked") || driftEvent(t, ns, "web", "web-plain") {
		t.Error("the drift event does not name only the settings ConfigMap")
	}
}

// passingTest is a test hook that passes without a pod: Helm waits for
// the ConfigMap to be current, which it is at once.
const passingTest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-check
  annotations:
    helm.sh/hook: test
data: {ok: "yes"}
`

func TestTestFiltersPickTheTestsAndIgnoreTestFailuresDefaultsToTheTests(t *testing.T) {
	const ns = "helm-test-filters"
	namespaceWithRepo(t, ns, chartOf("1.0.0", map[string]string{"settings.yaml": settings, "test.yaml": testHook, "check.yaml": passingTest}))
	startControllers(t)
	// This control plane runs no pods: a test hook that runs fails.
	withTests := func(mutate func(*syncv2.Test)) func(*syncv2.HelmRelease) {
		return func(hr *syncv2.HelmRelease) {
			hr.Spec.Test = &syncv2.Test{Enable: true, Timeout: &metav1.Duration{Duration: 3 * time.Second}}
			mutate(hr.Spec.Test)
		}
	}
	filtered := helmRelease(ns, "filtered", "*", withTests(func(test *syncv2.Test) {
		test.Filters = []syncv2.TestFilter{{Name: "filtered-test", Exclude: true}}
	}))
	ignored := helmRelease(ns, "ignored", "*", withTests(func(test *syncv2.Test) { test.IgnoreFailures = true }))
	no := false
	counted := helmRelease(ns, "counted", "*", func(hr *syncv2.HelmRelease) {
		withTests(func(test *syncv2.Test) { test.IgnoreFailures = true })(hr)
		hr.Spec.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{IgnoreTestFailures: &no}}
	})
	create(t, filtered, ignored, counted)

	got := waitFor(t, filtered, "tested with the failing test left out", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && condition(hr, "TestSuccess") != nil
	})
	if c := condition(got, "TestSuccess"); c.Status != metav1.ConditionTrue {
		t.Fatalf("TestSuccess %+v, want the excluded test not run", c)
	}
	if hooks := got.Status.History[0].TestHooks; hooks["filtered-check"] != "Succeeded" || hooks["filtered-test"] != "" {
		t.Fatalf("test hooks %v, want only filtered-check run", hooks)
	}
	got = waitFor(t, ignored, "released though its test failed", readyWith("1.0.0"))
	if c := condition(got, "TestSuccess"); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("TestSuccess %+v, want the failed test reported", c)
	}
	got = waitFor(t, counted, "stalled by its failed test", func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Stalled")
	})
	if c := condition(got, "Ready"); c.Reason != syncv2.ReasonTestFailed || got.Status.InstallFailures != 1 {
		t.Fatalf("Ready %+v with %d install failures: install.remediation.ignoreTestFailures false must count the failed test", c, got.Status.InstallFailures)
	}
}

// valuesChart is chart app with the values files values-a.yaml and
// values-b.yaml beside its values.yaml.
func valuesChart() *chart.Chart {
	ch := helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": settings}, defaults)
	ch.Files = append(ch.Files,
		&common.File{Name: "values-a.yaml", Data: []byte("greeting: from a\nauth: {password: from-a}\n")},
		&common.File{Name: "values-b.yaml", Data: []byte("greeting: from b\n")},
	)
	return ch
}

func TestTheChartTemplatesFieldsAndCommonMetadataReachWhatTheReleaseMakes(t *testing.T) {
	const ns = "helm-metadata"
	repo := helmrepo.NewHTTP(t)
	repo.Add(t, valuesChart())
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
	)
	startControllers(t)
	persistent := false
	hr := helmRelease(ns, "web", "*", func(hr *syncv2.HelmRelease) {
		hr.Spec.Chart.ObjectMeta = &syncv2.HelmChartTemplateObjectMeta{Labels: map[string]string{"team": "web"}, Annotations: map[string]string{"note": "made for web"}}
		spec := &hr.Spec.Chart.Spec
		spec.SourceRef.APIVersion = "source.toolkit.fluxcd.io/v1"
		spec.ValuesFile, spec.ValuesFiles, spec.IgnoreMissingValuesFiles = "values-a.yaml", []string{"values-b.yaml", "missing.yaml"}, true
		hr.Spec.CommonMetadata = &syncv1.CommonMetadata{Labels: map[string]string{"env": "prod"}, Annotations: map[string]string{"owner": "ops"}}
		hr.Spec.PersistentClient = &persistent
	})
	create(t, hr)
	got := waitFor(t, hr, "installed", readyWith("1.0.0"))

	hc := &sourcev1.HelmChart{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: ns + "-web"}, hc); err != nil {
		t.Fatal(err)
	}
	if hc.Labels["team"] != "web" || hc.Annotations["note"] != "made for web" {
		t.Errorf("the HelmChart has labels %v and annotations %v, want spec.chart.metadata's", hc.Labels, hc.Annotations)
	}
	if want := []string{"values-a.yaml", "values-b.yaml"}; !slices.Equal(hc.Status.ObservedValuesFiles, want) {
		t.Errorf("observedValuesFiles %v, want %v: the deprecated valuesFile first, the missing file skipped", hc.Status.ObservedValuesFiles, want)
	}
	if data := configMap(t, ns, "web-settings"); data["greeting"] != "from b" || data["password"] != "from-a" {
		t.Errorf("rendered %v, want values-a.yaml merged under values-b.yaml", data)
	}
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-settings"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels["env"] != "prod" || cm.Annotations["owner"] != "ops" {
		t.Errorf("the released ConfigMap has labels %v and annotations %v, want spec.commonMetadata's", cm.Labels, cm.Annotations)
	}
	st := got.Status
	if st.LastAttemptedGeneration != got.Generation || !strings.HasPrefix(st.LastAttemptedConfigDigest, "sha256:") ||
		!strings.HasPrefix(st.ObservedPostRenderersDigest, "sha256:") || !strings.HasPrefix(st.History[0].Digest, "sha256:") {
		t.Errorf("status %+v lacks the attempt's generation, config digest, post-renderers digest or the release digest", st)
	}

	// Common metadata alone changing is a new release.
	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.CommonMetadata.Labels["env"] = "staging" })
	waitFor(t, hr, "upgraded for the new label", func(hr *syncv2.HelmRelease) bool {
		return readyWith("1.0.0")(hr) && hr.Status.History[0].Version == 2
	})
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-settings"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels["env"] != "staging" {
		t.Errorf("after the upgrade the ConfigMap is labelled env=%s", cm.Labels["env"])
	}

	// Metadata taken out of the template leaves the HelmChart, as in
	// Flux; a reconcile request set on the HelmChart itself stays.
	chartKey := client.ObjectKeyFromObject(hc)
	if err := cp.Client.Patch(t.Context(), hc, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"kept"}}}`))); err != nil {
		t.Fatal(err)
	}
	change(t, hr, func(hr *syncv2.HelmRelease) { hr.Spec.Chart.ObjectMeta = nil })
	controlplane.Eventually(t, 30*time.Second, "the template's metadata gone from the HelmChart", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, chartKey, hc); err != nil {
			return false, err.Error()
		}
		_, team := hc.Labels["team"]
		_, note := hc.Annotations["note"]
		return !team && !note, fmt.Sprintf("labels %v, annotations %v", hc.Labels, hc.Annotations)
	})
	if hc.Annotations[sourcev1.ReconcileRequestAnnotation] != "kept" || hc.Labels[helmrelease.OwnerNameLabel] != "web" {
		t.Errorf("the HelmChart lost the reconcile request or its owner: labels %v, annotations %v", hc.Labels, hc.Annotations)
	}
}

func TestAChartFromAnOCIRepositoryRecordsItsDigest(t *testing.T) {
	const ns = "helm-oci-digest"
	registry := helmrepo.NewOCI(t)
	registry.Push(t, helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": settings}, defaults))
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&sourcev1.OCIRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
			Spec: sourcev1.OCIRepositorySpec{
				URL: registry.URL + "/app", Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Insecure: true,
				LayerSelector: &sourcev1.OCILayerSelector{MediaType: oci.HelmChartMediaType, Operation: sourcev1.OCILayerCopy},
				Interval:      metav1.Duration{Duration: time.Hour},
			},
		},
	)
	startControllers(t)
	hr := helmRelease(ns, "web", "", func(hr *syncv2.HelmRelease) {
		hr.Spec.Chart = nil
		hr.Spec.ChartRef = &syncv2.ChartReference{APIVersion: "source.toolkit.fluxcd.io/v1", Kind: "OCIRepository", Name: "app"}
	})
	create(t, hr)
	got := waitFor(t, hr, "installed", func(hr *syncv2.HelmRelease) bool {
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Ready") && len(hr.Status.History) > 0
	})
	repo := &sourcev1.OCIRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "app"}, repo); err != nil {
		t.Fatal(err)
	}
	digest := repo.Status.Artifact.Revision[strings.Index(repo.Status.Artifact.Revision, "@")+1:]
	if got.Status.LastAttemptedRevisionDigest != digest || got.Status.History[0].OCIDigest != digest {
		t.Fatalf("lastAttemptedRevisionDigest %q and history ociDigest %q, want the manifest digest %s", got.Status.LastAttemptedRevisionDigest, got.Status.History[0].OCIDigest, digest)
	}
}

func TestFieldsSluiceCannotHonourAreRefusedByTheAPIServer(t *testing.T) {
	tests := []struct {
		name   string
		obj    client.Object
		naming string
		says   string
	}{
		{"a HelmRelease's chart signature verification of a chart from Git", helmRelease("default", "verify", "*", func(hr *syncv2.HelmRelease) {
			hr.Spec.Chart.Spec.SourceRef.Kind = "GitRepository"
			hr.Spec.Chart.Spec.Verify = &syncv2.HelmChartTemplateVerification{Provider: "cosign"}
		}), "spec.chart.spec.verify", "only supported when spec.chart.spec.sourceRef.kind is 'HelmRepository'"},
		{"a HelmRelease's notation chart signature verification without a Secret", helmRelease("default", "verify", "*", func(hr *syncv2.HelmRelease) {
			hr.Spec.Chart.Spec.Verify = &syncv2.HelmChartTemplateVerification{Provider: "notation"}
		}), "spec.chart.spec.verify.secretRef", "is required with provider notation"},
		{"a HelmChart's notation signature verification without a Secret", &sourcev1.HelmChart{
			ObjectMeta: metav1.ObjectMeta{Name: "verify", Namespace: "default"},
			Spec: sourcev1.HelmChartSpec{Chart: "app", Interval: metav1.Duration{Duration: time.Hour},
				SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
				Verify:    &sourcev1.HelmChartVerification{Provider: "notation"}},
		}, "spec.verify.secretRef", "is required with provider notation"},
		{"a HelmChart's signature verification of a chart from a Bucket", &sourcev1.HelmChart{
			ObjectMeta: metav1.ObjectMeta{Name: "verify-bucket", Namespace: "default"},
			Spec: sourcev1.HelmChartSpec{Chart: "./app", Interval: metav1.Duration{Duration: time.Hour},
				SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: "Bucket", Name: "charts"},
				Verify:    &sourcev1.HelmChartVerification{Provider: "cosign"}},
		}, "spec.verify", "only supported when spec.sourceRef.kind is 'HelmRepository'"},
		{"a HelmRepository's cloud provider", &sourcev1.HelmRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "cloud", Namespace: "default"},
			Spec:       sourcev1.HelmRepositorySpec{URL: "oci://registry.example/charts", Type: sourcev1.HelmRepositoryTypeOCI, Provider: "aws"},
		}, "spec.provider", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.obj)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.naming) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("create gave %v, want a refusal naming %s that says %q", err, tt.naming, tt.says)
			}
		})
	}
}
