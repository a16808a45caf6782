package helmrelease

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// remediate rolls back or uninstalls a failed release and asks to be
// retried soon.
func (r *Reconciler) remediate(hr *syncv2.HelmRelease, run *runner, s step) verdict {
	var err error
	succeeded, failed := syncv2.ReasonRollbackSucceeded, syncv2.ReasonRollbackFailed
	if s == stepRollback {
		var rb syncv2.Rollback
		if hr.Spec.Rollback != nil {
			rb = *hr.Spec.Rollback
		}
		err = run.rollback(r.timeout(hr, rb.Timeout), rb, maxHistory(hr))
	} else {
		succeeded, failed = syncv2.ReasonUninstallSucceeded, syncv2.ReasonUninstallFailed
		err = run.uninstall(r.timeout(hr, uninstallTimeout(hr)), uninstallOf(hr))
	}
	cond := metav1.Condition{Type: syncv2.RemediatedCondition, Status: metav1.ConditionTrue, Reason: succeeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm %s succeeded for release %s/%s", s, run.namespace, run.name)}
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, failed
		cond.Message = fmt.Sprintf("Helm %s failed for release %s/%s: %v", s, run.namespace, run.name, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, failed, "Remediate", "%s", cond.Message)
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, succeeded, "Remediate", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	reason, msg := failed, cond.Message
	if released := meta.FindStatusCondition(hr.Status.Conditions, syncv2.ReleasedCondition); released != nil && released.Status == metav1.ConditionFalse {
		reason, msg = released.Reason, released.Message
	}
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}, after: remediationDelay}
}

func installRemediation(hr *syncv2.HelmRelease) remediation {
	if hr.Spec.Install == nil || hr.Spec.Install.Remediation == nil {
		return remediation{}
	}
	return resolve(hr.Spec.Install.Remediation)
}

func upgradeRemediation(hr *syncv2.HelmRelease) remediation {
	if hr.Spec.Upgrade == nil || hr.Spec.Upgrade.Remediation == nil {
		return remediation{strategy: syncv2.RemediationRollback}
	}
	return resolve(hr.Spec.Upgrade.Remediation)
}

func resolve(rem *syncv2.Remediation) remediation {
	out := remediation{retries: rem.Retries, strategy: rem.Strategy, ignoreTests: rem.IgnoreTestFailures, remediateLast: rem.Retries > 0}
	if out.strategy == "" {
		out.strategy = syncv2.RemediationRollback
	}
	if rem.RemediateLastFailure != nil {
		out.remediateLast = *rem.RemediateLastFailure
	}
	return out
}
