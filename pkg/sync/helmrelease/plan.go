package helmrelease

import "time"

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
	// stepReinstall uninstalls the release of another target (storage
	// namespace, release namespace or name) than the HelmRelease names
	// now, or one whose chart has another name now, so that the chart is
	// installed afresh where the HelmRelease says.
	stepReinstall step = "reinstall"
	// stepStalled: retries are spent; nothing runs until the chart, the
	// values or the spec change, or a reset is requested.
	stepStalled step = "stalled"
)

// defaultRetryInterval is RetryOnFailure's retryInterval when unset, as
// in Flux.
const defaultRetryInterval = 5 * time.Minute

// releaseState is what Helm's storage says of the latest revision.
type releaseState struct {
	// Exists is false when there is no release.
	Exists  bool
	Status  string
	Pending bool
	// ChartName, ChartRevision and ValuesDigest are what the revision
	// released.
	ChartName     string
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

// remediation is a resolved spec.install or spec.upgrade: its strategy
// and its remediation.
type remediation struct {
	retries       int
	remediateLast bool
	// strategy of an upgrade: rollback or uninstall.
	strategy string
	// retry is the RetryOnFailure strategy: a failure is never
	// remediated, and the release is tried again, with an upgrade, every
	// retryInterval, without limit.
	retry         bool
	retryInterval time.Duration
}

// exhausted is true once failures went past the retries; negative
// retries never run out, and neither does RetryOnFailure.
func (r remediation) exhausted(failures int64) bool {
	return !r.retry && r.retries >= 0 && failures > int64(r.retries)
}

// remediates is true when this failure is to be undone: while retries
// remain, and for the last one when asked; never under RetryOnFailure.
func (r remediation) remediates(failures int64) bool {
	return !r.retry && failures > 0 && (!r.exhausted(failures) || r.remediateLast)
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
	// PostRenderersDigest is the digest of spec.postRenderers and
	// spec.commonMetadata; ObservedPostRenderersDigest is the one the
	// last successful install or upgrade rendered with.
	PostRenderersDigest         string
	ObservedPostRenderersDigest string
	// Force is a reconcile.fluxcd.io/forceAt request being handled: one
	// install or upgrade runs though nothing changed and retries are
	// spent.
	Force bool
	// ChartName is the name, in its Chart.yaml, of the chart to release.
	// A release of a chart of another name is reinstalled, as Flux does,
	// unless InPlaceChartNameChange (upgrade.chartNameChangeStrategy
	// InPlaceUpdate) upgrades it in place.
	ChartName              string
	InPlaceChartNameChange bool
	// TargetChange names what moved of the release target the status
	// records (its storage namespace, release namespace or release name):
	// the release there is uninstalled, as Flux does, before the chart is
	// installed at the new one, whatever chartNameChangeStrategy says.
	TargetChange string
}

// chartRenamed is true when the release holds a chart of another name
// than the one to release.
func (o observation) chartRenamed() bool {
	return o.Release.ChartName != "" && o.ChartName != "" && o.Release.ChartName != o.ChartName
}

// next decides the next step: a pure function of the observation, so
// every path through install, upgrade, test and remediation is tested
// without a cluster.
func next(o observation) step {
	rel := o.Release
	switch {
	case o.TargetChange != "":
		// The release of the old target is elsewhere: what is at the new
		// one does not matter until it is gone.
		return stepReinstall
	case !rel.Exists || rel.Status == "uninstalled":
		// A release uninstalled with its history kept is installed
		// again, as Flux does (with install.replace, or Helm refuses the
		// name).
		if !o.Force && o.Install.exhausted(o.InstallFailures) {
			return stepStalled
		}
		return stepInstall
	case rel.Pending:
		return stepUnlock
	case o.chartRenamed() && !o.InPlaceChartNameChange:
		// Flux's default: whatever state it is in, the release of the old
		// chart goes before the new one is installed.
		return stepReinstall
	case o.Force:
		// Helm upgrades a failed release as well as a deployed one.
		return stepUpgrade
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
	upToDate := rel.ChartRevision == o.ChartRevision && rel.ValuesDigest == o.ValuesDigest &&
		o.PostRenderersDigest == o.ObservedPostRenderersDigest && !o.chartRenamed()
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

// installFailed is true when the failed latest revision counts as a
// failed install: an install made it, or nothing was ever deployed (an
// upgrade retrying a failed install under RetryOnFailure).
func installFailed(rel releaseState) bool {
	return rel.LastAction == stepInstall.String() || !rel.EverDeployed
}

// nextAfterFailure handles a failed latest revision.
func nextAfterFailure(o observation) step {
	rel := o.Release
	if installFailed(rel) {
		if o.Install.retry {
			// Flux retries a failed install with an upgrade, leaving
			// what it made in place.
			return stepUpgrade
		}
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
	if o.Upgrade.retry || o.UpgradeFailures == 0 {
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
// failure of the action that made it; under RetryOnFailure the release
// is upgraded again, which runs the tests again.
func nextAfterTestFailure(o observation) step {
	if installFailed(o.Release) {
		if o.Install.retry {
			return stepUpgrade
		}
		if o.Install.remediates(o.InstallFailures) {
			return stepUninstall
		}
		return stepStalled
	}
	if o.Upgrade.retry {
		return stepUpgrade
	}
	if o.Upgrade.remediates(o.UpgradeFailures) {
		if o.Upgrade.strategy == "uninstall" {
			return stepUninstall
		}
		return stepRollback
	}
	return stepStalled
}

// retryAfter says whether a failure of step s, taken from the state in
// o, is left for RetryOnFailure to try again, and after how long. An
// upgrade of a release that never deployed retries a failed install, so
// the install's strategy governs it.
func retryAfter(o observation, s step) (time.Duration, bool) {
	r := o.Upgrade
	if s == stepInstall || (s == stepTest && installFailed(o.Release)) || (s == stepUpgrade && o.Release.Exists && !o.Release.EverDeployed) {
		r = o.Install
	}
	if !r.retry {
		return 0, false
	}
	return r.retryInterval, true
}

// handleRequest is Flux's rule for the forceAt and resetAt annotations:
// the request (the annotation's value) is acted on when it equals the
// reconcile request (requestedAt), and neither was handled already.
// lastHandled is updated to the request whenever the annotation is
// there, acted on or not, so that a request is never acted on later.
func handleRequest(annotations map[string]string, annotation, reconcileAnnotation string, lastHandled *string, lastHandledReconcile string) bool {
	request, ok := annotations[annotation]
	if !ok {
		return false
	}
	previous := *lastHandled
	*lastHandled = request
	reconcileAt, ok := annotations[reconcileAnnotation]
	return ok && request == reconcileAt && lastHandledReconcile != reconcileAt && previous != request
}

// attempt is what the failure counters are kept against.
type attempt struct {
	Generation    int64
	ChartRevision string
	ConfigDigest  string
}

// resetFailures says why the failure counters start again, as Flux's
// rule: a new generation of the spec, a new chart, new values, or a
// handled reset request. An empty last attempt is a first one.
func resetFailures(last, now attempt, resetRequested bool) (string, bool) {
	switch {
	case last.Generation != now.Generation:
		return "the spec changed", true
	case last.ChartRevision != now.ChartRevision:
		return "the chart changed", true
	case last.ConfigDigest != now.ConfigDigest:
		return "the values changed", true
	case resetRequested:
		return "a reset was requested", true
	}
	return "", false
}

func (s step) String() string { return string(s) }
