package helmrelease

import (
	"maps"
	"strings"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// recordHistory writes the release's revisions into status, newest
// first: history, when fresh says no action changed Helm's storage since
// the reconcile read it, or else what Helm's storage holds now. While
// the release target changed and the release of the old one is not
// uninstalled yet, the status keeps naming the old one, so that it is
// not forgotten.
func (r *Reconciler) recordHistory(hr *syncv2.HelmRelease, run *runner, history []*releasev1.Release, fresh bool) error {
	if targetChange(hr) != "" {
		return nil
	}
	if !fresh {
		var err error
		if history, err = run.history(); err != nil {
			return err
		}
	}
	_, _, storage := names(hr)
	hr.Status.StorageNamespace = storage
	previous := map[int]syncv2.Snapshot{}
	for _, s := range hr.Status.History {
		previous[s.Version] = s
	}
	hr.Status.History = nil
	for _, rel := range history[:min(len(history), statusHistory(hr))] {
		s := snapshot(rel, previous[rel.Version])
		// Helm keeps no OCI digest: each revision keeps the one it was
		// recorded with, and a new one gets the digest last attempted.
		if p, ok := previous[rel.Version]; ok {
			s.OCIDigest = p.OCIDigest
		} else if s.ChartVersion == hr.Status.LastAttemptedRevision {
			s.OCIDigest = hr.Status.LastAttemptedRevisionDigest
		}
		hr.Status.History = append(hr.Status.History, s)
	}
	return nil
}

// snapshot is rel as status.history shows it. The digests of the record
// and of its values are those of previous, the same revision as status
// showed it, when nothing a change of the record shows in moved: digesting
// whole releases at every reconcile would cost more than the release.
func snapshot(rel *releasev1.Release, previous syncv2.Snapshot) syncv2.Snapshot {
	s := syncv2.Snapshot{Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version}
	if rel.Info != nil {
		s.Status = string(rel.Info.Status)
		s.FirstDeployed, s.LastDeployed = metav1.NewTime(rel.Info.FirstDeployed), metav1.NewTime(rel.Info.LastDeployed)
		if !rel.Info.Deleted.IsZero() {
			deleted := metav1.NewTime(rel.Info.Deleted)
			s.Deleted = &deleted
		}
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		s.ChartName, s.ChartVersion, s.AppVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, rel.Chart.Metadata.AppVersion
	}
	for _, h := range rel.Hooks {
		if isTestHook(h) && h.LastRun.Phase != "" {
			if s.TestHooks == nil {
				s.TestHooks = map[string]string{}
			}
			s.TestHooks[h.Name] = string(h.LastRun.Phase)
		}
	}
	if unchanged(s, previous) {
		s.Digest, s.ConfigDigest = previous.Digest, previous.ConfigDigest
	} else {
		s.Digest, s.ConfigDigest = jsonDigest(rel), valuesDigest(rel.Config)
	}
	return s
}

// unchanged tells whether previous shows the same record as s: the same
// revision, status, deployment and deletion times (to the second, as the
// API server keeps them) and test runs.
func unchanged(s, previous syncv2.Snapshot) bool {
	sameTime := func(a, b *metav1.Time) bool {
		return (a == nil) == (b == nil) && (a == nil || a.Unix() == b.Unix())
	}
	return previous.Digest != "" && previous.Name == s.Name && previous.Namespace == s.Namespace &&
		previous.Version == s.Version && previous.Status == s.Status && previous.ChartVersion == s.ChartVersion &&
		previous.LastDeployed.Unix() == s.LastDeployed.Unix() && sameTime(previous.Deleted, s.Deleted) &&
		maps.Equal(previous.TestHooks, s.TestHooks)
}

// postRenderersLabel, on a release record, holds the digest of the
// post-renderers and commonMetadata it was rendered with, cut to fit a
// label value. The decision reads it from Helm's storage, live, rather
// than from the HelmRelease's status, which the cache may not have caught
// up with right after a release: that would upgrade it once more.
const postRenderersLabel = "sync.sluice.dev/post-renderers"

// releaseLabels are the labels a release record is stored with.
func releaseLabels(o observation) map[string]string {
	return map[string]string{postRenderersLabel: labelDigest(o.PostRenderersDigest)}
}

// labelDigest is a digest's hex cut to 40 characters, a valid label value.
func labelDigest(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return hex[:min(len(hex), 40)]
}

// observe turns Helm's storage into the decision's input.
func observe(hr *syncv2.HelmRelease, rel *releasev1.Release, history []*releasev1.Release, revision, digest string) observation {
	o := observation{
		ChartRevision: revision, ValuesDigest: digest,
		InstallFailures: hr.Status.InstallFailures, UpgradeFailures: hr.Status.UpgradeFailures,
		Install: installRemediation(hr), Upgrade: upgradeRemediation(hr),
		TestEnabled: hr.Spec.Test != nil && hr.Spec.Test.Enable, IgnoreTests: ignoreTests(hr),
		PostRenderersDigest: postRenderersDigest(hr), ObservedPostRenderersDigest: hr.Status.ObservedPostRenderersDigest,
		InPlaceChartNameChange: hr.Spec.Upgrade != nil && hr.Spec.Upgrade.ChartNameChangeStrategy == syncv2.ChartNameChangeInPlaceUpdate,
		TargetChange:           targetChange(hr),
	}
	var filters []syncv2.TestFilter
	if hr.Spec.Test != nil {
		filters = hr.Spec.Test.Filters
	}
	if rel == nil {
		return o
	}
	// A record made by this version says what it was rendered with; an
	// older one leaves the status to say it.
	if got, ok := rel.Labels[postRenderersLabel]; ok {
		switch {
		case got == labelDigest(o.PostRenderersDigest):
			o.ObservedPostRenderersDigest = o.PostRenderersDigest
		case got == "":
			// Made without post-renderers or commonMetadata.
			o.ObservedPostRenderersDigest = ""
		default:
			o.ObservedPostRenderersDigest = "sha256:" + got
		}
	}
	state := releaseState{Exists: true, Status: string(rel.Info.Status), Pending: rel.Info.Status.IsPending(), ValuesDigest: valuesDigest(rel.Config), Tested: true, LastAction: stepUpgrade.String()}
	if rel.Version == 1 {
		state.LastAction = stepInstall.String()
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		state.ChartName, state.ChartRevision = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version
	}
	for _, h := range rel.Hooks {
		// Tests that spec.test.filters leave out never run: they do not
		// make the release untested.
		if !isTestHook(h) || !testSelected(filters, h.Name) {
			continue
		}
		switch h.LastRun.Phase {
		case "":
			state.Tested = false
		case releasev1.HookPhaseFailed:
			state.TestsFailed = true
		}
	}
	for _, h := range history {
		if h.Info != nil && (h.Info.Status == common.StatusDeployed || h.Info.Status == common.StatusSuperseded) {
			state.EverDeployed = true
		}
	}
	o.Release = state
	return o
}

// defaultMaxHistory is spec.maxHistory when unset, and how many
// revisions status.history shows when it is 0 (Helm then keeps them
// all), as Flux's status keeps at most 5.
const defaultMaxHistory = 5

// maxHistory is how many revisions Helm keeps: spec.maxHistory, 0 for
// all of them, as Helm reads it.
func maxHistory(hr *syncv2.HelmRelease) int {
	if hr.Spec.MaxHistory != nil {
		return max(*hr.Spec.MaxHistory, 0)
	}
	return defaultMaxHistory
}

// statusHistory is how many revisions status.history shows: as many as
// Helm keeps, and never all of an unlimited history.
func statusHistory(hr *syncv2.HelmRelease) int {
	if n := maxHistory(hr); n > 0 {
		return n
	}
	return defaultMaxHistory
}
