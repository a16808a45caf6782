package helmrelease

import (
	"fmt"

	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// test runs the Helm tests; a failure counts against the action that
// made the release, unless failures are ignored.
func (r *Reconciler) test(hr *syncv2.HelmRelease, run *runner) {
	err := run.test(r.timeout(hr, hr.Spec.Test.Timeout))
	cond := metav1.Condition{Type: syncv2.TestSuccessCondition, Status: metav1.ConditionTrue, Reason: syncv2.ReasonTestSucceeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm test succeeded for release %s/%s", run.namespace, run.name)}
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, syncv2.ReasonTestFailed
		cond.Message = fmt.Sprintf("Helm test failed for release %s/%s: %v", run.namespace, run.name, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonTestFailed, "Test", "%s", cond.Message)
		if !ignoreTests(hr) {
			if hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() {
				hr.Status.UpgradeFailures++
			} else {
				hr.Status.InstallFailures++
			}
		}
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, syncv2.ReasonTestSucceeded, "Test", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
}

func isTestHook(h *releasev1.Hook) bool {
	for _, e := range h.Events {
		if e == releasev1.HookTest {
			return true
		}
	}
	return false
}

func ignoreTests(hr *syncv2.HelmRelease) bool {
	if hr.Spec.Test != nil && hr.Spec.Test.IgnoreFailures {
		return true
	}
	last := installRemediation(hr)
	if hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() {
		last = upgradeRemediation(hr)
	}
	return last.ignoreTests
}
