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

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/source"
)

// release installs or upgrades, counting failures. A failure that
// RetryOnFailure is to try again ends the reconcile, with a verdict that
// comes back after the strategy's retryInterval (stop is true).
func (r *Reconciler) release(ctx context.Context, hr *syncv2.HelmRelease, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, post *postRenderer, obs observation) (v verdict, stop bool) {
	hr.Status.LastAttemptedReleaseAction = s.String()
	opts := actionOptions{maxHistory: maxHistory(hr), post: post, timeout: r.timeout(hr, nil), postRenderStrategy: hr.Spec.PostRenderStrategy, labels: releaseLabels(obs)}
	if last != nil {
		opts.lastApplyMethod = last.ApplyMethod
	}
	// The reconcile refused the spec already if an expression did not
	// compile. As in Flux, the expressions judge only the poller's wait,
	// not Helm 3's legacy one.
	if !run.legacyWait {
		opts.health, _ = r.healthExprs(hr)
	}
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
		hr.Status.Failures++
		if s == stepInstall {
			hr.Status.InstallFailures++
		} else {
			hr.Status.UpgradeFailures++
		}
		released.Status, released.Reason = metav1.ConditionFalse, failed
		released.Message = fmt.Sprintf("Helm %s failed for release %s/%s with chart %s@%s: %v", s, run.namespace, run.name, ch.Name(), ch.Metadata.Version, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, failed, "Release", "%s", released.Message)
	} else {
		// What the release was rendered with, so that a change of the
		// post-renderers alone is an upgrade.
		hr.Status.ObservedPostRenderersDigest = obs.PostRenderersDigest
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, succeeded, "Release", "%s", released.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, released)
	meta.RemoveStatusCondition(&hr.Status.Conditions, syncv2.TestSuccessCondition)
	if err == nil {
		return verdict{}, false
	}
	return retryLater(obs, s, released)
}

// retryLater is the verdict of a failed step that RetryOnFailure leaves
// in place: Ready says why it failed (as Flux does since
// helm-controller#1338), and the HelmRelease comes back after the
// retryInterval.
func retryLater(obs observation, s step, failure metav1.Condition) (verdict, bool) {
	after, ok := retryAfter(obs, s)
	if !ok {
		return verdict{}, false
	}
	msg := fmt.Sprintf("%s; RetryOnFailure retries in %s", failure.Message, after)
	return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: failure.Reason, Message: msg}, after: after}, true
}

// beginAttempt prepares the status for the attempt at chart revision
// with values of digest, as Flux does before it releases: a handled
// reconcile.fluxcd.io/resetAt request, a new spec, chart or values reset
// the failure counters, and the attempt is recorded. It returns whether
// a reconcile.fluxcd.io/forceAt request is to be acted on.
func beginAttempt(hr *syncv2.HelmRelease, stored *source.StoredChart, digest string) (force bool) {
	st := &hr.Status
	annotations := hr.GetAnnotations()
	reset := handleRequest(annotations, syncv2.ResetRequestAnnotation, sourcev1.ReconcileRequestAnnotation, &st.LastHandledResetAt, st.LastHandledReconcileAt)
	force = handleRequest(annotations, syncv2.ForceRequestAnnotation, sourcev1.ReconcileRequestAnnotation, &st.LastHandledForceAt, st.LastHandledReconcileAt)
	last := attempt{Generation: st.LastAttemptedGeneration, ChartRevision: st.LastAttemptedRevision, ConfigDigest: st.LastAttemptedConfigDigest}
	now := attempt{Generation: hr.Generation, ChartRevision: stored.Revision, ConfigDigest: digest}
	if _, ok := resetFailures(last, now, reset); ok {
		st.Failures, st.InstallFailures, st.UpgradeFailures = 0, 0, 0
	}
	st.LastAttemptedGeneration, st.LastAttemptedRevision, st.LastAttemptedRevisionDigest = now.Generation, now.ChartRevision, stored.OCIDigest
	// lastAttemptedValuesChecksum is deprecated for the config digest,
	// and Flux clears it.
	st.LastAttemptedConfigDigest, st.LastAttemptedValuesChecksum = digest, ""
	return force
}

// runAction installs or upgrades. When Canaries release some of the
// workloads, Helm waits for hooks only and the rest is waited for here,
// leaving the Canaries' workloads to the canary gate.
func (r *Reconciler) runAction(ctx context.Context, run *runner, s step, last *releasev1.Release, ch *chart.Chart, values map[string]any, opts actionOptions) error {
	guard := run.cluster.guard
	off, err := handsOff(ctx, run.cluster.live, guard, ch, last, run.namespace)
	if err != nil {
		return err
	}
	wait := !opts.disableWait
	opts.disableWait = opts.disableWait || off
	opts.wait = waitOptions(ctx, run, opts.health)
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
	if err := waitOutsideCanaries(ctx, run.cluster.live, run.cluster.health.WithExprs(opts.health), guard, rel, run.namespace, opts.timeout); err != nil {
		// As Helm's own wait would, the release is marked failed.
		return errors.Join(err, run.markFailed(rel, err))
	}
	return nil
}
