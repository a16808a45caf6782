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

// asked is in with a request by alice.
func asked(in Input, action sluicev1beta1.RequestAction) Input {
	in.Request = &Request{Request: sluicev1beta1.Request{ID: "r1", Action: action, By: "alice"}}
	return in
}

func askedFull(in Input) Input {
	in = asked(in, sluicev1beta1.RequestPromote)
	in.Request.Full = true
	return in
}

// notDue is in with its last step just taken: only a request moves it now.
func notDue(in Input) Input {
	in.Status.LastStepTime = at(-time.Second)
	return in
}

func paused(in Input) Input {
	in.Status.Paused = &sluicev1beta1.PauseStatus{By: "bob", Since: metav1.NewTime(t0.Add(-time.Minute))}
	return in
}

// answered checks status.lastRequest: the request's outcome, and words
// its message must hold.
func answered(outcome sluicev1beta1.RequestOutcome, words ...string) func(*testing.T, sluicev1beta1.CanaryStatus) {
	return func(t *testing.T, st sluicev1beta1.CanaryStatus) {
		t.Helper()
		r := st.LastRequest
		if r == nil || r.ID != "r1" || r.Outcome != outcome {
			t.Fatalf("lastRequest %+v, want r1 %s", r, outcome)
		}
		for _, w := range words {
			if !strings.Contains(r.Message, w) {
				t.Errorf("message %q does not say %q", r.Message, w)
			}
		}
	}
}

func TestManualRequests(t *testing.T) {
	waitingPromotion := func() Input {
		in := withHooks(progressing(), sluicev1beta1.ConfirmPromotionHook)
		in.Status.Phase, in.Status.Iterations = sluicev1beta1.CanaryPhaseWaitingPromotion, 3
		return notDue(in)
	}
	waitingRollout := func() Input {
		in := withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook)
		in.Status.Phase, in.Status.LastTrackedRevision = sluicev1beta1.CanaryPhaseWaiting, "v2"
		return notDue(in)
	}
	failed := func() Input {
		in := newRevision()
		in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastAppliedSpec = sluicev1beta1.CanaryPhaseFailed, "v2", "v2"
		return in
	}
	tests := []struct {
		name string
		in   func() Input
		want want
	}{
		// promote
		{"promote at a confirm-promotion gate promotes now", func() Input {
			return asked(waitingPromotion(), sluicev1beta1.RequestPromote)
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{emitted(ReasonPromoteRequested), Promote{}, emitted(ReasonPromoting)},
			status: answered(sluicev1beta1.RequestAccepted, "approved by alice")}},
		{"promote at a confirm-promotion gate still needs the step's analysis", func() Input {
			in := asked(waitingPromotion(), sluicev1beta1.RequestPromote)
			in.Spec.Metrics = 1
			return in
		}, want{need: []Check{CheckMetrics}}},
		{"promote at a confirm-promotion gate does not promote over failed metrics", func() Input {
			in := asked(waitingPromotion(), sluicev1beta1.RequestPromote)
			in.Spec.Metrics = 1
			return withChecks(in, Checks{CheckMetrics: fail("error rate 7% > 1%")})
		}, want{phase: sluicev1beta1.CanaryPhaseWaitingPromotion, failedChecks: intp(1), events: []string{ReasonPromoteRequested, ReasonChecksFailed},
			status: answered(sluicev1beta1.RequestAccepted)}},
		{"promote at a confirm-rollout gate starts the rollout now", func() Input {
			return asked(waitingRollout(), sluicev1beta1.RequestPromote)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{emitted(ReasonPromoteRequested), ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			status: answered(sluicev1beta1.RequestAccepted)}},
		{"promote at a confirm-traffic-increase gate shifts the next step now", func() Input {
			return asked(notDue(withHooks(canary(), sluicev1beta1.ConfirmTrafficIncreaseHook)), sluicev1beta1.RequestPromote)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(40), events: []string{ReasonPromoteRequested, ReasonWeightIncreased},
			status: answered(sluicev1beta1.RequestAccepted)}},
		{"promote with nothing in flight is refused and changes nothing", func() Input {
			return asked(blueGreen(), sluicev1beta1.RequestPromote)
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{emitted(ReasonRequestRefused)},
			status: answered(sluicev1beta1.RequestRefused, "nothing waits for approval", "Initialized")}},
		{"promote while the canary is not ready is refused rather than lost", func() Input {
			in := asked(canary(), sluicev1beta1.RequestPromote)
			in.Target.Ready = notReady("1 of 2 updated replicas available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), events: []string{ReasonRequestRefused},
			status: answered(sluicev1beta1.RequestRefused, "not ready yet", "1 of 2", "--full")}},
		{"promote of a paused Canary is refused", func() Input {
			return asked(paused(canary()), sluicev1beta1.RequestPromote)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), actions: []Action{emitted(ReasonRequestRefused)},
			status: answered(sluicev1beta1.RequestRefused, "paused", "--full")}},

		// promote --full
		{"promote --full mid-analysis skips the remaining steps and their checks", func() Input {
			in := askedFull(notDue(canary()))
			in.Spec.Metrics = 1
			return withHooks(in, sluicev1beta1.ConfirmPromotionHook)
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{emitted(ReasonPromoteRequested), Promote{}, emitted(ReasonPromoting)},
			status: answered(sluicev1beta1.RequestAccepted, "Full promotion", "alice")}},
		{"promote --full of a paused Canary promotes and lifts the pause", func() Input {
			return askedFull(paused(canary()))
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, events: []string{ReasonPromoteRequested, ReasonPromoting},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.Paused != nil {
					t.Errorf("still paused: %+v", st.Paused)
				}
			}}},
		{"promote --full of a rolled-back revision promotes it", func() Input {
			return askedFull(failed())
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, events: []string{ReasonPromoteRequested, ReasonPromoting},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.LastTrackedRevision != "v2" || st.RolloutStartTime == nil || !st.RolloutStartTime.Time.Equal(t0) {
					t.Errorf("tracked %q, rollout start %v", st.LastTrackedRevision, st.RolloutStartTime)
				}
			}}},
		{"promote --full is refused while the primary is not ready", func() Input {
			in := askedFull(canary())
			in.Primary.Ready = notReady("1 of 3 updated replicas available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonRequestRefused},
			status: answered(sluicev1beta1.RequestRefused, "podinfo-primary is not ready")}},
		{"promote --full from a blue/green gate sends no traffic to the idle canary", func() Input {
			in := waitingRollout()
			in.Capabilities = traffic.Capabilities{Weights: true}
			return askedFull(in)
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{emitted(ReasonPromoteRequested), Promote{}, emitted(ReasonPromoting)}}},
		{"promote --full with the primary promoted is refused", func() Input {
			return askedFull(blueGreen())
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{ReasonRequestRefused}, status: answered(sluicev1beta1.RequestRefused, "nothing to promote")}},

		// abort
		{"abort mid-analysis rolls back now", func() Input {
			return asked(notDue(canary()), sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, actions: []Action{
			emitted(ReasonAbortRequested), emitted(ReasonRolledBack),
			RecordRelease{Result: ReleaseFailed, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook},
			SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{Up: false},
		}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			answered(sluicev1beta1.RequestAccepted, "alice")(t, st)
			if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || !strings.Contains(c.Message, "aborted by alice") {
				t.Errorf("Ready %+v does not say who aborted", c)
			}
		}}},
		{"abort at a confirm-rollout gate rolls back without scaling anything up", func() Input {
			return asked(waitingRollout(), sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonAbortRequested, ReasonRolledBack}}},
		{"abort after the promotion is refused", func() Input {
			return asked(promoting(), sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseFinalising, events: []string{ReasonRequestRefused},
			status: answered(sluicev1beta1.RequestRefused, "nothing to abort", "Promoting")}},
		{"an aborted revision does not start again on its own", func() Input {
			in := failed()
			in.Status.LastRequest = &sluicev1beta1.RequestStatus{ID: "r1", Outcome: sluicev1beta1.RequestAccepted}
			return asked(in, sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, actions: nil}},

		// retry
		{"retry after a rollback analyses the same revision again", func() Input {
			return asked(failed(), sluicev1beta1.RequestRetry)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{emitted(ReasonRetryRequested), ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				answered(sluicev1beta1.RequestAccepted, "v2", "alice")(t, st)
				if st.LastTrackedRevision != "v2" || st.FailedChecks != 0 {
					t.Errorf("tracked %q with %d failed checks", st.LastTrackedRevision, st.FailedChecks)
				}
			}}},
		{"retry goes through the confirm-rollout gate again", func() Input {
			return asked(withHooks(failed(), sluicev1beta1.ConfirmRolloutHook), sluicev1beta1.RequestRetry)
		}, want{need: []Check{CheckConfirmRollout}}},
		{"retry of a promoted revision is refused", func() Input {
			return asked(blueGreen(), sluicev1beta1.RequestRetry)
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{ReasonRequestRefused}, status: answered(sluicev1beta1.RequestRefused, "nothing to retry")}},

		// pause and resume
		{"pause mid-analysis holds the weight", func() Input {
			return asked(canary(), sluicev1beta1.RequestPause)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), actions: []Action{emitted(ReasonPaused)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				answered(sluicev1beta1.RequestAccepted, "alice")(t, st)
				if st.Paused == nil || st.Paused.By != "alice" {
					t.Errorf("paused %+v", st.Paused)
				}
				if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || c.Reason != ReasonPaused {
					t.Errorf("Ready %+v, want reason Paused", c)
				}
			}}},
		{"a paused Canary takes no step when one is due", func() Input {
			return paused(canary())
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), actions: nil}},
		{"a paused Canary starts no new revision", func() Input {
			return paused(newRevision())
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: nil}},
		{"a paused Canary does not roll back on a deadline", func() Input {
			in := paused(canary())
			in.Target.Ready = Readiness{Message: "0 of 3 available", Stuck: true}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: nil}},
		{"pausing twice keeps the first pause", func() Input {
			return asked(paused(canary()), sluicev1beta1.RequestPause)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonPaused}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if st.Paused == nil || st.Paused.By != "bob" {
				t.Errorf("paused %+v, want bob's", st.Paused)
			}
		}}},
		{"resume runs the step that fell due while paused", func() Input {
			in := paused(canary())
			in.Status.HoldingSince = at(-time.Hour)
			return asked(in, sluicev1beta1.RequestResume)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(40), events: []string{ReasonResumed, ReasonWeightIncreased},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.Paused != nil || st.HoldingSince != nil {
					t.Errorf("paused %+v, holding since %v", st.Paused, st.HoldingSince)
				}
			}}},
		{"resume of a Canary that is not paused is accepted and changes nothing", func() Input {
			return asked(blueGreen(), sluicev1beta1.RequestResume)
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{emitted(ReasonResumed)},
			status: answered(sluicev1beta1.RequestAccepted, "not paused")}},

		// every request
		{"a request already answered is not acted on again", func() Input {
			in := notDue(canary())
			in.Status.LastRequest = &sluicev1beta1.RequestStatus{ID: "r1", Outcome: sluicev1beta1.RequestAccepted}
			return asked(in, sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: nil}},
		{"an annotation that does not parse is refused with the reason", func() Input {
			in := canary()
			in.Request = &Request{Request: sluicev1beta1.Request{ID: "sha256:abc"}, Invalid: "metadata.annotations[sluice.dev/request]: unknown action \"ship\""}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonRequestRefused, ReasonWeightIncreased},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if r := st.LastRequest; r == nil || r.Outcome != sluicev1beta1.RequestRefused || !strings.Contains(r.Message, "sluice.dev/request") {
					t.Errorf("lastRequest %+v", r)
				}
			}}},
		{"a request to a blocked Canary is refused with the problem", func() Input {
			in := asked(canary(), sluicev1beta1.RequestAbort)
			in.Blocked = &Problem{Reason: "ProviderUnavailable", Message: "spec.provider istio: its CRDs are not installed"}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonRequestRefused, "ProviderUnavailable"}, status: answered(sluicev1beta1.RequestRefused, "spec.provider istio")}},
		{"abort of a Canary whose metrics broke mid-analysis rolls back", func() Input {
			in := asked(canary(), sluicev1beta1.RequestAbort)
			in.Blocked = &Problem{Reason: "TemplateNotFound", Message: "spec.analysis.metrics[0]: MetricTemplate error-rate not found", Routable: true}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonAbortRequested, ReasonRolledBack, "TemplateNotFound"},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				answered(sluicev1beta1.RequestAccepted)(t, st)
				if st.CanaryWeight != 0 {
					t.Errorf("weight %d after the abort", st.CanaryWeight)
				}
			}}},
		{"an annotation that does not parse is refused with its own error on a blocked Canary too", func() Input {
			in := blueGreen()
			in.Target = Target{}
			in.Request = &Request{Request: sluicev1beta1.Request{ID: "sha256:abc"}, Invalid: "metadata.annotations[sluice.dev/request]: not a request: invalid character"}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{ReasonRequestRefused, ReasonTargetNotFound},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if r := st.LastRequest; r == nil || !strings.Contains(r.Message, "not a request") || strings.Contains(r.Message, "not found") {
					t.Errorf("lastRequest %+v, want the annotation's error", r)
				}
			}}},
		{"a refusal is kept in lastRequest and the event, not in Ready", func() Input {
			return asked(blueGreen(), sluicev1beta1.RequestAbort)
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{ReasonRequestRefused},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				answered(sluicev1beta1.RequestRefused, "nothing to abort")(t, st)
				if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue || strings.Contains(c.Message, "refused") {
					t.Errorf("Ready %+v carries the refusal", c)
				}
			}}},
		{"a refusal an older version left in Ready is dropped", func() Input {
			in := blueGreen()
			refusal := "abort requested by alice refused: nothing to abort"
			in.Status.LastRequest = &sluicev1beta1.RequestStatus{ID: "r0", Outcome: sluicev1beta1.RequestRefused, Message: refusal}
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionTrue, Reason: string(sluicev1beta1.CanaryPhaseInitialized), Message: refusal}}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || strings.Contains(c.Message, "refused") {
				t.Errorf("Ready %+v still carries the refusal", c)
			}
		}}},
		{"a request from an unnamed user names nobody", func() Input {
			in := asked(notDue(canary()), sluicev1beta1.RequestAbort)
			in.Request.By = ""
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonAbortRequested, ReasonRolledBack},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition)
				for _, msg := range []string{st.LastRequest.Message, c.Message} {
					if strings.Contains(msg, "unnamed") || strings.Contains(msg, " by ") {
						t.Errorf("message %q names a requester", msg)
					}
				}
				if !strings.Contains(c.Message, "Rolled back: aborted") {
					t.Errorf("Ready %q does not say the revision was aborted", c.Message)
				}
			}}},
		{"a request to a suspended Canary is refused", func() Input {
			in := asked(canary(), sluicev1beta1.RequestAbort)
			in.Spec.Suspend = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, events: []string{ReasonRequestRefused, ReasonSuspended}, status: answered(sluicev1beta1.RequestRefused, "spec.suspend")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Step(tt.in()), tt.want)
		})
	}
}

func TestARequestAnsweredWhileChecksRunIsAnsweredOnce(t *testing.T) {
	in := asked(notDue(canary()), sluicev1beta1.RequestPromote)
	in.Spec.Metrics = 1
	out := Step(in)
	if out.Need == nil {
		t.Fatalf("want the step's metrics asked for, got %+v", out)
	}
	out = Step(withChecks(in, Checks{CheckMetrics: pass()}))
	if out.Status.LastRequest == nil || out.Status.CanaryWeight != 40 {
		t.Fatalf("lastRequest %+v, weight %d", out.Status.LastRequest, out.Status.CanaryWeight)
	}
	in.Status, in.Checks = out.Status, nil
	in.Now = in.Now.Add(time.Second)
	if again := Step(in); again.Need != nil || again.Status.CanaryWeight != 40 {
		t.Fatalf("the answered request moved the Canary again: need %+v, weight %d", again.Need, again.Status.CanaryWeight)
	}
}
