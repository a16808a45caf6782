package governance

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/traffic"
)

// idleWithNewRevision is an initialized blue/green Canary whose target
// just moved to revision v2.
func idleWithNewRevision(now time.Time) plan.Input {
	return plan.Input{
		Now:        now,
		Generation: 1,
		Spec: plan.Spec{
			TargetName: "podinfo", Strategy: plan.BlueGreen, Interval: time.Minute, Threshold: 1, Iterations: 2,
			MaxWeight: 100, ProgressDeadline: 10 * time.Minute, Hooks: map[sluicev1beta1.HookType]int{},
		},
		Status: sluicev1beta1.CanaryStatus{
			Phase: sluicev1beta1.CanaryPhaseSucceeded, LastAppliedSpec: "v1", LastTrackedRevision: "v1", LastPromotedSpec: "v1",
		},
		Target:  plan.Target{Workload: plan.Workload{Exists: true, Revision: "v2", Ready: plan.Readiness{Ready: true}}, PodTemplateHash: "v2", ScaledToZero: true},
		Primary: plan.Workload{Exists: true, Revision: "v1", Ready: plan.Readiness{Ready: true}},
		Routes:  traffic.PrimaryOnly(),
	}
}

// TestAFreezeWindowHoldsANewRevisionAndReleasesItWhenItCloses runs the
// state machine on a clock that moves through a Friday evening freeze:
// the policy is read as the operator reads it at each look, and each look
// starts from the status the one before wrote.
func TestAFreezeWindowHoldsANewRevisionAndReleasesItWhenItCloses(t *testing.T) {
	rp := policy("friday-evening", windows(win("0 18 * * 5", 2*time.Hour, "Europe/Paris", "weekend traffic")))
	p := Compile(rp)
	// 18:30 in Paris on Friday 2025-01-03 is 17:30 UTC.
	opens := time.Date(2025, 1, 3, 17, 0, 0, 0, time.UTC)
	closes := opens.Add(2 * time.Hour)
	steps := []struct {
		name    string
		now     time.Time
		phase   sluicev1beta1.CanaryPhase
		reason  string
		requeue time.Duration
	}{
		{"a revision arriving half an hour into the window waits", opens.Add(30 * time.Minute), sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.ReasonFrozen, 90 * time.Minute},
		{"it still waits a second before the window closes", closes.Add(-time.Second), sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.ReasonFrozen, time.Second},
		{"it starts at the second the window closes, where the operator was told to look", closes, sluicev1beta1.CanaryPhaseProgressing, string(sluicev1beta1.CanaryPhaseProgressing), time.Minute},
	}
	var status sluicev1beta1.CanaryStatus
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			in := idleWithNewRevision(s.now)
			if i > 0 {
				in.Status = status
			}
			in.Release = GateOf([]*Policy{p}, s.now)
			out := plan.Step(in)
			if out.Need != nil {
				t.Fatalf("need %+v", out.Need)
			}
			status = out.Status
			var ready *metav1.Condition
			for i := range status.Conditions {
				if status.Conditions[i].Type == sluicev1beta1.ReadyCondition {
					ready = &status.Conditions[i]
				}
			}
			if status.Phase != s.phase || ready == nil || ready.Reason != s.reason || out.RequeueAfter != s.requeue {
				t.Fatalf("phase %s, Ready %+v, requeue after %s; want %s, %s, %s", status.Phase, ready, out.RequeueAfter, s.phase, s.reason, s.requeue)
			}
		})
	}
	if a := status.Admission; a == nil || !a.ArrivedAt.Time.Equal(opens.Add(30*time.Minute)) || a.AdmittedAt == nil || !a.AdmittedAt.Time.Equal(closes) {
		t.Fatalf("admission %+v: want arrived when it first waited, admitted when the window closed", a)
	}
}
