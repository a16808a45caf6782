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
		hr.Status.Failures++
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

// installRemediation is spec.install's strategy and remediation, with
// Flux's defaults: no retries, and the last failure left in place.
func installRemediation(hr *syncv2.HelmRelease) remediation {
	// An install is only ever remediated by uninstalling.
	out := remediation{strategy: syncv2.RemediationUninstall}
	if in := hr.Spec.Install; in != nil {
		if rem := in.Remediation; rem != nil {
			out.retries = rem.Retries
			out.remediateLast = rem.RemediateLastFailure != nil && *rem.RemediateLastFailure
		}
		withStrategy(&out, in.Strategy)
	}
	return out
}

// upgradeRemediation is spec.upgrade's strategy and remediation, with
// Flux's defaults: rollback, and the last failure remediated when there
// are retries.
func upgradeRemediation(hr *syncv2.HelmRelease) remediation {
	out := remediation{strategy: syncv2.RemediationRollback}
	if up := hr.Spec.Upgrade; up != nil {
		if rem := up.Remediation; rem != nil {
			out.retries = rem.Retries
			out.remediateLast = rem.Retries > 0
			if rem.RemediateLastFailure != nil {
				out.remediateLast = *rem.RemediateLastFailure
			}
			if rem.Strategy != "" {
				out.strategy = rem.Strategy
			}
		}
		withStrategy(&out, up.Strategy)
	}
	return out
}

// withStrategy applies install.strategy or upgrade.strategy.
func withStrategy(r *remediation, s *syncv2.ActionStrategy) {
	if s == nil || s.Name != syncv2.StrategyRetryOnFailure {
		return
	}
	r.retry, r.retryInterval = true, defaultRetryInterval
	if s.RetryInterval != nil {
		r.retryInterval = s.RetryInterval.Duration
	}
}
