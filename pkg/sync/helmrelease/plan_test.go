package helmrelease

import "testing"

func TestNext(t *testing.T) {
	deployed := releaseState{Exists: true, Status: "deployed", ChartRevision: "1.0.0", ValuesDigest: "v1", EverDeployed: true, Tested: true, LastAction: "install"}
	with := func(mutate func(*observation)) observation {
		o := observation{Release: deployed, ChartRevision: "1.0.0", ValuesDigest: "v1",
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := next(tt.obs); got != tt.want {
				t.Fatalf("next = %q, want %q", got, tt.want)
			}
		})
	}
}
