package plan

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// window is a freeze of ReleasePolicy friday-evening open until an hour
// from t0 that holds releases in flight.
func window() *Freeze {
	return &Freeze{Policy: "friday-evening", Reason: sluicev1beta1.ReasonFreezeWindow, Field: "spec.freeze.windows[0]", Why: "weekend", Until: t0.Add(time.Hour)}
}

// stop is the stop-the-line freeze alice set.
func stop() *Freeze {
	return &Freeze{Policy: sluicev1beta1.StopTheLinePolicy, Reason: sluicev1beta1.ReasonStopTheLine, Field: "spec.stop", Why: "incident 123", SetBy: "alice"}
}

func frozen(in Input, f *Freeze) Input {
	in.Release = &Gate{Freeze: f, NextChange: f.Until}
	return in
}

func finishing(in Input) Input {
	f := window()
	f.Finish = true
	return frozen(in, f)
}

func limited(in Input, a *Admission) Input {
	in.Release = &Gate{Limited: true, Admission: a}
	return in
}

// held is in with its status as a new revision v2 left it, waiting for a
// ReleasePolicy with the Ready reason given, since t0 - 1m.
func held(in Input, reason string) Input {
	in.Status.Phase = sluicev1beta1.CanaryPhaseWaiting
	in.Status.Admission = &sluicev1beta1.AdmissionStatus{Revision: "v2", ArrivedAt: metav1.NewMicroTime(t0.Add(-time.Minute))}
	in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: reason, Message: "waits"}}
	in.Status.LastStepTime = at(-time.Second)
	return in
}

// readyIs checks the Ready condition's reason and words of its message.
func readyIs(reason string, words ...string) func(*testing.T, sluicev1beta1.CanaryStatus) {
	return func(t *testing.T, st sluicev1beta1.CanaryStatus) {
		t.Helper()
		c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition)
		if c == nil || c.Reason != reason {
			t.Fatalf("Ready %+v, want reason %s", c, reason)
		}
		for _, w := range words {
			if !strings.Contains(c.Message, w) {
				t.Errorf("Ready message %q does not say %q", c.Message, w)
			}
		}
	}
}

// both runs several status checks.
func both(checks ...func(*testing.T, sluicev1beta1.CanaryStatus)) func(*testing.T, sluicev1beta1.CanaryStatus) {
	return func(t *testing.T, st sluicev1beta1.CanaryStatus) {
		t.Helper()
		for _, c := range checks {
			c(t, st)
		}
	}
}

// admission checks the admission record: its arrival and whether it was
// admitted now.
func admission(arrived time.Time, admitted bool) func(*testing.T, sluicev1beta1.CanaryStatus) {
	return func(t *testing.T, st sluicev1beta1.CanaryStatus) {
		t.Helper()
		a := st.Admission
		if a == nil || a.Revision != "v2" || !a.ArrivedAt.Time.Equal(arrived) {
			t.Fatalf("admission %+v, want v2 arrived at %s", a, arrived)
		}
		if admitted != (a.AdmittedAt != nil) || (admitted && !a.AdmittedAt.Time.Equal(t0)) {
			t.Fatalf("admitted at %v, want admitted now: %v", a.AdmittedAt, admitted)
		}
	}
}

func TestReleasePolicies(t *testing.T) {
	// admit stands for a want of nothing but the question: may it start?
	admit := want{events: []string{"asks for admission"}}
	tests := []struct {
		name string
		in   func() Input
		want want
	}{
		// Freezes.
		{"a new revision waits while a freeze window is open, and looks again when it closes", func() Input {
			return frozen(newRevision(), window())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)}, requeue: time.Hour,
			status: both(readyIs(sluicev1beta1.ReasonFrozen, "New revision v2 waits", "ReleasePolicy friday-evening freezes releases until 2026-11-23 13:00:00 UTC (spec.freeze.windows[0]): weekend"),
				admission(t0, false),
				func(t *testing.T, st sluicev1beta1.CanaryStatus) {
					if st.LastTrackedRevision != "v1" || st.LastStepTime != nil {
						t.Errorf("tracked %q, last step %v: a held revision is not started", st.LastTrackedRevision, st.LastStepTime)
					}
				})}},
		{"a held revision says it waits once, not at every look", func() Input {
			return frozen(held(newRevision(), sluicev1beta1.ReasonFrozen), window())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: nil, requeue: time.Hour, status: admission(t0.Add(-time.Minute), false)}},
		{"a held revision starts once the freeze is over, with its arrival kept", func() Input {
			return held(newRevision(), sluicev1beta1.ReasonFrozen)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			status: admission(t0.Add(-time.Minute), true)}},
		{"a stop holds a new revision until it is lifted and says who set it", func() Input {
			return frozen(newRevision(), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)},
			status: readyIs(sluicev1beta1.ReasonFrozen, "ReleasePolicy sluice-stop-the-line stops the line (spec.stop, set by alice): incident 123")}},
		{"a freeze holds a new revision before its confirm-rollout gates are asked", func() Input {
			return frozen(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), window())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)}}},
		{"a release in flight holds its weight, its checks run and no step advances", func() Input {
			return frozen(canary(), window())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)}, weight: intp(20), requeue: interval,
			status: both(readyIs(sluicev1beta1.ReasonFrozen, "Holding at weight 20", "a failure still rolls back"), func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if !st.LastStepTime.Time.Equal(t0) || st.FrozenSince == nil || !st.FrozenSince.Time.Equal(t0) {
					t.Errorf("last step %v, frozen since %v: the held step ran and the hold began now", st.LastStepTime, st.FrozenSince)
				}
			})}},
		{"between two steps a held release keeps saying that it holds", func() Input {
			return frozen(notDue(canary()), window())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: nil, status: readyIs(sluicev1beta1.ReasonFrozen, "Holding at weight 20")}},
		{"the step after a held first step analyses rather than run the pre-rollout hooks again", func() Input {
			in := withHooks(progressing(), sluicev1beta1.PreRolloutHook, sluicev1beta1.RolloutHook)
			in.Status.Iterations = 0
			in.Status.FrozenSince = at(-interval)
			return frozen(in, window())
		}, want{need: []Check{CheckRollout}}},
		{"a first step not held yet runs the pre-rollout hooks, even while a freeze is in force", func() Input {
			in := withHooks(progressing(), sluicev1beta1.PreRolloutHook, sluicev1beta1.RolloutHook)
			in.Status.Iterations = 0
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: sluicev1beta1.ReasonFrozen, Message: "Holding"}}
			return frozen(in, window())
		}, want{need: []Check{CheckPreRollout}}},
		{"the step after the freeze advances and forgets the hold", func() Input {
			in := canary()
			in.Status.FrozenSince = at(-interval)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(40), events: []string{ReasonWeightIncreased}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if st.FrozenSince != nil {
				t.Errorf("frozenSince %v kept", st.FrozenSince)
			}
		}}},
		{"a held release asks its checks as any step does", func() Input {
			return frozen(withHooks(canary(), sluicev1beta1.RolloutHook), window())
		}, want{need: []Check{CheckRollout}}},
		{"a failed check rolls back a release held by a freeze", func() Input {
			in := withChecks(withHooks(canary(), sluicev1beta1.RolloutHook), Checks{CheckRollout: fail("500 from the load test")})
			in.Status.FailedChecks = 1
			in.Status.FrozenSince = at(-interval)
			return frozen(in, window())
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonChecksFailed, ReasonRolledBack}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if st.FrozenSince != nil {
				t.Errorf("frozenSince %v kept after the rollback", st.FrozenSince)
			}
		}}},
		{"a rollback hook rolls back a release held by a stop", func() Input {
			return frozen(withChecks(withHooks(canary(), sluicev1beta1.RollbackHook), Checks{CheckRollback: fail("rollback hook oncall answered 200")}), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonRolledBack}}},
		{"a blue/green release held at the promotion gate does not promote", func() Input {
			in := progressing()
			in.Status.Iterations = 3
			return frozen(in, window())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)}, status: readyIs(sluicev1beta1.ReasonFrozen, "Holding at iteration 3 of 3")}},
		{"inFlight Finish lets a release in flight advance", func() Input {
			return finishing(canary())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{SetRoutes{Routes: traffic.Weighted(40)}, emitted(ReasonWeightIncreased)}, weight: intp(40)}},
		{"inFlight Finish still holds a new revision", func() Input {
			return finishing(newRevision())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(sluicev1beta1.ReasonFrozen)}}},
		{"a release already promoting finishes during a freeze", func() Input {
			return frozen(promoting(), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseFinalising}},
		{"a newer revision during a frozen release moves traffic back to the primary and waits", func() Input {
			in := canary()
			in.Target.Revision, in.Target.PodTemplateHash = "v3", "v3"
			return frozen(in, window())
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{}, emitted(sluicev1beta1.ReasonFrozen)}, weight: intp(0)}},
		{"an idle Canary shows a stop in its Frozen condition and does nothing else", func() Input {
			return frozen(blueGreen(), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: nil, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.FrozenCondition)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != sluicev1beta1.ReasonStopTheLine || !strings.Contains(c.Message, "set by alice") || !strings.Contains(c.Message, "incident 123") {
				t.Errorf("Frozen %+v", c)
			}
		}}},
		{"the Frozen condition goes when the freeze ends", func() Input {
			in := blueGreen()
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.FrozenCondition, Status: metav1.ConditionTrue, Reason: sluicev1beta1.ReasonStopTheLine}}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.FrozenCondition); c != nil {
				t.Errorf("Frozen %+v left", c)
			}
		}}},
		{"an idle Canary is looked at again when a window opens", func() Input {
			in := blueGreen()
			in.Release = &Gate{NextChange: t0.Add(30 * time.Minute)}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, requeue: 30 * time.Minute}},
		{"an abort rolls back under a stop", func() Input {
			return frozen(asked(progressing(), sluicev1beta1.RequestAbort), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonAbortRequested, ReasonRolledBack}, status: answered(sluicev1beta1.RequestAccepted)}},
		{"an abort rolls back a revision the freeze holds", func() Input {
			return frozen(asked(held(newRevision(), sluicev1beta1.ReasonFrozen), sluicev1beta1.RequestAbort), window())
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonAbortRequested, ReasonRolledBack}, status: answered(sluicev1beta1.RequestAccepted)}},
		{"a promote is refused during a freeze, saying which", func() Input {
			in := withHooks(progressing(), sluicev1beta1.ConfirmPromotionHook)
			in.Status.Phase = sluicev1beta1.CanaryPhaseWaitingPromotion
			return frozen(asked(notDue(in), sluicev1beta1.RequestPromote), window())
		}, want{phase: sluicev1beta1.CanaryPhaseWaitingPromotion, events: []string{ReasonRequestRefused},
			status: answered(sluicev1beta1.RequestRefused, "promote request by alice refused", "ReleasePolicy friday-evening freezes releases")}},
		{"a full promotion is refused during a stop", func() Input {
			return frozen(askedFull(notDue(progressing())), stop())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonRequestRefused}, status: answered(sluicev1beta1.RequestRefused, "stops the line")}},

		// Limits.
		{"a new revision under a limit asks to be admitted", func() Input {
			return limited(newRevision(), nil)
		}, admit},
		{"a revision that is not admitted waits in the queue, saying where", func() Input {
			return limited(newRevision(), &Admission{ArrivedAt: t0, Policy: "team-a", Position: 3, Running: 2, Limit: 2})
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(sluicev1beta1.ReasonQueued)}, requeue: interval,
			status: both(readyIs(sluicev1beta1.ReasonQueued, "New revision v2 waits for a slot in ReleasePolicy team-a: 2 of 2 running, 3rd in the queue"), admission(t0, false))}},
		{"an admitted revision starts and records when it was admitted", func() Input {
			return limited(newRevision(), &Admission{Admitted: true, ArrivedAt: t0})
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)}, status: admission(t0, true)}},
		{"an admission is recorded at the time it was decided, which orders the starts", func() Input {
			return limited(newRevision(), &Admission{Admitted: true, ArrivedAt: t0.Add(-time.Minute), DecidedAt: t0.Add(time.Millisecond)})
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonNewRevision}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if a := st.Admission; a == nil || a.AdmittedAt == nil || !a.AdmittedAt.Time.Equal(t0.Add(time.Millisecond)) {
				t.Errorf("admission %+v", a)
			}
		}}},
		{"a queued revision asks again at every wake-up, not once an interval", func() Input {
			return limited(held(newRevision(), sluicev1beta1.ReasonQueued), nil)
		}, admit},
		{"a queued revision that moves up says so without a new event", func() Input {
			return limited(held(newRevision(), sluicev1beta1.ReasonQueued), &Admission{ArrivedAt: t0.Add(-time.Minute), Policy: "team-a", Position: 1, Running: 2, Limit: 2})
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: nil, status: both(readyIs(sluicev1beta1.ReasonQueued, "1st in the queue"), admission(t0.Add(-time.Minute), false))}},
		{"a release restarted by a newer revision keeps its slot", func() Input {
			in := canary()
			in.Target.Revision, in.Target.PodTemplateHash = "v3", "v3"
			return limited(in, nil)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonNewRevision}}},
		{"a queued revision whose target went back to production leaves the queue", func() Input {
			in := held(blueGreen(), sluicev1beta1.ReasonQueued)
			return limited(in, nil)
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{emitted(ReasonReverted)}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if st.Admission != nil {
				t.Errorf("admission %+v kept", st.Admission)
			}
		}}},
		{"a promote cannot skip the queue", func() Input {
			return limited(asked(held(newRevision(), sluicev1beta1.ReasonQueued), sluicev1beta1.RequestPromote), &Admission{ArrivedAt: t0, Policy: "team-a", Position: 2, Running: 2, Limit: 2})
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, events: []string{ReasonRequestRefused}, status: answered(sluicev1beta1.RequestRefused, "cannot skip its turn")}},
		{"a frozen revision that also waits for a slot shows the freeze", func() Input {
			in := frozen(newRevision(), window())
			in.Release.Limited = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, events: []string{sluicev1beta1.ReasonFrozen}, status: readyIs(sluicev1beta1.ReasonFrozen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			out := Step(in)
			if len(tt.want.events) == 1 && tt.want.events[0] == admit.events[0] {
				if out.Need == nil || !out.Need.Admission || len(out.Need.Checks) != 0 {
					t.Fatalf("need %+v, want an admission", out.Need)
				}
				return
			}
			check(t, out, tt.want)
		})
	}
}

// TestAHeldReleaseLooksAgainWhenTheFreezeEnds checks that a release
// held by a freeze that ends before the next step is looked at when it
// ends, not at a resync.
func TestAHeldReleaseLooksAgainWhenTheFreezeEnds(t *testing.T) {
	in := frozen(canary(), window())
	in.Release.Freeze.Until = t0.Add(10 * time.Second)
	out := Step(in)
	if out.RequeueAfter != 10*time.Second {
		t.Fatalf("requeue after %s, want the 10s left of the freeze", out.RequeueAfter)
	}
}
