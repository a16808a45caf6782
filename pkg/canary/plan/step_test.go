package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

var (
	t0       = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	interval = time.Minute
)

func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(t0.Add(d))
	return &t
}

func ready() Readiness { return Readiness{Ready: true} }

func notReady(msg string) Readiness { return Readiness{Message: msg} }

// blueGreen is a Canary on the Kubernetes provider, ten iterations, idle
// after its initialization, with the target on revision "v1".
func blueGreen() Input {
	return Input{
		Now:        t0,
		Generation: 3,
		Spec: Spec{
			TargetName: "podinfo", Strategy: BlueGreen, Interval: interval, Threshold: 2, Iterations: 3,
			MaxWeight: 100, ProgressDeadline: 10 * time.Minute, Hooks: map[sluicev1beta1.HookType]int{},
		},
		Status: sluicev1beta1.CanaryStatus{
			Phase: sluicev1beta1.CanaryPhaseInitialized, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour)),
			LastAppliedSpec: "v1", LastTrackedRevision: "v1", LastPromotedSpec: "v1",
		},
		Target:  Target{Workload: Workload{Exists: true, Revision: "v1", Ready: ready()}, PodTemplateHash: "v1", ScaledToZero: true},
		Primary: Workload{Exists: true, Revision: "v1", Ready: ready()},
		Routes:  traffic.PrimaryOnly(),
	}
}

// newRevision is blueGreen with the target on revision "v2".
func newRevision() Input {
	in := blueGreen()
	in.Target.Revision, in.Target.PodTemplateHash = "v2", "v2"
	return in
}

// progressing is newRevision one step into its analysis: the canary is up
// and ready, and the next step is due.
func progressing() Input {
	in := newRevision()
	in.Target.ScaledToZero = false
	in.Status.Phase = sluicev1beta1.CanaryPhaseProgressing
	in.Status.LastTransitionTime = metav1.NewTime(t0.Add(-2 * interval))
	in.Status.LastTrackedRevision, in.Status.LastAppliedSpec = "v2", "v2"
	in.Status.LastStepTime = at(-interval)
	in.Status.RolloutStartTime = at(-2 * interval)
	in.Status.Iterations = 1
	return in
}

// canary is progressing on a router with weights, stepping by 20 up to 60.
func canary() Input {
	in := progressing()
	in.Spec.Strategy, in.Spec.StepWeight, in.Spec.MaxWeight, in.Spec.Iterations = Canary, 20, 60, 0
	in.Capabilities = traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, Mirror: true, MirrorWeight: true, SessionAffinity: true}
	in.Status.Iterations, in.Status.CanaryWeight = 0, 20
	in.Routes = traffic.Weighted(20)
	return in
}

func promoting() Input {
	in := progressing()
	in.Status.Phase = sluicev1beta1.CanaryPhasePromoting
	in.Status.LastTransitionTime = metav1.NewTime(t0.Add(-time.Second))
	in.Status.Iterations = 3
	in.Primary.Revision = "v2"
	return in
}

// finalising is a promoted release one interval after the primary took
// all traffic back.
func finalising() Input {
	in := promoting()
	in.Status.Phase = sluicev1beta1.CanaryPhaseFinalising
	in.Status.CanaryWeight, in.Routes = 0, traffic.PrimaryOnly()
	in.Status.LastStepTime = at(-interval)
	return in
}

func withHooks(in Input, types ...sluicev1beta1.HookType) Input {
	in.Spec.Hooks = map[sluicev1beta1.HookType]int{}
	for _, t := range types {
		in.Spec.Hooks[t]++
	}
	return in
}

func withChecks(in Input, checks Checks) Input {
	in.Checks = checks
	return in
}

func pass() Result           { return Result{Outcome: Pass} }
func fail(msg string) Result { return Result{Outcome: Fail, Message: msg} }

// want describes the parts of an Output a case asserts; zero fields are not
// checked, except Actions, which must match exactly (nil for none).
type want struct {
	phase        sluicev1beta1.CanaryPhase
	actions      []Action
	need         []Check
	events       []string
	weight       *int
	iterations   *int
	failedChecks *int
	requeue      time.Duration
	status       func(t *testing.T, st sluicev1beta1.CanaryStatus)
}

func intp(i int) *int { return &i }

func TestStep(t *testing.T) {
	tests := []struct {
		name string
		in   func() Input
		want want
	}{
		// Initialization.
		{"a new Canary creates the primary", func() Input {
			in := blueGreen()
			in.Status = sluicev1beta1.CanaryStatus{}
			in.Primary = Workload{}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitializing, actions: []Action{CreatePrimary{}}}},
		{"initialization waits for the primary to be ready", func() Input {
			in := blueGreen()
			in.Status = sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitializing, LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}
			in.Primary.Ready = notReady("1 of 3 updated replicas available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitializing, requeue: 9 * time.Minute}},
		{"a primary that never becomes ready is reported and the target keeps serving", func() Input {
			in := blueGreen()
			in.Status = sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitializing, LastTransitionTime: metav1.NewTime(t0.Add(-11 * time.Minute))}
			in.Primary.Ready = notReady("0 of 3 updated replicas available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitializing, events: []string{"PrimaryNotReady"}}},
		{"a ready primary takes over traffic, then the target is scaled to zero", func() Input {
			in := blueGreen()
			in.Status = sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitializing}
			in.Target.ScaledToZero = false
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{TakeOverTraffic{}, ScaleTarget{}, emitted(ReasonInitialized)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.LastPromotedSpec != "v1" || st.LastTrackedRevision != "v1" || st.LastAppliedSpec != "v1" {
					t.Errorf("revisions %q %q %q, want v1", st.LastPromotedSpec, st.LastTrackedRevision, st.LastAppliedSpec)
				}
			}}},

		// Idle.
		{"an unchanged target needs nothing", blueGreen, want{phase: sluicev1beta1.CanaryPhaseInitialized}},
		{"a target scaled up while idle is scaled back to zero", func() Input {
			in := blueGreen()
			in.Target.ScaledToZero = false
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{ScaleTarget{}}}},
		{"a new revision starts the rollout", newRevision, want{
			phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			weight: intp(0), iterations: intp(0), failedChecks: intp(0), requeue: interval,
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.LastAppliedSpec != "v2" || st.LastTrackedRevision != "v2" || st.LastPromotedSpec != "v1" {
					t.Errorf("revisions applied %q tracked %q promoted %q", st.LastAppliedSpec, st.LastTrackedRevision, st.LastPromotedSpec)
				}
				if !st.LastStepTime.Time.Equal(t0) || !st.RolloutStartTime.Time.Equal(t0) {
					t.Errorf("step %v start %v, want now", st.LastStepTime, st.RolloutStartTime)
				}
			}}},
		{"a new revision after a success starts the rollout", func() Input {
			in := newRevision()
			in.Status.Phase = sluicev1beta1.CanaryPhaseSucceeded
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)}, requeue: interval}},
		{"a new revision with confirm-rollout hooks asks them first", func() Input {
			return withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook)
		}, want{need: []Check{CheckConfirmRollout}}},
		{"a closed confirm-rollout gate makes the rollout wait", func() Input {
			return withChecks(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), Checks{CheckConfirmRollout: fail("gate closed")})
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, actions: []Action{emitted(ReasonWaitingForApproval)}, requeue: interval}},
		{"an open confirm-rollout gate starts the rollout", func() Input {
			return withChecks(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), Checks{CheckConfirmRollout: pass()})
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)}, requeue: interval}},
		{"going back to the promoted revision after a failure starts nothing", func() Input {
			in := blueGreen()
			in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastAppliedSpec = sluicev1beta1.CanaryPhaseFailed, "v2", "v2"
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{emitted(ReasonReverted)}}},
		{"after a rollback, traffic waits for a ready primary", func() Input {
			in := blueGreen()
			in.Status.Phase, in.Status.CanaryWeight = sluicev1beta1.CanaryPhaseFailed, 40
			in.Routes = traffic.Weighted(40)
			in.Target.ScaledToZero = false
			in.Primary.Ready = notReady("3 of 6 updated replicas available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(40)}},
		{"after a rollback, traffic moves to the ready primary, then the canary is scaled down", func() Input {
			in := blueGreen()
			in.Status.Phase, in.Status.CanaryWeight = sluicev1beta1.CanaryPhaseFailed, 40
			in.Routes = traffic.Weighted(40)
			in.Target.ScaledToZero = false
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{}}, weight: intp(0)}},

		// Waiting.
		{"a waiting rollout asks the gate again once an interval has passed", func() Input {
			in := withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook)
			in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastStepTime = sluicev1beta1.CanaryPhaseWaiting, "v2", at(-interval)
			return in
		}, want{need: []Check{CheckConfirmRollout}}},
		{"a waiting rollout does not ask the gate before the interval", func() Input {
			in := withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook)
			in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastStepTime = sluicev1beta1.CanaryPhaseWaiting, "v2", at(-10*time.Second)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, requeue: 50 * time.Second}},
		{"a gate that stays closed keeps the rollout waiting without a new event", func() Input {
			in := withChecks(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), Checks{CheckConfirmRollout: fail("closed")})
			in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastStepTime = sluicev1beta1.CanaryPhaseWaiting, "v2", at(-interval)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseWaiting, requeue: interval}},
		{"a gate that opens starts the rollout", func() Input {
			in := withChecks(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), Checks{CheckConfirmRollout: pass()})
			in.Status.Phase, in.Status.LastTrackedRevision, in.Status.LastStepTime = sluicev1beta1.CanaryPhaseWaiting, "v2", at(-interval)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)}, requeue: interval}},
		{"a waiting rollout whose target went back to the promoted revision ends", func() Input {
			in := withHooks(blueGreen(), sluicev1beta1.ConfirmRolloutHook)
			in.Status.Phase, in.Status.LastTrackedRevision = sluicev1beta1.CanaryPhaseWaiting, "v2"
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, actions: []Action{emitted(ReasonReverted)}}},

		// Progressing: readiness and deadlines.
		{"the analysis waits for the canary to be ready without counting a failure", func() Input {
			in := progressing()
			in.Target.Ready = Readiness{Message: "1 of 3 updated replicas available", NotReadySince: t0.Add(-time.Minute)}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, failedChecks: intp(0), requeue: 9 * time.Minute}},
		{"a canary not ready within the progress deadline is rolled back", func() Input {
			in := progressing()
			in.Status.LastTransitionTime = metav1.NewTime(t0.Add(-11 * time.Minute))
			in.Target.Ready = Readiness{Message: "1 of 3 updated replicas available", NotReadySince: t0.Add(-10 * time.Minute)}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, actions: []Action{emitted(ReasonRolledBack), RecordRelease{Result: ReleaseFailed, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}, ScaleTarget{}}}},
		{"a canary whose rollout is stuck is rolled back at once", func() Input {
			in := progressing()
			in.Target.Ready = Readiness{Message: "ProgressDeadlineExceeded", Stuck: true, NotReadySince: t0}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonRolledBack}}},
		{"the analysis waits for an unready primary", func() Input {
			in := progressing()
			in.Primary.Ready = notReady("node drained")
			in.Status.LastTransitionTime = metav1.NewTime(t0.Add(-time.Minute))
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, requeue: 9 * time.Minute}},
		{"a canary scaled down by someone else is scaled up again", func() Input {
			in := progressing()
			in.Target.ScaledToZero = true
			in.Target.Ready = notReady("0 of 0 replicas")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}}, requeue: 8 * time.Minute}},

		// Progressing: steps.
		{"no step runs before the interval has passed", func() Input {
			in := progressing()
			in.Status.LastStepTime = at(-20 * time.Second)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, requeue: 40 * time.Second}},
		{"the first step runs the pre-rollout hooks instead of the analysis", func() Input {
			in := withHooks(progressing(), sluicev1beta1.PreRolloutHook, sluicev1beta1.RolloutHook)
			in.Status.Iterations = 0
			return in
		}, want{need: []Check{CheckPreRollout}}},
		{"a failing pre-rollout hook counts a failed check", func() Input {
			in := withChecks(withHooks(progressing(), sluicev1beta1.PreRolloutHook), Checks{CheckPreRollout: fail("acceptance test: 500")})
			in.Status.Iterations = 0
			in.Spec.Threshold = 3
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, failedChecks: intp(1), iterations: intp(0), actions: []Action{emitted(ReasonChecksFailed)}, requeue: interval}},
		{"later steps run the rollout hooks and the metrics together", func() Input {
			in := withHooks(progressing(), sluicev1beta1.PreRolloutHook, sluicev1beta1.RolloutHook)
			in.Spec.Metrics = 2
			return in
		}, want{need: []Check{CheckRollout, CheckMetrics}}},
		{"a passed blue/green step counts an iteration", progressing, want{
			phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), actions: []Action{emitted(ReasonIterationPassed)}, requeue: interval,
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if !st.LastStepTime.Time.Equal(t0) {
					t.Errorf("last step %v, want now", st.LastStepTime)
				}
			}}},
		{"a mirrored blue/green step mirrors traffic to the canary", func() Input {
			in := progressing()
			in.Spec.Mirror, in.Spec.MirrorWeight = true, 50
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), requeue: interval,
			actions: []Action{SetRoutes{Routes: traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: 50}}, emitted(ReasonIterationPassed)}}},
		{"an A/B step sends the matching requests to the canary", func() Input {
			in := progressing()
			in.Spec.Strategy = ABTesting
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), requeue: interval,
			actions: []Action{SetRoutes{Routes: traffic.Routes{Primary: 100, Match: true}}, emitted(ReasonIterationPassed)}}},
		{"after the last iteration, blue/green promotes", func() Input {
			in := progressing()
			in.Status.Iterations = 3
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{Promote{}, emitted(ReasonPromoting)}}},
		{"blue/green on a router with weights moves all traffic to the canary before promoting", func() Input {
			in := progressing()
			in.Status.Iterations = 3
			in.Capabilities.Weights = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, weight: intp(100), actions: []Action{SetRoutes{Routes: traffic.Weighted(100)}, Promote{}, emitted(ReasonPromoting)}}},
		{"failing checks below the threshold count a failed check", func() Input {
			in := withChecks(withHooks(progressing(), sluicev1beta1.RolloutHook), Checks{CheckRollout: fail("load test: 500")})
			in.Spec.Threshold = 2
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, failedChecks: intp(1), iterations: intp(1), actions: []Action{emitted(ReasonChecksFailed)}, requeue: interval}},
		{"reaching the failed checks threshold rolls back in the same step", func() Input {
			in := withChecks(withHooks(progressing(), sluicev1beta1.RolloutHook), Checks{CheckRollout: fail("load test: 500")})
			in.Status.FailedChecks = 1
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, failedChecks: intp(2),
			actions: []Action{emitted(ReasonChecksFailed), emitted(ReasonRolledBack), RecordRelease{Result: ReleaseFailed, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}, ScaleTarget{}}}},
		{"a threshold already reached rolls back before any check runs", func() Input {
			in := withHooks(progressing(), sluicev1beta1.RolloutHook)
			in.Status.FailedChecks = 2
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonRolledBack}}},
		{"a rollback hook that answers 2xx rolls back", func() Input {
			return withChecks(withHooks(progressing(), sluicev1beta1.RollbackHook), Checks{CheckRollback: fail("rollback hook oncall answered 200")})
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonRolledBack}}},
		{"a rollback hook that answers otherwise lets the analysis go on", func() Input {
			return withChecks(withHooks(progressing(), sluicev1beta1.RollbackHook), Checks{CheckRollback: pass()})
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), events: []string{ReasonIterationPassed}}},
		{"metrics with no data on hold neither advance nor count", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: {Outcome: Hold, Message: "no data for request-success-rate"}})
			in.Spec.Metrics = 1
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(1), failedChecks: intp(0), actions: []Action{emitted(ReasonHalted)}, requeue: interval,
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.HoldingSince == nil || !st.HoldingSince.Time.Equal(t0) {
					t.Errorf("holdingSince %v, want the time of the first hold", st.HoldingSince)
				}
			}}},
		{"an unhealthy metric provider is reported in MetricsReady and warned about", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: pass()})
			in.Spec.Metrics = 1
			in.Metrics = &MetricsState{Unhealthy: "spec.analysis.metrics[0] (errors): provider health probe failed"}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), events: []string{ReasonIterationPassed, ReasonProviderUnhealthy},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.MetricsReadyCondition)
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonProviderUnhealthy {
					t.Errorf("MetricsReady %+v", c)
				}
			}}},
		{"healthy metrics are reported ready", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: pass()})
			in.Spec.Metrics = 1
			in.Metrics = &MetricsState{}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), events: []string{ReasonIterationPassed},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.MetricsReadyCondition)
				if c == nil || c.Status != metav1.ConditionTrue {
					t.Errorf("MetricsReady %+v", c)
				}
			}}},
		{"a hold keeps the time it began", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: {Outcome: Hold, Message: "no data"}})
			in.Spec.Metrics = 1
			in.Status.HoldingSince = at(-2 * interval)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, failedChecks: intp(0), events: []string{ReasonHalted},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.HoldingSince == nil || !st.HoldingSince.Time.Equal(t0.Add(-2*interval)) {
					t.Errorf("holdingSince %v moved", st.HoldingSince)
				}
			}}},
		{"a hold longer than the progress deadline rolls back, never promotes", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: {Outcome: Hold, Message: "no data"}})
			in.Spec.Metrics = 1
			in.Status.HoldingSince = at(-in.Spec.ProgressDeadline)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, events: []string{ReasonRolledBack}}},
		{"data coming back ends the hold and the step advances", func() Input {
			in := withChecks(progressing(), Checks{CheckMetrics: pass()})
			in.Spec.Metrics = 1
			in.Status.HoldingSince = at(-interval)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), events: []string{ReasonIterationPassed},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.HoldingSince != nil {
					t.Errorf("holdingSince %v after data came back", st.HoldingSince)
				}
			}}},
		{"every metric's result of the step is kept in status", func() Input {
			r := pass()
			r.Metrics = []sluicev1beta1.CanaryMetricStatus{{Name: "request-success-rate", Outcome: sluicev1beta1.MetricPass, Value: "99.9"}}
			in := withChecks(progressing(), Checks{CheckMetrics: r})
			in.Spec.Metrics = 1
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, iterations: intp(2), events: []string{ReasonIterationPassed},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if len(st.Metrics) != 1 || st.Metrics[0].Value != "99.9" {
					t.Errorf("status metrics %+v", st.Metrics)
				}
			}}},
		{"a new revision during the analysis restarts it", func() Input {
			in := canary()
			in.Target.Revision, in.Target.PodTemplateHash = "v3", "v3"
			in.Status.FailedChecks = 1
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(0), failedChecks: intp(0), requeue: interval,
			actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.LastTrackedRevision != "v3" || st.LastAppliedSpec != "v3" {
					t.Errorf("tracked %q applied %q, want v3", st.LastTrackedRevision, st.LastAppliedSpec)
				}
			}}},
		{"a target going back to the promoted revision during the analysis ends it", func() Input {
			in := canary()
			in.Target.Revision, in.Target.PodTemplateHash = "v1", "v1"
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, weight: intp(0),
			actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{}, emitted(ReasonReverted)}}},
		{"skipAnalysis promotes as soon as the canary is ready", func() Input {
			in := progressing()
			in.Spec.SkipAnalysis = true
			in.Status.LastStepTime = at(0)
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{Promote{}, emitted(ReasonPromoting)}}},

		// Progressing: the canary strategy.
		{"a passed canary step increases the weight", canary, want{
			phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(40), requeue: interval,
			actions: []Action{SetRoutes{Routes: traffic.Weighted(40)}, emitted(ReasonWeightIncreased)}}},
		{"stepWeights give the next weight", func() Input {
			in := canary()
			in.Spec.StepWeight, in.Spec.StepWeights, in.Spec.MaxWeight = 0, []int{5, 20, 50, 80}, 80
			return in
		}, want{weight: intp(50), actions: []Action{SetRoutes{Routes: traffic.Weighted(50)}, emitted(ReasonWeightIncreased)}}},
		{"a closed confirm-traffic-increase gate holds the weight", func() Input {
			return withChecks(withHooks(canary(), sluicev1beta1.ConfirmTrafficIncreaseHook), Checks{CheckConfirmTrafficIncrease: fail("closed")})
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), failedChecks: intp(0), actions: []Action{emitted(ReasonWaitingForApproval)}, requeue: interval}},
		{"the confirm-traffic-increase gate is asked only after the analysis passed", func() Input {
			in := withHooks(canary(), sluicev1beta1.ConfirmTrafficIncreaseHook, sluicev1beta1.RolloutHook)
			return withChecks(in, Checks{CheckRollout: pass()})
		}, want{need: []Check{CheckConfirmTrafficIncrease}}},
		{"a canary strategy with mirror mirrors for one step before shifting", func() Input {
			in := canary()
			in.Spec.Mirror = true
			in.Status.CanaryWeight, in.Routes = 0, traffic.PrimaryOnly()
			in.Status.Iterations = 0
			return in
		}, want{weight: intp(0), actions: []Action{SetRoutes{Routes: traffic.Routes{Primary: 100, Mirror: true}}, emitted(ReasonMirroring)}}},
		{"after mirroring, the canary strategy shifts the first weight", func() Input {
			in := canary()
			in.Spec.Mirror = true
			in.Status.CanaryWeight, in.Routes = 0, traffic.Routes{Primary: 100, Mirror: true}
			return in
		}, want{weight: intp(20), actions: []Action{SetRoutes{Routes: traffic.Weighted(20)}, emitted(ReasonWeightIncreased)}}},
		{"at the maximum weight the canary is promoted", func() Input {
			in := canary()
			in.Status.CanaryWeight, in.Routes = 60, traffic.Weighted(60)
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, weight: intp(60), actions: []Action{Promote{}, emitted(ReasonPromoting)}}},
		{"a closed confirm-promotion gate waits for promotion", func() Input {
			in := withChecks(withHooks(canary(), sluicev1beta1.ConfirmPromotionHook), Checks{CheckConfirmPromotion: fail("closed")})
			in.Status.CanaryWeight, in.Routes = 60, traffic.Weighted(60)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseWaitingPromotion, weight: intp(60), actions: []Action{emitted(ReasonWaitingForApproval)}, requeue: interval}},
		{"while waiting for promotion the analysis goes on", func() Input {
			in := withHooks(canary(), sluicev1beta1.ConfirmPromotionHook, sluicev1beta1.RolloutHook)
			in.Status.Phase, in.Status.CanaryWeight, in.Routes = sluicev1beta1.CanaryPhaseWaitingPromotion, 60, traffic.Weighted(60)
			return in
		}, want{need: []Check{CheckRollout}}},
		{"a confirm-promotion gate that opens promotes", func() Input {
			in := withChecks(withHooks(canary(), sluicev1beta1.ConfirmPromotionHook), Checks{CheckConfirmPromotion: pass()})
			in.Status.Phase, in.Status.CanaryWeight, in.Routes = sluicev1beta1.CanaryPhaseWaitingPromotion, 60, traffic.Weighted(60)
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{Promote{}, emitted(ReasonPromoting)}}},
		{"a restart after the routes moved but before the status was written steps once", func() Input {
			in := canary()
			in.Routes = traffic.Weighted(40) // the router already has the next weight
			return in
		}, want{weight: intp(40), actions: []Action{SetRoutes{Routes: traffic.Weighted(40)}, emitted(ReasonWeightIncreased)}}},

		// Promoting and finalising.
		{"promotion waits for the primary to run the promoted revision", func() Input {
			in := promoting()
			in.Primary.Ready = Readiness{Message: "2 of 3 updated replicas available", NotReadySince: t0}
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, requeue: 10 * time.Minute}},
		{"a promotion not seen on the primary yet is copied again", func() Input {
			in := promoting()
			in.Primary.Revision = "v1"
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, actions: []Action{Promote{}}}},
		{"a promoted primary gets the traffic back and holds it an interval in Finalising", func() Input {
			in := promoting()
			in.Status.CanaryWeight, in.Routes, in.Capabilities.Weights = 60, traffic.Weighted(60), true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFinalising, weight: intp(0), requeue: interval,
			actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}}}},
		{"a promoted blue/green on Kubernetes Services finalises at once", promoting, want{phase: sluicev1beta1.CanaryPhaseFinalising, requeue: interval}},
		{"finalising waits out its interval before scaling the canary down", func() Input {
			in := finalising()
			in.Status.LastStepTime = at(-time.Second)
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFinalising, requeue: interval - time.Second}},
		{"an interval after finalising began the canary is scaled down and the release recorded", finalising, want{phase: sluicev1beta1.CanaryPhaseSucceeded, weight: intp(0), iterations: intp(0),
			actions: []Action{ScaleTarget{}, RecordRelease{Result: ReleaseSucceeded, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}, emitted(ReasonPromoted)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.LastPromotedSpec != "v2" {
					t.Errorf("last promoted %q, want v2", st.LastPromotedSpec)
				}
			}}},
		{"a skipped analysis is recorded as skipped", func() Input {
			in := finalising()
			in.Spec.SkipAnalysis = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseSucceeded,
			actions: []Action{ScaleTarget{}, RecordRelease{Result: ReleaseSkipped, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}, emitted(ReasonPromoted)}}},
		{"stepWeightPromotion moves traffic back to the primary step by step", func() Input {
			in := promoting()
			in.Spec.StepWeightPromotion = 25
			in.Status.CanaryWeight, in.Routes, in.Capabilities.Weights = 60, traffic.Weighted(60), true
			return in
		}, want{phase: sluicev1beta1.CanaryPhasePromoting, weight: intp(35), requeue: interval, actions: []Action{SetRoutes{Routes: traffic.Weighted(35)}, emitted(ReasonPromoting)}}},
		{"the last promotion step finalises the release", func() Input {
			in := promoting()
			in.Spec.StepWeightPromotion = 25
			in.Status.CanaryWeight, in.Routes, in.Capabilities.Weights = 10, traffic.Weighted(10), true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFinalising, weight: intp(0), events: []string{ReasonPromoting}}},
		{"a primary that cannot roll out the promotion fails it and keeps traffic where it is", func() Input {
			in := promoting()
			in.Status.CanaryWeight, in.Routes, in.Capabilities.Weights = 100, traffic.Weighted(100), true
			in.Primary.Ready = Readiness{Message: "ProgressDeadlineExceeded", Stuck: true}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(100),
			actions: []Action{emitted(ReasonPromotionFailed), RecordRelease{Result: ReleaseFailed, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}}}},
		{"after a failed promotion the canary keeps serving while the primary is not ready", func() Input {
			in := blueGreen()
			in.Status.Phase, in.Status.CanaryWeight = sluicev1beta1.CanaryPhaseFailed, 100
			in.Routes = traffic.Weighted(100)
			in.Target.ScaledToZero = false
			in.Primary.Ready = Readiness{Stuck: true, Message: "ProgressDeadlineExceeded"}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(100)}},

		// Rollback with an autoscaler.
		{"rolling back an autoscaled canary grows the primary before moving traffic", func() Input {
			in := withChecks(withHooks(canary(), sluicev1beta1.RolloutHook), Checks{CheckRollout: fail("500s")})
			in.Spec.Autoscaled, in.Spec.Threshold = true, 1
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(20),
			actions: []Action{emitted(ReasonChecksFailed), emitted(ReasonRolledBack), RecordRelease{Result: ReleaseFailed, Duration: 2 * interval}, RunHooks{Type: sluicev1beta1.PostRolloutHook}, ScalePrimaryForRollback{}}}},

		{"a rolled-back autoscaled Canary keeps the rollback's reason in Ready while its primary grows", func() Input {
			return rolledBackAutoscaled(notReady("2 of 4 updated replicas available"))
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(20), actions: nil, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			readySays(t, st, "Rolled back: failed checks threshold reached (1): rollout hook: 500s")
			if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReconcilingCondition); c == nil || c.Reason != ReasonRestoringTraffic ||
				!strings.Contains(c.Message, "podinfo-primary to become ready before moving traffic back") {
				t.Errorf("Reconciling %+v does not say traffic waits for the primary", c)
			}
		}}},
		{"a rolled-back autoscaled Canary moves traffic back once its primary is ready and still says why it rolled back", func() Input {
			return rolledBackAutoscaled(ready())
		}, want{phase: sluicev1beta1.CanaryPhaseFailed, weight: intp(0), actions: []Action{SetRoutes{Routes: traffic.PrimaryOnly()}, ScaleTarget{Up: false}},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				readySays(t, st, "Rolled back: failed checks threshold reached (1): rollout hook: 500s")
				if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReconcilingCondition); c != nil {
					t.Errorf("Reconciling %+v after traffic is back", c)
				}
			}}},

		// Suspension.
		{"suspend pauses a rollout where it is", func() Input {
			in := canary()
			in.Spec.Suspend = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), actions: []Action{emitted(ReasonSuspended)}}},
		{"a suspension is announced once", func() Input {
			in := canary()
			in.Spec.Suspend = true
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: ReasonSuspended, Message: "Suspended: no rollout moves until spec.suspend is unset"}}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20)}},
		{"after a long suspension the next step is due at once", func() Input {
			in := canary()
			in.Status.LastStepTime = at(-time.Hour)
			return in
		}, want{weight: intp(40), events: []string{ReasonWeightIncreased}}},

		// Problems.
		{"a spec the router cannot carry out is reported and nothing moves", func() Input {
			in := newRevision()
			in.Blocked = &Problem{Reason: "UnsupportedStrategy", Message: "analysis.stepWeight asks for weighted traffic"}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{"UnsupportedStrategy"}}},
		{"a problem that appears mid-rollout is warned about, not only written in Ready", func() Input {
			in := canary()
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown,
				Reason: string(sluicev1beta1.CanaryPhaseProgressing), Message: "Advance podinfo canary weight 20"}}
			in.Blocked = &Problem{Reason: "MetricTemplateNotFound", Message: "spec.analysis.metrics[0]: MetricTemplate errors not found", Routable: true}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, weight: intp(20), events: []string{"MetricTemplateNotFound"}}},
		{"a Canary blocked before it initialized says it is initializing", func() Input {
			in := blueGreen()
			in.Status, in.Target, in.Primary = sluicev1beta1.CanaryStatus{}, Target{}, Workload{}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitializing, events: []string{ReasonTargetNotFound}, status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonTargetNotFound {
				t.Errorf("Ready %+v, want False with TargetNotFound", c)
			}
		}}},
		{"a missing target is reported and nothing moves", func() Input {
			in := blueGreen()
			in.Target = Target{}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseInitialized, events: []string{ReasonTargetNotFound}}},

		// Deletion with revertOnDeletion.
		{"deletion first scales the target back up", func() Input {
			in := blueGreen()
			in.Deleting = true
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseTerminating, actions: []Action{emitted(ReasonTerminating), RevertTarget{}}}},
		{"deletion waits for the target to serve again", func() Input {
			in := blueGreen()
			in.Deleting = true
			in.Status.Phase, in.Status.LastTransitionTime = sluicev1beta1.CanaryPhaseTerminating, metav1.NewTime(t0)
			in.Target.ScaledToZero, in.Target.Ready = false, notReady("0 of 3 available")
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseTerminating, requeue: 10 * time.Minute}},
		{"deletion points the apex back at the target and lets the Canary go", func() Input {
			in := blueGreen()
			in.Deleting = true
			in.Status.Phase = sluicev1beta1.CanaryPhaseTerminating
			in.Target.ScaledToZero = false
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseTerminated, actions: []Action{RevertRouting{}, RemoveFinalizer{}, emitted(ReasonTerminated)}}},
		{"a canary not ready since before its rollout began gets the whole deadline", func() Input {
			in := progressing()
			in.Target.Ready = Readiness{Message: "0 of 3 updated replicas available", NotReadySince: t0.Add(-time.Hour)}
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, requeue: 8 * time.Minute}},
		{"a rollout with session affinity gets its own cookies", func() Input {
			in := newRevision()
			in.Spec.CookieName, in.Spec.PrimaryCookieName = "canary", "primary"
			in.Status.PreviousSessionAffinityCookie = "canary=v0"
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseProgressing, actions: []Action{ScaleTarget{Up: true}, emitted(ReasonNewRevision)},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.SessionAffinityCookie != "canary=v2" || st.PrimarySessionAffinityCookie != "primary=v2" || st.PreviousSessionAffinityCookie != "canary=v0" {
					t.Errorf("cookies %q %q %q", st.SessionAffinityCookie, st.PrimarySessionAffinityCookie, st.PreviousSessionAffinityCookie)
				}
			}}},
		{"a finished rollout expires its cookie", func() Input {
			in := finalising()
			in.Spec.CookieName = "canary"
			in.Status.SessionAffinityCookie, in.Status.PrimarySessionAffinityCookie = "canary=v2", "primary=v2"
			return in
		}, want{phase: sluicev1beta1.CanaryPhaseSucceeded, events: []string{ReasonPromoted},
			status: func(t *testing.T, st sluicev1beta1.CanaryStatus) {
				if st.SessionAffinityCookie != "" || st.PrimarySessionAffinityCookie != "" || st.PreviousSessionAffinityCookie != "canary=v2" {
					t.Errorf("cookies %q %q %q", st.SessionAffinityCookie, st.PrimarySessionAffinityCookie, st.PreviousSessionAffinityCookie)
				}
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Step(tt.in())
			check(t, out, tt.want)
		})
	}
}

// emitted stands for an Emit of the given reason in want.actions.
func emitted(reason string) Action { return Emit{Event: Event{Reason: reason}} }

func check(t *testing.T, out Output, w want) {
	t.Helper()
	if w.need != nil {
		if out.Need == nil || !reflect.DeepEqual(out.Need.Checks, w.need) {
			t.Fatalf("need %+v, want %v", out.Need, w.need)
		}
		return
	}
	if out.Need != nil {
		t.Fatalf("unexpected need %+v", out.Need)
	}
	st := out.Status
	if w.phase != "" && st.Phase != w.phase {
		t.Errorf("phase %q, want %q", st.Phase, w.phase)
	}
	if got := actionsForCompare(out.Actions); !reflect.DeepEqual(got, w.actions) && w.events == nil {
		t.Errorf("actions\n got %#v\nwant %#v", got, w.actions)
	}
	if w.events != nil {
		var reasons []string
		for _, a := range out.Actions {
			if e, ok := a.(Emit); ok {
				reasons = append(reasons, e.Event.Reason)
			}
		}
		if !reflect.DeepEqual(reasons, w.events) {
			t.Errorf("events %v, want %v", reasons, w.events)
		}
	}
	for name, p := range map[string]struct {
		want *int
		got  int
	}{"weight": {w.weight, st.CanaryWeight}, "iterations": {w.iterations, st.Iterations}, "failedChecks": {w.failedChecks, st.FailedChecks}} {
		if p.want != nil && *p.want != p.got {
			t.Errorf("%s %d, want %d", name, p.got, *p.want)
		}
	}
	if w.requeue != 0 && out.RequeueAfter != w.requeue {
		t.Errorf("requeue after %s, want %s", out.RequeueAfter, w.requeue)
	}
	if w.status != nil {
		w.status(t, st)
	}
	if st.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
	}
}

// actionsForCompare keeps only the reason of events, so that cases need
// not spell out messages.
func actionsForCompare(actions []Action) []Action {
	var out []Action
	for _, a := range actions {
		if e, ok := a.(Emit); ok {
			a = Emit{Event: Event{Reason: e.Event.Reason}}
		}
		out = append(out, a)
	}
	return out
}

func TestConditionsFollowThePhase(t *testing.T) {
	u, tr, f := metav1.ConditionUnknown, metav1.ConditionTrue, metav1.ConditionFalse
	tests := []struct {
		name        string
		in          func() Input
		ready       metav1.ConditionStatus
		promoted    metav1.ConditionStatus
		reconciling bool
		stalled     bool
	}{
		{"an initialized Canary is ready and promoted", blueGreen, tr, tr, false, false},
		{"a rollout in progress is reconciling", progressing, u, u, true, false},
		{"a rolled back Canary is stalled and not ready", func() Input {
			in := progressing()
			in.Target.Ready = Readiness{Stuck: true}
			return in
		}, f, f, false, true},
		{"a succeeded Canary is ready and promoted", finalising, tr, tr, false, false},
		{"a blocked Canary is stalled and not ready", func() Input {
			in := progressing()
			in.Blocked = &Problem{Reason: "UnsupportedStrategy", Message: "no"}
			return in
		}, f, u, false, true},
		{"a suspended rollout is neither reconciling nor stalled", func() Input {
			in := progressing()
			in.Spec.Suspend = true
			return in
		}, u, u, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Step(tt.in()).Status
			for typ, want := range map[string]metav1.ConditionStatus{sluicev1beta1.ReadyCondition: tt.ready, sluicev1beta1.PromotedCondition: tt.promoted} {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if c == nil || c.Status != want || c.ObservedGeneration != 3 {
					t.Errorf("%s condition %+v, want status %s at generation 3", typ, c, want)
				}
			}
			if got := meta.IsStatusConditionTrue(st.Conditions, sluicev1beta1.ReconcilingCondition); got != tt.reconciling {
				t.Errorf("reconciling %v, want %v", got, tt.reconciling)
			}
			if got := meta.IsStatusConditionTrue(st.Conditions, sluicev1beta1.StalledCondition); got != tt.stalled {
				t.Errorf("stalled %v, want %v", got, tt.stalled)
			}
		})
	}
}

func TestReadyMessageSaysWhatTheCanaryWaitsFor(t *testing.T) {
	in := progressing()
	in.Target.Ready = notReady("1 of 3 updated replicas available")
	c := meta.FindStatusCondition(Step(in).Status.Conditions, sluicev1beta1.ReadyCondition)
	if c == nil || !strings.Contains(c.Message, "Waiting for canary podinfo to become ready") {
		t.Fatalf("ready condition %+v does not say what the canary waits for", c)
	}
}

func TestPodsBecomingReadyOneByOneChangeNoStatus(t *testing.T) {
	a, b := progressing(), progressing()
	a.Target.Ready = notReady("1 of 3 updated replicas available")
	b.Target.Ready = notReady("2 of 3 updated replicas available")
	if sa, sb := Step(a).Status, Step(b).Status; !reflect.DeepEqual(sa, sb) {
		t.Fatalf("a replica count changed the status, which costs a write:\n%+v\n%+v", sa.Conditions, sb.Conditions)
	}
}

// rolledBackAutoscaled is an autoscaled canary rolled back one reconcile
// ago: 20% of traffic still on the canary, the primary growing to carry
// it, with the given readiness.
func rolledBackAutoscaled(primary Readiness) Input {
	in := canary()
	in.Spec.Autoscaled = true
	in.Status.Phase, in.Status.LastTransitionTime = sluicev1beta1.CanaryPhaseFailed, metav1.NewTime(t0.Add(-time.Minute))
	in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: string(sluicev1beta1.CanaryPhaseFailed), Message: "Rolled back: failed checks threshold reached (1): rollout hook: 500s"}}
	in.Primary.Ready = primary
	return in
}

// readySays fails the test unless the Ready condition's message is msg.
func readySays(t *testing.T, st sluicev1beta1.CanaryStatus, msg string) {
	t.Helper()
	if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); c == nil || c.Message != msg {
		t.Errorf("Ready %+v, want message %q", c, msg)
	}
	if c := meta.FindStatusCondition(st.Conditions, sluicev1beta1.StalledCondition); c == nil || c.Message != msg {
		t.Errorf("Stalled %+v, want message %q", c, msg)
	}
}

func TestAClosedGateAlertsUnlessItsHooksMuteAlerts(t *testing.T) {
	closed := func(muted bool) Result { return Result{Outcome: Fail, Message: "closed", Muted: muted} }
	rollout := func(r Result) Input {
		return withChecks(withHooks(newRevision(), sluicev1beta1.ConfirmRolloutHook), Checks{CheckConfirmRollout: r})
	}
	promotion := func(r Result) Input {
		in := withChecks(withHooks(canary(), sluicev1beta1.ConfirmPromotionHook), Checks{CheckConfirmPromotion: r})
		in.Status.CanaryWeight, in.Routes = 60, traffic.Weighted(60)
		return in
	}
	trafficIncrease := func(r Result) Input {
		return withChecks(withHooks(canary(), sluicev1beta1.ConfirmTrafficIncreaseHook), Checks{CheckConfirmTrafficIncrease: r})
	}
	waitingForTraffic := func(r Result) Input {
		in := trafficIncrease(r)
		in.Status.Conditions = Step(trafficIncrease(r)).Status.Conditions
		return in
	}
	tests := []struct {
		name string
		in   Input
		want sluicev1beta1.AlertSeverity
	}{
		{"a closed confirm-rollout gate alerts a warning", rollout(closed(false)), sluicev1beta1.SeverityWarn},
		{"a muted confirm-rollout gate records its event without an alert", rollout(closed(true)), ""},
		{"a closed confirm-promotion gate alerts a warning", promotion(closed(false)), sluicev1beta1.SeverityWarn},
		{"a muted confirm-promotion gate records its event without an alert", promotion(closed(true)), ""},
		{"a closed confirm-traffic-increase gate alerts a warning when the wait begins", trafficIncrease(closed(false)), sluicev1beta1.SeverityWarn},
		{"a closed confirm-traffic-increase gate alerts once, not at every step", waitingForTraffic(closed(false)), ""},
		{"a muted confirm-traffic-increase gate records its event without an alert", trafficIncrease(closed(true)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var found bool
			for _, a := range Step(tt.in).Actions {
				if e, ok := a.(Emit); ok && e.Event.Reason == ReasonWaitingForApproval {
					found = true
					if e.Event.Severity != tt.want {
						t.Errorf("severity %q, want %q", e.Event.Severity, tt.want)
					}
				}
			}
			if !found {
				t.Fatal("no WaitingForApproval event")
			}
		})
	}
}

func TestAnAlertProviderThatIsNotReadyIsReportedAndHoldsNothing(t *testing.T) {
	const unready = "spec.analysis.alerts[0].providerRef: AlertProvider test/slack is not ready: SecretNotFound: Secret test/slack-url not found"
	reported := func() Input {
		in := canary()
		in.Alerts = &AlertsState{Unready: unready}
		return in
	}
	tests := []struct {
		name   string
		in     func() Input
		status metav1.ConditionStatus
		events []string
	}{
		{"a provider that is not ready is reported with a warning while the step goes on", reported, metav1.ConditionFalse,
			[]string{ReasonWeightIncreased, ReasonAlertProviderNotReady}},
		{"a provider already reported is not warned about again", func() Input {
			in := reported()
			in.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.AlertsReadyCondition, Status: metav1.ConditionFalse, Reason: ReasonAlertProviderNotReady, Message: unready}}
			return in
		}, metav1.ConditionFalse, []string{ReasonWeightIncreased}},
		{"ready providers are reported ready", func() Input {
			in := canary()
			in.Alerts = &AlertsState{}
			return in
		}, metav1.ConditionTrue, []string{ReasonWeightIncreased}},
		{"a Canary without alert providers has no AlertsReady condition", canary, "", []string{ReasonWeightIncreased}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Step(tt.in())
			c := meta.FindStatusCondition(out.Status.Conditions, sluicev1beta1.AlertsReadyCondition)
			switch {
			case tt.status == "" && c != nil:
				t.Errorf("AlertsReady %+v, want none", c)
			case tt.status != "" && (c == nil || c.Status != tt.status):
				t.Errorf("AlertsReady %+v, want %s", c, tt.status)
			}
			if out.Status.CanaryWeight != 40 {
				t.Errorf("weight %d: the alert providers held the step", out.Status.CanaryWeight)
			}
			var events []string
			for _, a := range out.Actions {
				if e, ok := a.(Emit); ok {
					events = append(events, e.Event.Reason)
				}
			}
			if !reflect.DeepEqual(events, tt.events) {
				t.Errorf("events %v, want %v", events, tt.events)
			}
		})
	}
}
