package helmrelease

import (
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestTheWaitTimeoutAndHistorySettingsReachHelmsActions checks that
// upgrade.disableWait, upgrade.disableWaitForJobs and rollback.disableWait
// set Helm's wait, that each action's timeout is its own, else
// spec.timeout, else five minutes, and that Helm keeps five revisions by
// default, all with maxHistory 0, which status.history still bounds.
func TestTheWaitTimeoutAndHistorySettingsReachHelmsActions(t *testing.T) {
	r := &runner{cfg: action.NewConfiguration(), name: "web", namespace: "apps"}
	upgrade := func(o actionOptions) *action.Upgrade { return r.newUpgrade(o) }
	rollback := func(rb syncv2.Rollback) *action.Rollback { return r.newRollback(time.Minute, rb, 5, "") }
	noJobs := syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableWaitForJobs: true}}
	rec := &Reconciler{}
	minute, hour := &metav1.Duration{Duration: time.Minute}, &metav1.Duration{Duration: time.Hour}
	withSpecTimeout := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{Timeout: hour}}
	withMaxHistory := func(n int) *syncv2.HelmRelease {
		return &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{MaxHistory: &n}}
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"an upgrade waits for its objects and Jobs by default", upgrade(actionOptions{}).WaitStrategy == kube.StatusWatcherStrategy && upgrade(actionOptions{}).WaitForJobs},
		{"upgrade.disableWait waits for hooks only", upgrade(actionOptions{disableWait: true}).WaitStrategy == kube.HookOnlyStrategy && !upgrade(actionOptions{disableWait: true}).WaitForJobs},
		{"upgrade.disableWaitForJobs waits for the objects but not for Jobs", upgrade(actionOptions{upgrade: noJobs}).WaitStrategy == kube.StatusWatcherStrategy && !upgrade(actionOptions{upgrade: noJobs}).WaitForJobs},
		{"an upgrade's timeout reaches Helm", upgrade(actionOptions{timeout: time.Minute}).Timeout == time.Minute},
		{"a rollback waits by default", rollback(syncv2.Rollback{}).WaitStrategy == kube.StatusWatcherStrategy},
		{"rollback.disableWait waits for hooks only", rollback(syncv2.Rollback{DisableWait: true}).WaitStrategy == kube.HookOnlyStrategy && !rollback(syncv2.Rollback{DisableWait: true}).WaitForJobs},
		{"a rollback's timeout reaches Helm", rollback(syncv2.Rollback{}).Timeout == time.Minute},
		{"an action's own timeout wins over spec.timeout", rec.timeout(withSpecTimeout, minute) == time.Minute},
		{"spec.timeout bounds an action without its own", rec.timeout(withSpecTimeout, nil) == time.Hour},
		{"five minutes bound an action when neither is set", rec.timeout(&syncv2.HelmRelease{}, nil) == 5*time.Minute},
		{"Helm keeps five revisions unless maxHistory says otherwise", maxHistory(&syncv2.HelmRelease{}) == 5 && upgrade(actionOptions{maxHistory: 5}).MaxHistory == 5 && rollback(syncv2.Rollback{}).MaxHistory == 5},
		{"status.history shows as many revisions as Helm keeps", statusHistory(withMaxHistory(3)) == 3 && maxHistory(withMaxHistory(3)) == 3 && statusHistory(&syncv2.HelmRelease{}) == 5},
		{"maxHistory 0 keeps every revision in Helm, and status.history shows the newest five", maxHistory(withMaxHistory(0)) == 0 && statusHistory(withMaxHistory(0)) == 5},
		{"a negative maxHistory, which the CRD refuses, neither panics nor caps", maxHistory(withMaxHistory(-1)) == 0 && statusHistory(withMaxHistory(-1)) == 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("the Helm action is not configured so")
			}
		})
	}
}

func TestARemoteReleaseWaitingOnItsCanariesLooksAgainSoon(t *testing.T) {
	remote := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{KubeConfig: &syncv1.KubeConfigReference{}}}
	if got := progressingPoll(remote); got <= 0 || got > 5*time.Second {
		t.Errorf("a release on a remote cluster, whose Canaries are not watched, looks again after %s, want at most 5s", got)
	}
	if got := progressingPoll(&syncv2.HelmRelease{}); got != 0 {
		t.Errorf("a release here, woken by its Canaries' changes, looks again after %s, want at its interval", got)
	}
}
