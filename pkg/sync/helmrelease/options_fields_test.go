package helmrelease

import (
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestTheWaitTimeoutAndHistorySettingsReachHelmsActions checks that
// upgrade.disableWait, upgrade.disableWaitForJobs and rollback.disableWait
// set Helm's wait, that each action's timeout is its own, else
// spec.timeout, else five minutes, and that Helm keeps five revisions by
// default.
func TestTheWaitTimeoutAndHistorySettingsReachHelmsActions(t *testing.T) {
	r := &runner{cfg: action.NewConfiguration(), name: "web", namespace: "apps"}
	upgrade := func(o actionOptions) *action.Upgrade { return r.newUpgrade(o) }
	rollback := func(rb syncv2.Rollback) *action.Rollback { return r.newRollback(time.Minute, rb, 5, "") }
	noJobs := syncv2.Upgrade{ActionOptions: syncv2.ActionOptions{DisableWaitForJobs: true}}
	rec := &Reconciler{}
	minute, hour := &metav1.Duration{Duration: time.Minute}, &metav1.Duration{Duration: time.Hour}
	withSpecTimeout := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{Timeout: hour}}
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("the Helm action is not configured so")
			}
		})
	}
}
