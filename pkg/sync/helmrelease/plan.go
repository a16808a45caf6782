package helmrelease

// step is the next Helm action a HelmRelease needs.
type step string

const (
	stepNone      step = ""
	stepInstall   step = "install"
	stepUpgrade   step = "upgrade"
	stepTest      step = "test"
	stepRollback  step = "rollback"
	stepUninstall step = "uninstall"
	stepUnlock    step = "unlock"
	// stepStalled: retries are spent; nothing runs until the chart or
	// the values change.
	stepStalled step = "stalled"
)

// releaseState is what Helm's storage says of the latest revision.
type releaseState struct {
	// Exists is false when there is no release.
	Exists  bool
	Status  string
	Pending bool
	// ChartRevision and ValuesDigest are what the revision released.
	ChartRevision string
	ValuesDigest  string
	// EverDeployed is true when some revision was deployed, so there is
	// something to upgrade from or roll back to.
	EverDeployed bool
	// Tested and TestsFailed describe the test hooks' last run; a chart
	// without test hooks counts as tested.
	Tested      bool
	TestsFailed bool
	// LastAction is what made the failed revision: install or upgrade.
	LastAction string
}

// remediation is a resolved spec.install.remediation or
// spec.upgrade.remediation.
type remediation struct {
	retries       int
	remediateLast bool
	// strategy of an upgrade: rollback or uninstall.
	strategy    string
	ignoreTests bool
}

// exhausted is true once failures went past the retries; negative
// retries never run out.
func (r remediation) exhausted(failures int64) bool {
	return r.retries >= 0 && failures > int64(r.retries)
}

// remediates is true when this failure is to be undone: while retries
// remain, and for the last one when asked.
func (r remediation) remediates(failures int64) bool {
	return failures > 0 && (!r.exhausted(failures) || r.remediateLast)
}

// observation is what a decision needs.
type observation struct {
	Release         releaseState
	ChartRevision   string
	ValuesDigest    string
	InstallFailures int64
	UpgradeFailures int64
	Install         remediation
	Upgrade         remediation
	TestEnabled     bool
	IgnoreTests     bool
}

// next decides the next step: a pure function of the observation, so
// every path through install, upgrade, test and remediation is tested
// without a cluster.
func next(o observation) step {
	rel := o.Release
	switch {
	case !rel.Exists:
		if o.Install.exhausted(o.InstallFailures) {
			return stepStalled
		}
		return stepInstall
	case rel.Pending:
		return stepUnlock
	case rel.Status == "failed":
		return nextAfterFailure(o)
	case rel.Status != "deployed":
		// uninstalling, superseded or unknown as the latest: start over
		// from what Helm can act on.
		if rel.EverDeployed {
			return stepUpgrade
		}
		return stepUninstall
	}
	upToDate := rel.ChartRevision == o.ChartRevision && rel.ValuesDigest == o.ValuesDigest
	if !upToDate {
		if o.Upgrade.exhausted(o.UpgradeFailures) {
			return stepStalled
		}
		return stepUpgrade
	}
	if o.TestEnabled && !rel.Tested {
		return stepTest
	}
	if o.TestEnabled && rel.TestsFailed && !o.IgnoreTests {
		return nextAfterTestFailure(o)
	}
	return stepNone
}

// nextAfterFailure handles a failed latest revision.
func nextAfterFailure(o observation) step {
	rel := o.Release
	if rel.LastAction == stepInstall.String() || !rel.EverDeployed {
		if o.InstallFailures == 0 {
			// Not a failure of ours, such as an unlocked release: clear
			// it and install afresh.
			return stepUninstall
		}
		if o.Install.remediates(o.InstallFailures) {
			return stepUninstall
		}
		return stepStalled
	}
	if o.UpgradeFailures == 0 {
		return stepUpgrade
	}
	if o.Upgrade.remediates(o.UpgradeFailures) {
		if o.Upgrade.strategy == "uninstall" {
			return stepUninstall
		}
		return stepRollback
	}
	if o.Upgrade.exhausted(o.UpgradeFailures) {
		return stepStalled
	}
	return stepUpgrade
}

// nextAfterTestFailure remediates a release whose tests failed, as a
// failure of the action that made it.
func nextAfterTestFailure(o observation) step {
	if !o.Release.EverDeployed || o.Release.LastAction == stepInstall.String() {
		if o.Install.remediates(o.InstallFailures) {
			return stepUninstall
		}
		return stepStalled
	}
	if o.Upgrade.remediates(o.UpgradeFailures) {
		if o.Upgrade.strategy == "uninstall" {
			return stepUninstall
		}
		return stepRollback
	}
	return stepStalled
}

func (s step) String() string { return string(s) }
