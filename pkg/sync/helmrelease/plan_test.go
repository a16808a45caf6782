package helmrelease

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

func TestNext(t *testing.T) {
	deployed := releaseState{Exists: true, Status: "deployed", ChartName: "app", ChartRevision: "1.0.0", ValuesDigest: "v1", EverDeployed: true, Tested: true, LastAction: "install"}
	with := func(mutate func(*observation)) observation {
		o := observation{Release: deployed, ChartName: "app", ChartRevision: "1.0.0", ValuesDigest: "v1",
			Install: remediation{retries: 2, remediateLast: true}, Upgrade: remediation{retries: 1, remediateLast: true, strategy: "rollback"}}
		mutate(&o)
		return o
	}
	tests := []struct {
		name string
		obs  observation
		want step
	}{
		{"no release is installed", with(func(o *observation) { o.Release = releaseState{} }), stepInstall},
		{"a release in sync needs nothing", with(func(*observation) {}), stepNone},
		{"a new chart version is upgraded to", with(func(o *observation) { o.ChartRevision = "1.1.0" }), stepUpgrade},
		{"new values are upgraded to", with(func(o *observation) { o.ValuesDigest = "v2" }), stepUpgrade},
		{"a release left pending by a killed operator is unlocked", with(func(o *observation) { o.Release.Status, o.Release.Pending = "pending-upgrade", true }), stepUnlock},
		{"a failed install with retries left is uninstalled", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "install"}
			o.InstallFailures = 1
		}), stepUninstall},
		{"after its remediation a failed install is retried", with(func(o *observation) {
			o.Release = releaseState{}
			o.InstallFailures = 2
		}), stepInstall},
		{"the last failed install is uninstalled too when asked", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "install"}
			o.InstallFailures = 3
		}), stepUninstall},
		{"once retries are spent an install stalls", with(func(o *observation) {
			o.Release = releaseState{}
			o.InstallFailures = 3
		}), stepStalled},
		{"a failed install with no remediation stalls and stays", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "install"}
			o.Install, o.InstallFailures = remediation{}, 1
		}), stepStalled},
		{"a failed upgrade is rolled back", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
			o.UpgradeFailures = 1
		}), stepRollback},
		{"a failed upgrade is uninstalled under that strategy", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
			o.Upgrade.strategy, o.UpgradeFailures = "uninstall", 1
		}), stepUninstall},
		{"after a rollback the upgrade is retried while retries remain", with(func(o *observation) {
			o.ChartRevision, o.UpgradeFailures = "2.0.0", 1
		}), stepUpgrade},
		{"after the last rollback the release stays on the good revision", with(func(o *observation) {
			o.ChartRevision, o.UpgradeFailures = "2.0.0", 2
		}), stepStalled},
		{"a failed release not failed by us is upgraded when it ever deployed", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
		}), stepUpgrade},
		{"a failed first install not failed by us is cleared", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "install"}
		}), stepUninstall},
		{"an untested release is tested when tests are on", with(func(o *observation) { o.TestEnabled, o.Release.Tested = true, false }), stepTest},
		{"failed tests of an install are remediated by uninstalling", with(func(o *observation) {
			o.TestEnabled, o.Release.TestsFailed, o.InstallFailures = true, true, 1
		}), stepUninstall},
		{"failed tests stall when nothing remediates them", with(func(o *observation) {
			o.TestEnabled, o.Release.TestsFailed, o.InstallFailures = true, true, 1
			o.Install = remediation{}
		}), stepStalled},
		{"ignored test failures leave the release alone", with(func(o *observation) {
			o.TestEnabled, o.Release.TestsFailed, o.IgnoreTests = true, true, true
		}), stepNone},
		{"negative retries never run out", with(func(o *observation) {
			o.Release = releaseState{}
			o.Install, o.InstallFailures = remediation{retries: -1}, 50
		}), stepInstall},

		// upgrade.chartNameChangeStrategy
		{"a chart of another name is reinstalled by default, even at the same version", with(func(o *observation) { o.ChartName = "other" }), stepReinstall},
		{"a failed release of the old chart is reinstalled too", with(func(o *observation) {
			o.ChartName, o.Release.Status, o.UpgradeFailures = "other", "failed", 1
		}), stepReinstall},
		{"a forced release of the old chart is reinstalled, not upgraded", with(func(o *observation) { o.ChartName, o.Force = "other", true }), stepReinstall},
		{"a release of the old chart left pending is unlocked first", with(func(o *observation) {
			o.ChartName, o.Release.Status, o.Release.Pending = "other", "pending-upgrade", true
		}), stepUnlock},
		{"InPlaceUpdate upgrades to the chart of another name at the same version", with(func(o *observation) {
			o.ChartName, o.InPlaceChartNameChange = "other", true
		}), stepUpgrade},
		{"InPlaceUpdate leaves a release of the same chart alone", with(func(o *observation) { o.InPlaceChartNameChange = true }), stepNone},
		{"after the reinstall's uninstall, the chart is installed", with(func(o *observation) {
			o.ChartName, o.Release = "other", releaseState{}
		}), stepInstall},
		{"an uninstall that kept the history is installed again, not reinstalled forever", with(func(o *observation) {
			o.ChartName, o.Release.Status = "other", "uninstalled"
		}), stepInstall},

		// A changed release target (Flux's ReleaseTargetChanged).
		{"a release whose target namespace changed is reinstalled where it now goes", with(func(o *observation) {
			o.Release, o.TargetChange = releaseState{}, targetReleaseNamespace
		}), stepReinstall},
		{"a changed storage namespace is reinstalled though a release of the new name is there", with(func(o *observation) {
			o.TargetChange = targetStorageNamespace
		}), stepReinstall},
		{"a changed release name is reinstalled whatever chartNameChangeStrategy says", with(func(o *observation) {
			o.Release, o.TargetChange, o.InPlaceChartNameChange = releaseState{}, targetReleaseName, true
		}), stepReinstall},
		{"a changed target is reinstalled though installs are spent", with(func(o *observation) {
			o.Release, o.TargetChange, o.InstallFailures = releaseState{}, targetReleaseName, 9
		}), stepReinstall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := next(tt.obs); got != tt.want {
				t.Fatalf("next = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNextUnderRetryOnFailureStrategyAndForceRequests(t *testing.T) {
	retry := remediation{retry: true, retryInterval: time.Minute}
	deployed := releaseState{Exists: true, Status: "deployed", ChartRevision: "1.0.0", ValuesDigest: "v1", EverDeployed: true, Tested: true, LastAction: "upgrade"}
	with := func(mutate func(*observation)) observation {
		o := observation{Release: deployed, ChartRevision: "1.0.0", ValuesDigest: "v1", Upgrade: remediation{strategy: "rollback"}}
		mutate(&o)
		return o
	}
	tests := []struct {
		name string
		obs  observation
		want step
	}{
		{"a failed install is retried with an upgrade, not uninstalled", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "install"}
			o.Install, o.InstallFailures = retry, 1
		}), stepUpgrade},
		{"a failed upgrade retrying an install is retried again while nothing ever deployed", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", LastAction: "upgrade"}
			o.Install, o.InstallFailures, o.UpgradeFailures = retry, 1, 5
		}), stepUpgrade},
		{"a failed upgrade is retried, never rolled back", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
			o.Upgrade, o.UpgradeFailures = retry, 1
		}), stepUpgrade},
		{"retries never run out under RetryOnFailure", with(func(o *observation) {
			o.ChartRevision = "2.0.0"
			o.Upgrade, o.UpgradeFailures = remediation{retry: true, retries: 0}, 40
		}), stepUpgrade},
		{"RemediateOnFailure with no retries stalls on the same failure", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
			o.UpgradeFailures = 1
		}), stepStalled},
		{"failed tests are retried with an upgrade, never uninstalled", with(func(o *observation) {
			o.Release.LastAction = "install"
			o.TestEnabled, o.Release.TestsFailed = true, true
			o.Install, o.InstallFailures = retry, 1
		}), stepUpgrade},
		{"a forced release in sync is upgraded", with(func(o *observation) { o.Force = true }), stepUpgrade},
		{"a forced release whose retries are spent is upgraded", with(func(o *observation) {
			o.Release = releaseState{Exists: true, Status: "failed", EverDeployed: true, LastAction: "upgrade"}
			o.Force, o.UpgradeFailures = true, 9
		}), stepUpgrade},
		{"a forced release that is not there is installed though installs are spent", with(func(o *observation) {
			o.Release = releaseState{}
			o.Force, o.InstallFailures = true, 3
		}), stepInstall},
		{"a forced release left pending is unlocked first", with(func(o *observation) {
			o.Release.Status, o.Release.Pending, o.Force = "pending-upgrade", true, true
		}), stepUnlock},
		{"new post-renderers are released by an upgrade", with(func(o *observation) {
			o.PostRenderersDigest, o.ObservedPostRenderersDigest = "sha256:b", "sha256:a"
		}), stepUpgrade},
		{"post-renderers added to a release made without them are released", with(func(o *observation) {
			o.PostRenderersDigest = "sha256:b"
		}), stepUpgrade},
		{"post-renderers already released need nothing", with(func(o *observation) {
			o.PostRenderersDigest, o.ObservedPostRenderersDigest = "sha256:a", "sha256:a"
		}), stepNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := next(tt.obs); got != tt.want {
				t.Fatalf("next = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRetryOnFailureSaysWhenAFailedStepIsTriedAgain(t *testing.T) {
	install := remediation{retry: true, retryInterval: time.Minute}
	upgrade := remediation{retry: true, retryInterval: time.Hour}
	everDeployed := releaseState{Exists: true, Status: "deployed", EverDeployed: true, LastAction: "upgrade"}
	neverDeployed := releaseState{Exists: true, Status: "failed", LastAction: "install"}
	tests := []struct {
		name  string
		obs   observation
		s     step
		after time.Duration
		retry bool
	}{
		{"a failed install waits for the install's interval", observation{Install: install}, stepInstall, time.Minute, true},
		{"a failed upgrade waits for the upgrade's interval", observation{Release: everDeployed, Install: install, Upgrade: upgrade}, stepUpgrade, time.Hour, true},
		{"an upgrade retrying an install waits for the install's interval", observation{Release: neverDeployed, Install: install}, stepUpgrade, time.Minute, true},
		{"failed tests of an upgrade wait for the upgrade's interval", observation{Release: everDeployed, Upgrade: upgrade}, stepTest, time.Hour, true},
		{"a failed upgrade under RemediateOnFailure is remediated, not retried later", observation{Release: everDeployed, Install: install}, stepUpgrade, 0, false},
		{"a failed install under RemediateOnFailure is remediated", observation{Upgrade: upgrade}, stepInstall, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, retry := retryAfter(tt.obs, tt.s)
			if after != tt.after || retry != tt.retry {
				t.Fatalf("retryAfter = %s, %v; want %s, %v", after, retry, tt.after, tt.retry)
			}
		})
	}
}

func TestTheStrategyAndRemediationDefaultsAreFluxs(t *testing.T) {
	yes, no := true, false
	spec := func(mutate func(*syncv2.HelmReleaseSpec)) *syncv2.HelmRelease {
		hr := &syncv2.HelmRelease{}
		mutate(&hr.Spec)
		return hr
	}
	tests := []struct {
		name string
		got  remediation
		want remediation
	}{
		{"an install with retries does not remediate its last failure", installRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{Retries: 3}}
		})), remediation{retries: 3, strategy: "uninstall"}},
		{"an install remediates its last failure when asked", installRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{Retries: 3, RemediateLastFailure: &yes}}
		})), remediation{retries: 3, remediateLast: true, strategy: "uninstall"}},
		{"an upgrade with retries remediates its last failure", upgradeRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Upgrade = &syncv2.Upgrade{Remediation: &syncv2.UpgradeRemediation{Retries: 1}}
		})), remediation{retries: 1, remediateLast: true, strategy: "rollback"}},
		{"an upgrade is told not to remediate its last failure", upgradeRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Upgrade = &syncv2.Upgrade{Remediation: &syncv2.UpgradeRemediation{Retries: 1, RemediateLastFailure: &no, Strategy: "uninstall"}}
		})), remediation{retries: 1, strategy: "uninstall"}},
		{"no upgrade settings roll back", upgradeRemediation(spec(func(*syncv2.HelmReleaseSpec) {})), remediation{strategy: "rollback"}},
		{"RetryOnFailure retries every 5m by default", installRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Install = &syncv2.Install{Strategy: &syncv2.ActionStrategy{Name: syncv2.StrategyRetryOnFailure}}
		})), remediation{strategy: "uninstall", retry: true, retryInterval: 5 * time.Minute}},
		{"RetryOnFailure retries every retryInterval", upgradeRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Upgrade = &syncv2.Upgrade{Strategy: &syncv2.ActionStrategy{Name: syncv2.StrategyRetryOnFailure, RetryInterval: &metav1.Duration{Duration: time.Second}}}
		})), remediation{strategy: "rollback", retry: true, retryInterval: time.Second}},
		{"RemediateOnFailure is the remediation as it was", upgradeRemediation(spec(func(s *syncv2.HelmReleaseSpec) {
			s.Upgrade = &syncv2.Upgrade{Strategy: &syncv2.ActionStrategy{Name: syncv2.StrategyRemediateOnFailure}, Remediation: &syncv2.UpgradeRemediation{Retries: -1}}
		})), remediation{retries: -1, strategy: "rollback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("resolved %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestIgnoreTestFailuresDefaultsToTestIgnoreFailures(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name   string
		test   bool
		action string
		rem    *bool
		want   bool
	}{
		{"test.ignoreFailures is the default of an install", true, "install", nil, true},
		{"install.remediation.ignoreTestFailures false overrides test.ignoreFailures", true, "install", &no, false},
		{"install.remediation.ignoreTestFailures true ignores on its own", false, "install", &yes, true},
		{"upgrade.remediation.ignoreTestFailures false overrides test.ignoreFailures", true, "upgrade", &no, false},
		{"nothing set counts failed tests", false, "upgrade", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := &syncv2.HelmRelease{}
			hr.Spec.Test = &syncv2.Test{Enable: true, IgnoreFailures: tt.test}
			hr.Spec.Install = &syncv2.Install{Remediation: &syncv2.InstallRemediation{IgnoreTestFailures: tt.rem}}
			hr.Spec.Upgrade = &syncv2.Upgrade{Remediation: &syncv2.UpgradeRemediation{IgnoreTestFailures: tt.rem}}
			hr.Status.LastAttemptedReleaseAction = tt.action
			if got := ignoreTests(hr); got != tt.want {
				t.Fatalf("ignoreTests = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestForceAndResetRequestsAreHandledOnceAsFluxDoes(t *testing.T) {
	tests := []struct {
		name                 string
		annotations          map[string]string
		lastHandled          string
		lastHandledReconcile string
		want                 bool
		wantLastHandled      string
	}{
		{"a request equal to the reconcile request is handled", map[string]string{"a": "1", "r": "1"}, "", "", true, "1"},
		{"a request without a reconcile request is recorded, not handled", map[string]string{"a": "1"}, "", "", false, "1"},
		{"a request that differs from the reconcile request is recorded, not handled", map[string]string{"a": "1", "r": "2"}, "", "", false, "1"},
		{"a request handled before is not handled again", map[string]string{"a": "1", "r": "1"}, "1", "", false, "1"},
		{"a reconcile request handled before does not handle the request", map[string]string{"a": "1", "r": "1"}, "", "1", false, "1"},
		{"no request leaves the last handled value", map[string]string{"r": "1"}, "0", "", false, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last := tt.lastHandled
			if got := handleRequest(tt.annotations, "a", "r", &last, tt.lastHandledReconcile); got != tt.want || last != tt.wantLastHandled {
				t.Fatalf("handleRequest = %v, last handled %q; want %v, %q", got, last, tt.want, tt.wantLastHandled)
			}
		})
	}
}

func TestTheFailureCountersStartAgainAsFluxResetsThem(t *testing.T) {
	last := attempt{Generation: 2, ChartRevision: "1.0.0", ConfigDigest: "sha256:a"}
	tests := []struct {
		name  string
		now   attempt
		reset bool
		want  bool
	}{
		{"the same attempt keeps the counters", last, false, false},
		{"a new generation resets them", attempt{Generation: 3, ChartRevision: "1.0.0", ConfigDigest: "sha256:a"}, false, true},
		{"a new chart resets them", attempt{Generation: 2, ChartRevision: "1.0.1", ConfigDigest: "sha256:a"}, false, true},
		{"new values reset them", attempt{Generation: 2, ChartRevision: "1.0.0", ConfigDigest: "sha256:b"}, false, true},
		{"a handled resetAt request resets them", last, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := resetFailures(last, tt.now, tt.reset); got != tt.want {
				t.Fatalf("resetFailures = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAChangedReleaseTargetIsFoundAsFluxFindsIt(t *testing.T) {
	released := func(mutate func(*syncv2.HelmRelease)) *syncv2.HelmRelease {
		hr := &syncv2.HelmRelease{}
		hr.Name, hr.Namespace = "web", "apps"
		hr.Status.StorageNamespace = "apps"
		hr.Status.History = []syncv2.Snapshot{{Name: "web", Namespace: "apps", Version: 2, ChartName: "app"}, {Name: "old", Namespace: "old", Version: 1}}
		mutate(hr)
		return hr
	}
	tests := []struct {
		name string
		hr   *syncv2.HelmRelease
		want string
	}{
		{"the same target has not changed", released(func(*syncv2.HelmRelease) {}), ""},
		{"nothing released has no target to change", released(func(hr *syncv2.HelmRelease) { hr.Status.History = nil }), ""},
		{"no storage namespace recorded has none either", released(func(hr *syncv2.HelmRelease) { hr.Status.StorageNamespace = "" }), ""},
		{"a new storageNamespace moves the storage", released(func(hr *syncv2.HelmRelease) { hr.Spec.StorageNamespace = "helm" }), targetStorageNamespace},
		{"a new targetNamespace moves the release namespace first", released(func(hr *syncv2.HelmRelease) { hr.Spec.TargetNamespace = "prod" }), targetReleaseNamespace},
		{"a new releaseName renames it", released(func(hr *syncv2.HelmRelease) { hr.Spec.ReleaseName = "shop" }), targetReleaseName},
		{"the latest revision counts, not an older one", released(func(hr *syncv2.HelmRelease) { hr.Spec.ReleaseName = "old" }), targetReleaseName},
		{"a new chart name is left to chartNameChangeStrategy", released(func(hr *syncv2.HelmRelease) { hr.Status.History[0].ChartName = "other" }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := targetChange(tt.hr); got != tt.want {
				t.Fatalf("targetChange = %q, want %q", got, tt.want)
			}
		})
	}
}
