package helmrelease

import (
	"context"
	"errors"
	"fmt"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// release installs or upgrades, counting failures.
func (r *Reconciler) release(ctx context.Context, hr *syncv2.HelmRelease, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, digest string, post *postRenderer) {
	hr.Status.LastAttemptedRevision, hr.Status.LastAttemptedValuesChecksum = ch.Metadata.Version, digest
	hr.Status.LastAttemptedReleaseAction = s.String()
	opts := actionOptions{maxHistory: maxHistory(hr), post: post, timeout: r.timeout(hr, nil)}
	succeeded, failed := syncv2.ReasonInstallSucceeded, syncv2.ReasonInstallFailed
	if s == stepInstall {
		if in := hr.Spec.Install; in != nil {
			opts.timeout, opts.disableWait, opts.createNS = r.timeout(hr, in.Timeout), in.DisableWait, in.CreateNamespace
			opts.install = *in
		}
	} else {
		succeeded, failed = syncv2.ReasonUpgradeSucceeded, syncv2.ReasonUpgradeFailed
		if up := hr.Spec.Upgrade; up != nil {
			opts.timeout, opts.disableWait = r.timeout(hr, up.Timeout), up.DisableWait
			opts.upgrade = *up
		}
	}
	err := r.runAction(ctx, run, s, last, ch, values, opts)
	released := metav1.Condition{Type: syncv2.ReleasedCondition, Status: metav1.ConditionTrue, Reason: succeeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm %s succeeded for release %s/%s with chart %s@%s", s, run.namespace, run.name, ch.Name(), ch.Metadata.Version)}
	if err != nil {
		if s == stepInstall {
			hr.Status.InstallFailures++
		} else {
			hr.Status.UpgradeFailures++
		}
		released.Status, released.Reason = metav1.ConditionFalse, failed
		released.Message = fmt.Sprintf("Helm %s failed for release %s/%s with chart %s@%s: %v", s, run.namespace, run.name, ch.Name(), ch.Metadata.Version, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, failed, "Release", "%s", released.Message)
	} else {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, succeeded, "Release", "%s", released.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, released)
	meta.RemoveStatusCondition(&hr.Status.Conditions, syncv2.TestSuccessCondition)
}

// runAction installs or upgrades. When Canaries release some of the
// workloads, Helm waits for hooks only and the rest is waited for here,
// leaving the Canaries' workloads to the canary gate.
func (r *Reconciler) runAction(ctx context.Context, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, opts actionOptions) error {
	guard := r.guard()
	off, err := handsOff(ctx, r.Client, guard, ch, last, run.namespace)
	if err != nil {
		return err
	}
	wait := !opts.disableWait
	opts.disableWait = opts.disableWait || off
	if s == stepInstall {
		err = run.install(ctx, ch, values, opts)
	} else {
		err = run.upgrade(ctx, ch, values, opts)
	}
	if err != nil || !off || !wait {
		return err
	}
	rel, err := run.last()
	if err != nil || rel == nil {
		return err
	}
	if err := waitOutsideCanaries(ctx, r.Client, r.Health, guard, rel, run.namespace, opts.timeout); err != nil {
		// As Helm's own wait would, the release is marked failed.
		return errors.Join(err, run.markFailed(rel, err))
	}
	return nil
}
