package helmrelease

import (
	"fmt"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// reinstall uninstalls a release whose chart has another name now, as
// Flux does under upgrade.chartNameChangeStrategy Reinstall (the
// default): a chart of another name is another application, whose
// objects an upgrade would have to adopt. The next step installs the
// chart of the new name afresh, with the failure counters and the
// history started again, as Flux clears them. A failed uninstall ends
// the reconcile (stop is true).
func (r *Reconciler) reinstall(hr *syncv2.HelmRelease, run *runner, rel *releasev1.Release, ch *chart.Chart) (v verdict, stop bool) {
	from := rel.Chart.Name() + "@" + rel.Chart.Metadata.Version
	err := run.uninstall(r.timeout(hr, uninstallTimeout(hr)), uninstallOf(hr))
	cond := metav1.Condition{Type: syncv2.ReleasedCondition, Status: metav1.ConditionFalse, Reason: syncv2.ReasonUninstallSucceeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm uninstall succeeded for release %s/%s.v%d with chart %s: the chart is %s now, and upgrade.chartNameChangeStrategy is Reinstall", run.namespace, run.name, rel.Version, from, ch.Name())}
	if err != nil {
		hr.Status.Failures++
		cond.Reason = syncv2.ReasonUninstallFailed
		cond.Message = fmt.Sprintf("Helm uninstall failed for release %s/%s.v%d with chart %s, to install chart %s (upgrade.chartNameChangeStrategy Reinstall): %v", run.namespace, run.name, rel.Version, from, ch.Name(), err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, cond.Reason, "Uninstall", "%s", cond.Message)
		meta.SetStatusCondition(&hr.Status.Conditions, cond)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: cond.Reason, Message: cond.Message}}, true
	}
	r.Events.Eventf(hr, nil, corev1.EventTypeNormal, cond.Reason, "Uninstall", "%s", cond.Message)
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	meta.RemoveStatusCondition(&hr.Status.Conditions, syncv2.TestSuccessCondition)
	hr.Status.Failures, hr.Status.InstallFailures, hr.Status.UpgradeFailures = 0, 0, 0
	hr.Status.History = nil
	return verdict{}, false
}
