package helmrelease

import (
	"fmt"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// What of a release target can move, as Flux's ReleaseTargetChanged
// names it.
const (
	targetStorageNamespace = "storage namespace"
	targetReleaseNamespace = "release namespace"
	targetReleaseName      = "release name"
)

// targetChange names what moved of the release target since the status
// recorded the latest revision (status.history[0] and
// status.storageNamespace): the storage namespace, the release namespace
// or the release name. It is "" when nothing did, or nothing was
// recorded. A changed chart name is read from Helm's record instead
// (observation.chartRenamed), as upgrade.chartNameChangeStrategy decides
// about it.
func targetChange(hr *syncv2.HelmRelease) string {
	if hr.Status.StorageNamespace == "" || len(hr.Status.History) == 0 {
		return ""
	}
	cur := hr.Status.History[0]
	release, namespace, storage := names(hr)
	switch {
	case storage != hr.Status.StorageNamespace:
		return targetStorageNamespace
	case namespace != cur.Namespace:
		return targetReleaseNamespace
	case release != cur.Name:
		return targetReleaseName
	}
	return ""
}

// reinstall uninstalls the release the HelmRelease no longer names, as
// Flux does: the release of the old target when change names what moved
// of it (read with a runner for the old names and namespaces), or else
// the release whose chart has another name now, under
// upgrade.chartNameChangeStrategy Reinstall (the default), since a chart
// of another name is another application whose objects an upgrade would
// have to adopt. The next step installs the chart afresh where the
// HelmRelease says, with the failure counters and the history started
// again, as Flux clears them. A failed uninstall ends the reconcile
// (stop is true).
func (r *Reconciler) reinstall(hr *syncv2.HelmRelease, run *runner, rel *releasev1.Release, ch *chart.Chart, change string) (v verdict, stop bool) {
	why := fmt.Sprintf("the chart is %s now, and upgrade.chartNameChangeStrategy is Reinstall", ch.Name())
	if change != "" {
		cur := hr.Status.History[0]
		release, namespace, storage := names(hr)
		why = fmt.Sprintf("the %s changed: the release is %s/%s, stored in %s, now", change, namespace, release, storage)
		old, err := run.at(cur.Name, cur.Namespace, hr.Status.StorageNamespace)
		if err == nil {
			run = old
			rel, err = old.last()
		}
		if err != nil {
			return r.uninstallFailed(hr, fmt.Sprintf("Helm uninstall failed for release %s/%s in %s, as %s: %v", cur.Namespace, cur.Name, hr.Status.StorageNamespace, why, err)), true
		}
	}
	if rel != nil && rel.Info.Status != common.StatusUninstalled {
		from := rel.Chart.Name() + "@" + rel.Chart.Metadata.Version
		if err := run.uninstall(r.timeout(hr, uninstallTimeout(hr)), uninstallOf(hr)); err != nil {
			return r.uninstallFailed(hr, fmt.Sprintf("Helm uninstall failed for release %s/%s.v%d with chart %s, as %s: %v", run.namespace, run.name, rel.Version, from, why, err)), true
		}
		cond := metav1.Condition{Type: syncv2.ReleasedCondition, Status: metav1.ConditionFalse, Reason: syncv2.ReasonUninstallSucceeded, ObservedGeneration: hr.Generation,
			Message: fmt.Sprintf("Helm uninstall succeeded for release %s/%s.v%d with chart %s: %s", run.namespace, run.name, rel.Version, from, why)}
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, cond.Reason, "Uninstall", "%s", cond.Message)
		meta.SetStatusCondition(&hr.Status.Conditions, cond)
	}
	meta.RemoveStatusCondition(&hr.Status.Conditions, syncv2.TestSuccessCondition)
	hr.Status.Failures, hr.Status.InstallFailures, hr.Status.UpgradeFailures = 0, 0, 0
	hr.Status.History, hr.Status.StorageNamespace = nil, ""
	return verdict{}, false
}

// uninstallFailed records a failed uninstall of the release a
// HelmRelease no longer names: Released=False, a Warning Event, and a
// Ready that says so.
func (r *Reconciler) uninstallFailed(hr *syncv2.HelmRelease, msg string) verdict {
	hr.Status.Failures++
	cond := metav1.Condition{Type: syncv2.ReleasedCondition, Status: metav1.ConditionFalse, Reason: syncv2.ReasonUninstallFailed, ObservedGeneration: hr.Generation, Message: msg}
	r.Events.Eventf(hr, nil, corev1.EventTypeWarning, cond.Reason, "Uninstall", "%s", msg)
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: cond.Reason, Message: msg}}
}
