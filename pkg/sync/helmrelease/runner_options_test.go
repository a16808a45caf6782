package helmrelease

import (
	"cmp"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa/jsondiff"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/apply"
)

// TestTheHelmReleasesOptionsReachHelmsActions checks that each Flux
// option of install, upgrade, rollback and uninstall sets its Helm SDK
// setting, and that the defaults are Flux's.
func TestTheHelmReleasesOptionsReachHelmsActions(t *testing.T) {
	r := &runner{cfg: action.NewConfiguration(), name: "web", namespace: "apps"}
	install := func(in syncv2.Install) *action.Install { return r.newInstall(actionOptions{install: in}) }
	upgrade := func(up syncv2.Upgrade) *action.Upgrade { return r.newUpgrade(actionOptions{upgrade: up}) }
	// The releases these act on were applied client-side, as Helm 3 did,
	// or server-side, as Helm 4 does by default.
	csa, ssa := string(releasev1.ApplyMethodClientSideApply), string(releasev1.ApplyMethodServerSideApply)
	rollback := func(rb syncv2.Rollback) *action.Rollback { return r.newRollback(time.Minute, rb, 5, csa) }
	rollbackTo := func(method string, rb syncv2.Rollback) *action.Rollback {
		return r.newRollback(time.Minute, rb, 5, method)
	}
	upgradeFrom := func(method string, up syncv2.Upgrade) *action.Upgrade {
		return r.newUpgrade(actionOptions{upgrade: up, lastApplyMethod: method})
	}
	uninstall := func(un syncv2.Uninstall) *action.Uninstall { return r.newUninstall(time.Minute, un) }
	legacy := &runner{cfg: action.NewConfiguration(), name: "web", namespace: "apps", legacyWait: true}
	yes, no := true, false
	tests := []struct {
		name string
		ok   bool
	}{
		{"an install takes ownership and waits for Jobs by default", install(syncv2.Install{}).TakeOwnership && install(syncv2.Install{}).WaitForJobs && !install(syncv2.Install{}).SkipCRDs},
		{"install.disableTakeOwnership refuses to adopt", !install(syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableTakeOwnership: true}}).TakeOwnership},
		{"install.disableWaitForJobs does not wait for Jobs", !install(syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableWaitForJobs: true}}).WaitForJobs},
		{"install.disableHooks skips the hooks", install(syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableHooks: true}}).DisableHooks},
		{"install.disableOpenAPIValidation skips it", install(syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableOpenAPIValidation: true}}).DisableOpenAPIValidation},
		{"install.disableSchemaValidation skips it", install(syncv2.Install{ActionOptions: syncv2.ActionOptions{DisableSchemaValidation: true}}).SkipSchemaValidation},
		{"install.replace reuses a name", install(syncv2.Install{Replace: true}).Replace},
		{"install.crds Skip skips the CRDs", install(syncv2.Install{CRDs: "Skip"}).SkipCRDs},
		{"install.skipCRDs skips the CRDs", install(syncv2.Install{SkipCRDs: true}).SkipCRDs},
		{"install.crds CreateReplace leaves the CRDs to Sluice, which applies them before Helm installs", install(syncv2.Install{CRDs: "CreateReplace"}).SkipCRDs && !install(syncv2.Install{CRDs: "Create"}).SkipCRDs},
		{"an upgrade resets the values to the HelmRelease's by default", upgrade(syncv2.Upgrade{}).ResetValues && !upgrade(syncv2.Upgrade{}).ReuseValues},
		{"upgrade.preserveValues reuses the last release's", upgrade(syncv2.Upgrade{PreserveValues: true}).ReuseValues && !upgrade(syncv2.Upgrade{PreserveValues: true}).ResetValues},
		{"upgrade.cleanupOnFail cleans up", upgrade(syncv2.Upgrade{CleanupOnFail: true}).CleanupOnFail},
		{"upgrade.force replaces a release applied client-side", upgradeFrom(csa, syncv2.Upgrade{Force: true}).ForceReplace && upgradeFrom(csa, syncv2.Upgrade{Force: true}).ServerSideApply == "false"},
		{"upgrade.force has no effect under server-side apply, which forces conflicts", !upgradeFrom(ssa, syncv2.Upgrade{Force: true}).ForceReplace && upgradeFrom(ssa, syncv2.Upgrade{Force: true}).ServerSideApply == "true" && upgradeFrom(ssa, syncv2.Upgrade{Force: true}).ForceConflicts},
		{"an install applies server-side and forces conflicts by default", install(syncv2.Install{}).ServerSideApply && install(syncv2.Install{}).ForceConflicts},
		{"install.serverSideApply false applies client-side", !install(syncv2.Install{ServerSideApply: &no}).ServerSideApply && !install(syncv2.Install{ServerSideApply: &no}).ForceConflicts},
		{"install.serverSideApply true applies server-side", install(syncv2.Install{ServerSideApply: &yes}).ServerSideApply},
		{"upgrade.serverSideApply auto follows a release applied server-side", upgradeFrom(ssa, syncv2.Upgrade{}).ServerSideApply == "true" && upgradeFrom(ssa, syncv2.Upgrade{}).ForceConflicts},
		{"upgrade.serverSideApply auto follows a release applied client-side", upgradeFrom(csa, syncv2.Upgrade{ServerSideApply: "auto"}).ServerSideApply == "false" && !upgradeFrom(csa, syncv2.Upgrade{}).ForceConflicts},
		{"upgrade.serverSideApply auto applies a release from before Helm 4 client-side", upgradeFrom("", syncv2.Upgrade{}).ServerSideApply == "false"},
		{"upgrade.serverSideApply enabled moves a client-side release to server-side apply", upgradeFrom(csa, syncv2.Upgrade{ServerSideApply: "enabled"}).ServerSideApply == "true"},
		{"upgrade.serverSideApply disabled moves a server-side release to client-side apply", upgradeFrom(ssa, syncv2.Upgrade{ServerSideApply: "disabled"}).ServerSideApply == "false" && !upgradeFrom(ssa, syncv2.Upgrade{ServerSideApply: "disabled"}).ForceConflicts},
		{"rollback.serverSideApply auto follows the revision rolled back to", rollbackTo(ssa, syncv2.Rollback{}).ServerSideApply == "true" && rollbackTo(ssa, syncv2.Rollback{}).ForceConflicts && rollbackTo(csa, syncv2.Rollback{}).ServerSideApply == "false"},
		{"rollback.serverSideApply enabled and disabled override it", rollbackTo(csa, syncv2.Rollback{ServerSideApply: "enabled"}).ServerSideApply == "true" && rollbackTo(ssa, syncv2.Rollback{ServerSideApply: "disabled"}).ServerSideApply == "false"},
		{"rollback.force has no effect under server-side apply", !rollbackTo(ssa, syncv2.Rollback{Force: true}).ForceReplace},
		{"postRenderStrategy is combined by default", install(syncv2.Install{}).PostRenderStrategy == action.PostRenderStrategyCombined && upgrade(syncv2.Upgrade{}).PostRenderStrategy == action.PostRenderStrategyCombined},
		{"postRenderStrategy nohooks and separate reach the install and the upgrade", r.newInstall(actionOptions{postRenderStrategy: "nohooks"}).PostRenderStrategy == action.PostRenderStrategyNoHooks && r.newUpgrade(actionOptions{postRenderStrategy: "separate"}).PostRenderStrategy == action.PostRenderStrategySeparate},
		{"waitStrategy legacy is Helm's legacy waiter for every action that waits", legacy.newInstall(actionOptions{}).WaitStrategy == kube.LegacyStrategy && legacy.newUpgrade(actionOptions{}).WaitStrategy == kube.LegacyStrategy &&
			legacy.newRollback(time.Minute, syncv2.Rollback{}, 5, ssa).WaitStrategy == kube.LegacyStrategy && legacy.newUninstall(time.Minute, syncv2.Uninstall{}).WaitStrategy == kube.LegacyStrategy},
		{"waitStrategy legacy still waits for hooks only when the wait is disabled", legacy.newInstall(actionOptions{disableWait: true}).WaitStrategy == kube.HookOnlyStrategy},
		{"waitStrategy poller, the default, waits with kstatus", install(syncv2.Install{}).WaitStrategy == kube.StatusWatcherStrategy},
		{"upgrade.disableHooks skips the hooks", upgrade(syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableHooks: true}}).DisableHooks},
		{"upgrade.disableTakeOwnership refuses to adopt", !upgrade(syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableTakeOwnership: true}}).TakeOwnership},
		{"upgrade.disableOpenAPIValidation and disableSchemaValidation skip them", upgrade(syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableOpenAPIValidation: true, DisableSchemaValidation: true}}).DisableOpenAPIValidation && upgrade(syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableSchemaValidation: true}}).SkipSchemaValidation},
		{"rollback.force, cleanupOnFail and disableHooks reach the rollback", rollback(syncv2.Rollback{Force: true}).ForceReplace && rollback(syncv2.Rollback{CleanupOnFail: true}).CleanupOnFail && rollback(syncv2.Rollback{DisableHooks: true}).DisableHooks},
		{"a rollback waits for Jobs unless told not to", rollback(syncv2.Rollback{}).WaitForJobs && !rollback(syncv2.Rollback{DisableWaitForJobs: true}).WaitForJobs},
		{"an uninstall waits for deletion by default", uninstall(syncv2.Uninstall{}).WaitStrategy == kube.StatusWatcherStrategy},
		{"uninstall.disableWait does not wait", uninstall(syncv2.Uninstall{DisableWait: true}).WaitStrategy == kube.HookOnlyStrategy},
		{"uninstall.deletionPropagation and disableHooks reach the uninstall", uninstall(syncv2.Uninstall{DeletionPropagation: "orphan"}).DeletionPropagation == "orphan" && uninstall(syncv2.Uninstall{DisableHooks: true}).DisableHooks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("the Helm action is not configured so")
			}
		})
	}
}

func TestAReleaseIsNamedAndStoredAsFluxDoes(t *testing.T) {
	// Flux's own example of a shortened name (helm-controller's
	// internal/release TestShortName).
	const long = "release-name-with-very-long-name-which-is-longer-than-53"
	tests := []struct {
		name string
		// hrName is the HelmRelease's; web when empty.
		hrName                      string
		spec                        syncv2.HelmReleaseSpec
		release, namespace, storage string
	}{
		{"a plain release is named after the HelmRelease, in its namespace", "", syncv2.HelmReleaseSpec{}, "web", "apps", "apps"},
		{"targetNamespace prefixes the name and moves the objects, not Helm's records", "", syncv2.HelmReleaseSpec{TargetNamespace: "prod"}, "prod-web", "prod", "apps"},
		{"storageNamespace moves Helm's records", "", syncv2.HelmReleaseSpec{TargetNamespace: "prod", StorageNamespace: "helm"}, "prod-web", "prod", "helm"},
		{"releaseName wins", "", syncv2.HelmReleaseSpec{ReleaseName: "shop", TargetNamespace: "prod"}, "shop", "prod", "apps"},
		{"a name longer than Helm's 53 characters is cut to 40 and a hash of the whole, as Flux's ShortenName does", "characters",
			syncv2.HelmReleaseSpec{TargetNamespace: long}, "release-name-with-very-long-name-which-i-788ca0d0d7b0", long, "apps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := &syncv2.HelmRelease{Spec: tt.spec}
			hr.Name, hr.Namespace = cmp.Or(tt.hrName, "web"), "apps"
			release, namespace, storage := names(hr)
			if release != tt.release || namespace != tt.namespace || storage != tt.storage {
				t.Fatalf("release %s in %s stored in %s, want %s in %s stored in %s", release, namespace, storage, tt.release, tt.namespace, tt.storage)
			}
		})
	}
}

func TestTestFiltersBecomeHelmsAndSelectTheTestsHelmRuns(t *testing.T) {
	tests := []struct {
		name     string
		filters  []syncv2.TestFilter
		helm     map[string][]string
		selected map[string]bool
	}{
		{"no filters run every test", nil, map[string][]string{}, map[string]bool{"a": true, "b": true}},
		{"an exclusion is Helm's !name and skips that test", []syncv2.TestFilter{{Name: "a", Exclude: true}},
			map[string][]string{action.ExcludeNameFilter: {"a"}}, map[string]bool{"a": false, "b": true}},
		{"an inclusion is Helm's name and runs only those named", []syncv2.TestFilter{{Name: "a"}, {Name: "c"}},
			map[string][]string{action.IncludeNameFilter: {"a", "c"}}, map[string]bool{"a": true, "b": false, "c": true}},
		{"an exclusion wins over an inclusion", []syncv2.TestFilter{{Name: "a"}, {Name: "a", Exclude: true}},
			map[string][]string{action.IncludeNameFilter: {"a"}, action.ExcludeNameFilter: {"a"}}, map[string]bool{"a": false, "b": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testFilters(tt.filters); !reflect.DeepEqual(got, tt.helm) {
				t.Fatalf("Helm's filters %v, want %v", got, tt.helm)
			}
			for name, want := range tt.selected {
				if got := testSelected(tt.filters, name); got != want {
					t.Errorf("test %s selected %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestThePostRenderersDigestChangesWithWhatChangesTheManifests(t *testing.T) {
	with := func(mutate func(*syncv2.HelmReleaseSpec)) string {
		hr := &syncv2.HelmRelease{}
		mutate(&hr.Spec)
		return postRenderersDigest(hr)
	}
	patch := []syncv2.PostRenderer{{Kustomize: &syncv2.KustomizePostRenderer{Images: []syncv1.Image{{Name: "app", NewTag: "2"}}}}}
	none := with(func(*syncv2.HelmReleaseSpec) {})
	patched := with(func(s *syncv2.HelmReleaseSpec) { s.PostRenderers = patch })
	labelled := with(func(s *syncv2.HelmReleaseSpec) {
		s.CommonMetadata = &syncv1.CommonMetadata{Labels: map[string]string{"team": "a"}}
	})
	relabelled := with(func(s *syncv2.HelmReleaseSpec) {
		s.CommonMetadata = &syncv1.CommonMetadata{Labels: map[string]string{"team": "b"}}
	})
	tests := []struct {
		name string
		ok   bool
	}{
		{"a release without post-renderers or common metadata has no digest", none == ""},
		{"post-renderers have one", strings.HasPrefix(patched, "sha256:")},
		{"the same post-renderers have the same digest", patched == with(func(s *syncv2.HelmReleaseSpec) { s.PostRenderers = patch })},
		{"common metadata counts", labelled != "" && labelled != patched},
		{"other common metadata is another digest", labelled != relabelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Fatalf("digests: none %q, patched %q, labelled %q, relabelled %q", none, patched, labelled, relabelled)
			}
		})
	}
}

func TestCommonMetadataSetsTheObjectsOwnMetadataOnly(t *testing.T) {
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web", "team": "chart"}},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}}},
		},
	}}
	setCommonMetadata(o, &syncv1.CommonMetadata{Labels: map[string]string{"team": "platform"}, Annotations: map[string]string{"owner": "ops"}})
	if got := o.GetLabels(); got["team"] != "platform" || got["app"] != "web" {
		t.Fatalf("labels %v, want team overridden and app kept", got)
	}
	if got := o.GetAnnotations(); got["owner"] != "ops" {
		t.Fatalf("annotations %v", got)
	}
	selector, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
	template, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
	if len(selector) != 1 || len(template) != 1 {
		t.Fatalf("selector %v and pod template labels %v changed", selector, template)
	}
}

// TestDriftIgnoreRulesBecomeSSAs: driftDetection.ignore is a
// Kustomization's spec.ignore, and becomes fluxcd/pkg/ssa's rules as
// drift detection passes it on.
func TestDriftIgnoreRulesBecomeSSAs(t *testing.T) {
	spec := syncv2.DriftDetection{Ignore: []syncv1.IgnoreRule{
		{Paths: []string{"/spec/replicas"}},
		{Paths: []string{"/data/a", "/data/b"}, Target: &syncv1.Selector{Group: "apps", Version: "v1", Kind: "Deployment", Name: "web.*", Namespace: "prod", AnnotationSelector: "a=b", LabelSelector: "c=d"}},
	}}
	got := apply.IgnoreRules(spec.Ignore)
	want := []jsondiff.IgnoreRule{
		{Paths: []string{"/spec/replicas"}},
		{Paths: []string{"/data/a", "/data/b"}, Selector: &jsondiff.Selector{Group: "apps", Version: "v1", Kind: "Deployment", Name: "web.*", Namespace: "prod", AnnotationSelector: "a=b", LabelSelector: "c=d"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rules %+v, want %+v", got, want)
	}
}

func TestASnapshotRecordsTheReleasesDigestAndWhenItWasDeleted(t *testing.T) {
	deployed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := &releasev1.Release{Name: "web", Namespace: "apps", Version: 3, Info: &releasev1.Info{Status: common.StatusDeployed, LastDeployed: deployed}}
	live := snapshot(rel, syncv2.Snapshot{})
	if !strings.HasPrefix(live.Digest, "sha256:") || live.Deleted != nil {
		t.Fatalf("snapshot of a deployed release: digest %q, deleted %v", live.Digest, live.Deleted)
	}
	if again := snapshot(rel, syncv2.Snapshot{}); again.Digest != live.Digest {
		t.Fatalf("the same record has digests %s and %s", live.Digest, again.Digest)
	}
	rel.Info.Status, rel.Info.Deleted = common.StatusUninstalled, deployed.Add(time.Hour)
	gone := snapshot(rel, live)
	if gone.Deleted == nil || !gone.Deleted.Time.Equal(deployed.Add(time.Hour)) || gone.Digest == live.Digest {
		t.Fatalf("snapshot of an uninstalled release: deleted %v, digest %s (was %s)", gone.Deleted, gone.Digest, live.Digest)
	}
}

// TestASnapshotDigestsARecordOnlyWhenItChanged: the digests of a
// revision status.history shows already are kept while nothing a change
// of the record shows in moved, as the API server keeps it (times to the
// second); any such change digests it again.
func TestASnapshotDigestsARecordOnlyWhenItChanged(t *testing.T) {
	deployed := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	record := func(mutate func(*releasev1.Release)) *releasev1.Release {
		rel := &releasev1.Release{Name: "web", Namespace: "apps", Version: 3, Config: map[string]any{"a": 1},
			Info:  &releasev1.Info{Status: common.StatusDeployed, LastDeployed: deployed},
			Hooks: []*releasev1.Hook{{Name: "check", Events: []releasev1.HookEvent{releasev1.HookTest}}}}
		if mutate != nil {
			mutate(rel)
		}
		return rel
	}
	// shown is the revision as status.history shows it after a round
	// trip through the API server, with digests made earlier.
	shown := snapshot(record(nil), syncv2.Snapshot{})
	shown.LastDeployed = metav1.NewTime(deployed.Truncate(time.Second))
	shown.Digest, shown.ConfigDigest = "sha256:kept", "sha256:kept-config"
	tests := []struct {
		name string
		rel  *releasev1.Release
		kept bool
	}{
		{"the same record keeps its digests", record(nil), true},
		{"a new status digests it again", record(func(r *releasev1.Release) { r.Info.Status = common.StatusSuperseded }), false},
		{"a new deployment digests it again", record(func(r *releasev1.Release) { r.Info.LastDeployed = deployed.Add(time.Minute) }), false},
		{"a test run digests it again", record(func(r *releasev1.Release) { r.Hooks[0].LastRun.Phase = releasev1.HookPhaseSucceeded }), false},
		{"another revision digests it again", record(func(r *releasev1.Release) { r.Version = 4 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := snapshot(tt.rel, shown)
			if kept := got.Digest == shown.Digest && got.ConfigDigest == shown.ConfigDigest; kept != tt.kept {
				t.Fatalf("digest %s and config digest %s, kept %v; want kept %v", got.Digest, got.ConfigDigest, kept, tt.kept)
			}
			if !tt.kept && (got.Digest != jsonDigest(tt.rel) || got.ConfigDigest != valuesDigest(tt.rel.Config)) {
				t.Fatalf("digest %s and config digest %s, want the record's", got.Digest, got.ConfigDigest)
			}
		})
	}
}
