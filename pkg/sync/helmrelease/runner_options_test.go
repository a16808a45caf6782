package helmrelease

import (
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestTheHelmReleasesOptionsReachHelmsActions checks that each Flux
// option of install, upgrade, rollback and uninstall sets its Helm SDK
// setting, and that the defaults are Flux's.
func TestTheHelmReleasesOptionsReachHelmsActions(t *testing.T) {
	r := &runner{cfg: action.NewConfiguration(), name: "web", namespace: "apps"}
	install := func(in syncv2.Install) *action.Install { return r.newInstall(actionOptions{install: in}) }
	upgrade := func(up syncv2.Upgrade) *action.Upgrade { return r.newUpgrade(actionOptions{upgrade: up}) }
	rollback := func(rb syncv2.Rollback) *action.Rollback { return r.newRollback(time.Minute, rb, 5) }
	uninstall := func(un syncv2.Uninstall) *action.Uninstall { return r.newUninstall(time.Minute, un) }
	tests := []struct {
		name string
		ok   bool
	}{
		{"an install takes ownership and waits for Jobs by default", install(syncv2.Install{}).TakeOwnership && install(syncv2.Install{}).WaitForJobs && !install(syncv2.Install{}).SkipCRDs},
		{"install.disableTakeOwnership refuses to adopt", !install(syncv2.Install{DisableTakeOwnership: true}).TakeOwnership},
		{"install.disableWaitForJobs does not wait for Jobs", !install(syncv2.Install{DisableWaitForJobs: true}).WaitForJobs},
		{"install.disableHooks skips the hooks", install(syncv2.Install{DisableHooks: true}).DisableHooks},
		{"install.disableOpenAPIValidation skips it", install(syncv2.Install{DisableOpenAPIValidation: true}).DisableOpenAPIValidation},
		{"install.disableSchemaValidation skips it", install(syncv2.Install{DisableSchemaValidation: true}).SkipSchemaValidation},
		{"install.replace reuses a name", install(syncv2.Install{Replace: true}).Replace},
		{"install.crds Skip skips the CRDs", install(syncv2.Install{CRDs: "Skip"}).SkipCRDs},
		{"install.skipCRDs skips the CRDs", install(syncv2.Install{SkipCRDs: true}).SkipCRDs},
		{"an upgrade resets the values to the HelmRelease's by default", upgrade(syncv2.Upgrade{}).ResetValues && !upgrade(syncv2.Upgrade{}).ReuseValues},
		{"upgrade.preserveValues reuses the last release's", upgrade(syncv2.Upgrade{PreserveValues: true}).ReuseValues && !upgrade(syncv2.Upgrade{PreserveValues: true}).ResetValues},
		{"upgrade.cleanupOnFail cleans up", upgrade(syncv2.Upgrade{CleanupOnFail: true}).CleanupOnFail},
		{"upgrade.force replaces, without server-side apply", upgrade(syncv2.Upgrade{Force: true}).ForceReplace && upgrade(syncv2.Upgrade{Force: true}).ServerSideApply == "false"},
		{"upgrade.disableHooks skips the hooks", upgrade(syncv2.Upgrade{DisableHooks: true}).DisableHooks},
		{"upgrade.disableTakeOwnership refuses to adopt", !upgrade(syncv2.Upgrade{DisableTakeOwnership: true}).TakeOwnership},
		{"upgrade.disableOpenAPIValidation and disableSchemaValidation skip them", upgrade(syncv2.Upgrade{DisableOpenAPIValidation: true, DisableSchemaValidation: true}).DisableOpenAPIValidation && upgrade(syncv2.Upgrade{DisableSchemaValidation: true}).SkipSchemaValidation},
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
	tests := []struct {
		name                        string
		spec                        syncv2.HelmReleaseSpec
		release, namespace, storage string
	}{
		{"a plain release is named after the HelmRelease, in its namespace", syncv2.HelmReleaseSpec{}, "web", "apps", "apps"},
		{"targetNamespace prefixes the name and moves the objects, not Helm's records", syncv2.HelmReleaseSpec{TargetNamespace: "prod"}, "prod-web", "prod", "apps"},
		{"storageNamespace moves Helm's records", syncv2.HelmReleaseSpec{TargetNamespace: "prod", StorageNamespace: "helm"}, "prod-web", "prod", "helm"},
		{"releaseName wins", syncv2.HelmReleaseSpec{ReleaseName: "shop", TargetNamespace: "prod"}, "shop", "prod", "apps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := &syncv2.HelmRelease{Spec: tt.spec}
			hr.Name, hr.Namespace = "web", "apps"
			release, namespace, storage := names(hr)
			if release != tt.release || namespace != tt.namespace || storage != tt.storage {
				t.Fatalf("release %s in %s stored in %s, want %s in %s stored in %s", release, namespace, storage, tt.release, tt.namespace, tt.storage)
			}
		})
	}
}
