package helmrelease

import (
	"fmt"

	"helm.sh/helm/v4/pkg/action"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// test runs the Helm tests; a failure counts against the action that
// made the release, unless failures are ignored. A failure that
// RetryOnFailure is to try again ends the reconcile (stop is true).
func (r *Reconciler) test(hr *syncv2.HelmRelease, run *runner, obs observation) (v verdict, stop bool) {
	err := run.test(r.timeout(hr, hr.Spec.Test.Timeout), testFilters(hr.Spec.Test.Filters))
	cond := metav1.Condition{Type: syncv2.TestSuccessCondition, Status: metav1.ConditionTrue, Reason: syncv2.ReasonTestSucceeded, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("Helm test succeeded for release %s/%s", run.namespace, run.name)}
	if err == nil {
		r.Events.Eventf(hr, nil, corev1.EventTypeNormal, syncv2.ReasonTestSucceeded, "Test", "%s", cond.Message)
		meta.SetStatusCondition(&hr.Status.Conditions, cond)
		return verdict{}, false
	}
	cond.Status, cond.Reason = metav1.ConditionFalse, syncv2.ReasonTestFailed
	cond.Message = fmt.Sprintf("Helm test failed for release %s/%s: %v", run.namespace, run.name, err)
	r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonTestFailed, "Test", "%s", cond.Message)
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	hr.Status.Failures++
	if ignoreTests(hr) {
		return verdict{}, false
	}
	if hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() {
		hr.Status.UpgradeFailures++
	} else {
		hr.Status.InstallFailures++
	}
	return retryLater(obs, stepTest, cond)
}

// testFilters turns spec.test.filters into Helm's: a name runs only the
// tests so named, !name skips one.
func testFilters(filters []syncv2.TestFilter) map[string][]string {
	out := map[string][]string{}
	for _, f := range filters {
		key := action.IncludeNameFilter
		if f.Exclude {
			key = action.ExcludeNameFilter
		}
		out[key] = append(out[key], f.Name)
	}
	return out
}

func isTestHook(h *releasev1.Hook) bool {
	for _, e := range h.Events {
		if e == releasev1.HookTest {
			return true
		}
	}
	return false
}

// ignoreTests says whether failed tests are left alone: the
// remediation's ignoreTestFailures of the action that made the release
// when set, else test.ignoreFailures, as in Flux.
func ignoreTests(hr *syncv2.HelmRelease) bool {
	ignore := hr.Spec.Test != nil && hr.Spec.Test.IgnoreFailures
	var own *bool
	switch {
	case hr.Status.LastAttemptedReleaseAction == stepUpgrade.String() && hr.Spec.Upgrade != nil && hr.Spec.Upgrade.Remediation != nil:
		own = hr.Spec.Upgrade.Remediation.IgnoreTestFailures
	case hr.Status.LastAttemptedReleaseAction != stepUpgrade.String() && hr.Spec.Install != nil && hr.Spec.Install.Remediation != nil:
		own = hr.Spec.Install.Remediation.IgnoreTestFailures
	}
	if own != nil {
		return *own
	}
	return ignore
}

// testSelected tells whether filters let the test named run, as Helm
// applies them: an excluded name never runs, and when any name is
// included only those run.
func testSelected(filters []syncv2.TestFilter, name string) bool {
	included, includes := false, false
	for _, f := range filters {
		switch {
		case f.Exclude && f.Name == name:
			return false
		case !f.Exclude:
			includes = true
			included = included || f.Name == name
		}
	}
	return !includes || included
}
