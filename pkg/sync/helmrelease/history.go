package helmrelease

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// recordHistory writes the release's revisions into status, newest first.
func (r *Reconciler) recordHistory(hr *syncv2.HelmRelease, run *runner) {
	history, err := run.history()
	if err != nil {
		return
	}
	_, _, storage := names(hr)
	hr.Status.StorageNamespace = storage
	// Helm keeps no OCI digest: each revision keeps the one it was
	// recorded with, and a new one gets the digest last attempted.
	ociDigests := map[int]string{}
	for _, s := range hr.Status.History {
		ociDigests[s.Version] = s.OCIDigest
	}
	hr.Status.History = nil
	for _, rel := range history[:min(len(history), maxHistory(hr))] {
		s := snapshot(rel)
		if d, ok := ociDigests[rel.Version]; ok {
			s.OCIDigest = d
		} else if s.ChartVersion == hr.Status.LastAttemptedRevision {
			s.OCIDigest = hr.Status.LastAttemptedRevisionDigest
		}
		hr.Status.History = append(hr.Status.History, s)
	}
}

func snapshot(rel *releasev1.Release) syncv2.Snapshot {
	s := syncv2.Snapshot{Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version, ConfigDigest: valuesDigest(rel.Config), Digest: releaseDigest(rel)}
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
	return s
}

// releaseDigest is sha256:<hex> of the release record's JSON, as Helm
// stores it.
func releaseDigest(rel *releasev1.Release) string {
	data, err := json.Marshal(rel)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
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
		o.ObservedPostRenderersDigest = o.PostRenderersDigest
		if got != labelDigest(o.PostRenderersDigest) {
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

func maxHistory(hr *syncv2.HelmRelease) int {
	if hr.Spec.MaxHistory != nil {
		return *hr.Spec.MaxHistory
	}
	return 5
}
