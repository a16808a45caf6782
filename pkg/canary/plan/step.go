package plan

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// Step decides the Canary's next status and the actions that lead there.
func Step(in Input) Output {
	s := &stepper{in: in, st: *in.Status.DeepCopy()}
	s.run()
	if s.need != nil {
		return Output{Need: s.need}
	}
	s.finish()
	return Output{Status: s.st, Actions: s.actions, RequeueAfter: s.requeue}
}

type stepper struct {
	in      Input
	st      sluicev1beta1.CanaryStatus
	actions []Action
	need    *Need
	requeue time.Duration
	// message says what is happening, for the Ready condition.
	message string
	// reason, when set, replaces the phase as the Ready reason: a
	// ReleasePolicy's freeze or queue.
	reason string
	// settling says what a rolled-back Canary still does to put production
	// back (traffic onto a primary that is not ready yet). It goes to the
	// Reconciling condition, so that Ready keeps the rollback's reason.
	settling string
	// problem, when set, keeps the Canary from moving on.
	problem   *Problem
	suspended bool
	// paused is set while a manual pause holds the Canary.
	paused bool
	// approved is set when a promote request approves the gates of this
	// step.
	approved bool
	// step, when set, is the analysis step this decision ran, for the
	// history.
	step *sluicev1beta1.StepRecord
}

func (s *stepper) run() {
	in := s.in
	switch {
	case in.Deleting:
		s.terminate()
		return
	case in.Blocked != nil:
		s.problem = in.Blocked
	case !in.Target.Exists:
		s.problem = &Problem{Reason: ReasonTargetNotFound, Message: fmt.Sprintf("spec.targetRef: target %s not found", s.target())}
	}
	if s.problem != nil {
		if s.st.Phase == "" {
			// kubectl shows the phase: a blocked Canary says it has not
			// initialized rather than nothing.
			s.setPhase(sluicev1beta1.CanaryPhaseInitializing)
		}
		switch {
		case !s.pending():
		case in.Request.Invalid != "":
			// What is wrong with the request comes first: it stays wrong
			// once the problem is fixed.
			s.refuse(in.Request.Invalid)
		case s.problem.Routable && in.Request.Action == sluicev1beta1.RequestAbort:
			// The way out of a rollout whose analysis broke.
			s.handleRequest()
		default:
			s.refuse(s.problem.Message)
		}
		return
	}
	if s.handleRequest() {
		return
	}
	switch {
	case in.Spec.Suspend:
		s.suspended = true
		return
	case s.st.Paused != nil:
		s.paused = true
		return
	}
	switch s.st.Phase {
	case "", sluicev1beta1.CanaryPhaseInitializing:
		s.initialize()
	case sluicev1beta1.CanaryPhaseWaiting:
		s.waiting()
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion:
		s.progressing()
	case sluicev1beta1.CanaryPhasePromoting:
		s.promoting()
	case sluicev1beta1.CanaryPhaseFinalising:
		s.finalising()
	default:
		s.idle()
	}
}

// initialize creates the primary and, once it is ready, moves production
// traffic to it and scales the target to zero.
func (s *stepper) initialize() {
	in := s.in
	s.setPhase(sluicev1beta1.CanaryPhaseInitializing)
	if !in.Primary.Exists {
		s.do(CreatePrimary{})
		s.message = fmt.Sprintf("Creating %s from %s", s.primary(), s.target())
		return
	}
	if !in.Primary.Ready.Ready {
		if s.deadlinePassed(in.Primary.Ready) {
			// The target still serves and nothing was taken over: keep it so
			// and say why, rather than failing a release that never started.
			s.problem = &Problem{Reason: "PrimaryNotReady", Message: fmt.Sprintf("%s not ready within %s: %s", s.primary(), in.Spec.ProgressDeadline, in.Primary.Ready.Message)}
			return
		}
		s.message = s.waitingFor(s.primary())
		s.requeueDeadline(in.Primary.Ready)
		return
	}
	s.do(TakeOverTraffic{}, ScaleTarget{Up: false})
	rev := in.Primary.Revision
	s.st.LastPromotedSpec, s.st.LastTrackedRevision = rev, rev
	if rev == in.Target.Revision {
		s.st.LastAppliedSpec, s.st.TrackedConfigs = in.Target.PodTemplateHash, in.Target.Configs
	}
	s.resetAnalysis()
	s.setPhase(sluicev1beta1.CanaryPhaseInitialized)
	s.emit(Event{Reason: ReasonInitialized, Severity: sluicev1beta1.SeverityInfo,
		Message: fmt.Sprintf("Initialization done: %s serves production, %s is scaled to zero", s.primary(), s.target())})
}

// idle waits for a new revision. After a rollback it first makes sure the
// primary carries all traffic and the canary is at zero, in that order.
func (s *stepper) idle() {
	in := s.in
	if s.st.LastPromotedSpec == "" {
		s.initialize()
		return
	}
	if s.st.Phase == sluicev1beta1.CanaryPhaseTerminating || s.st.Phase == sluicev1beta1.CanaryPhaseTerminated {
		s.setPhase(sluicev1beta1.CanaryPhaseInitialized)
	}
	if !s.primaryOnly() {
		return
	}
	rev := in.Target.Revision
	switch {
	case rev != s.st.LastTrackedRevision && rev != s.st.LastPromotedSpec:
		s.startRollout()
		return
	case rev != s.st.LastTrackedRevision:
		s.backToPromoted()
	}
	if !in.Target.ScaledToZero {
		s.do(ScaleTarget{Up: false})
	}
}

// primaryOnly moves all traffic back to the primary if the canary still
// gets some, but only onto a ready primary. It reports whether traffic is
// on the primary alone.
func (s *stepper) primaryOnly() bool {
	if s.in.Routes.IsPrimaryOnly() {
		return true
	}
	if !s.in.Primary.Ready.Ready {
		msg := fmt.Sprintf("Waiting for %s to become ready before moving traffic back to it", s.primary())
		if s.st.Phase == sluicev1beta1.CanaryPhaseFailed {
			s.settling = msg
		} else {
			s.message = msg
		}
		return false
	}
	s.do(SetRoutes{Routes: traffic.PrimaryOnly()})
	s.st.CanaryWeight = 0
	return true
}

// backToPromoted records that the target went back to the revision
// production runs: there is nothing to release.
func (s *stepper) backToPromoted() {
	in := s.in
	s.st.LastTrackedRevision = in.Target.Revision
	s.st.LastAppliedSpec, s.st.TrackedConfigs = in.Target.PodTemplateHash, in.Target.Configs
	s.st.Admission = nil
	s.resetAnalysis()
	s.expireCookies()
	if s.st.Phase != sluicev1beta1.CanaryPhaseSucceeded && s.st.Phase != sluicev1beta1.CanaryPhaseInitialized {
		s.setPhase(sluicev1beta1.CanaryPhaseInitialized)
		s.emit(Event{Reason: ReasonReverted,
			Message: fmt.Sprintf("%s is back to the revision %s runs; nothing to release", s.target(), s.primary())})
	}
}

// startRollout begins the analysis of the target's revision, once no
// ReleasePolicy freezes it, its confirm-rollout gates agree and the
// policies that limit concurrent releases admit it. A release restarted
// by a newer revision keeps its slot.
func (s *stepper) startRollout() {
	in := s.in
	if s.frozenStart() {
		return
	}
	if !s.ask(CheckConfirmRollout) {
		return
	}
	restart := s.st.Phase == sluicev1beta1.CanaryPhaseProgressing || s.st.Phase == sluicev1beta1.CanaryPhaseWaitingPromotion
	gate := s.result(CheckConfirmRollout)
	if gate.Outcome == Pass && !restart && !s.admitted() {
		return
	}
	s.st.LastTrackedRevision = in.Target.Revision
	s.resetAnalysis()
	s.st.Metrics = nil
	s.markStep()
	s.requeueIn(in.Spec.Interval)
	if r := gate; r.Outcome != Pass {
		if s.primaryOnly() && !in.Target.ScaledToZero {
			s.do(ScaleTarget{Up: false})
		}
		s.message = "Waiting for approval to start the rollout: " + r.Message
		if s.st.Phase != sluicev1beta1.CanaryPhaseWaiting || s.held() {
			s.setPhase(sluicev1beta1.CanaryPhaseWaiting)
			s.emit(Event{Reason: ReasonWaitingForApproval, Message: s.message, Severity: alertUnless(r.Muted)})
		}
		return
	}
	if !in.Routes.IsPrimaryOnly() {
		s.do(SetRoutes{Routes: traffic.PrimaryOnly()})
	}
	s.do(ScaleTarget{Up: true})
	s.st.LastAppliedSpec, s.st.TrackedConfigs = in.Target.PodTemplateHash, in.Target.Configs
	s.started()
	s.newCookies()
	now := metav1.NewTime(in.Now)
	s.st.RolloutStartTime = &now
	s.openRelease()
	s.setPhase(sluicev1beta1.CanaryPhaseProgressing)
	msg := fmt.Sprintf("New revision %s detected; scaling up %s", in.Target.Revision, s.target())
	if restart {
		msg = fmt.Sprintf("New revision %s detected during the analysis; restarting it", in.Target.Revision)
	}
	s.emit(Event{Reason: ReasonNewRevision, Message: msg, Severity: sluicev1beta1.SeverityInfo})
}

// waiting polls the confirm-rollout gates once an interval.
func (s *stepper) waiting() {
	in := s.in
	switch rev := in.Target.Revision; {
	case rev == s.st.LastPromotedSpec:
		s.backToPromoted()
	case rev != s.st.LastTrackedRevision:
		s.startRollout()
	case s.approved || s.held() || s.freeze() != nil || s.stepDue():
		// A revision that waits for a ReleasePolicy is looked at on every
		// wake-up: a slot that frees, a freeze that ends.
		s.startRollout()
	default:
		s.message = "Waiting for approval to start the rollout"
	}
}

// progressing runs one analysis step per interval and moves traffic as the
// strategy says, while the canary and the primary are ready.
func (s *stepper) progressing() {
	in := s.in
	if rev := in.Target.Revision; rev != s.st.LastTrackedRevision {
		if rev == s.st.LastPromotedSpec {
			if s.primaryOnly() {
				s.do(ScaleTarget{Up: false})
				s.backToPromoted()
			}
			return
		}
		s.startRollout()
		return
	}
	if in.Target.ScaledToZero {
		s.do(ScaleTarget{Up: true})
	}
	if !in.Primary.Ready.Ready {
		if s.deadlinePassed(in.Primary.Ready) {
			s.rollback(fmt.Sprintf("%s not ready: %s", s.primary(), in.Primary.Ready.Message))
			return
		}
		s.message = s.waitingFor(s.primary())
		s.requeueDeadline(in.Primary.Ready)
		return
	}
	if !in.Target.Ready.Ready {
		if s.deadlinePassed(in.Target.Ready) {
			s.rollback(fmt.Sprintf("canary %s not ready within progressDeadlineSeconds (%s): %s", s.target(), in.Spec.ProgressDeadline, in.Target.Ready.Message))
			return
		}
		s.message = s.waitingFor("canary " + s.target())
		s.requeueDeadline(in.Target.Ready)
		return
	}
	if in.Spec.SkipAnalysis {
		if !s.holdInFlight() {
			s.promote()
		}
		return
	}
	if !s.approved && !s.stepDue() {
		s.stillHeld()
		return
	}
	if s.st.FailedChecks >= in.Spec.Threshold {
		s.rollback(fmt.Sprintf("failed checks threshold reached (%d)", s.st.FailedChecks))
		return
	}
	// A first step that a freeze held has run: the next one analyses.
	first := s.st.Phase == sluicev1beta1.CanaryPhaseProgressing && s.st.CanaryWeight == 0 && s.st.Iterations == 0 && !in.Routes.Mirror && s.st.FrozenSince == nil
	checks := []Check{CheckRollback, CheckRollout, CheckMetrics}
	if first {
		// Flagger's order: the first step runs the pre-rollout hooks in
		// place of the analysis.
		checks = []Check{CheckRollback, CheckPreRollout}
	}
	if !s.ask(checks...) {
		return
	}
	if r, ok := in.Checks[CheckMetrics]; ok {
		s.st.Metrics = r.Metrics
	}
	s.analysed()
	if r := s.result(CheckRollback); r.Outcome == Fail {
		s.rollback(r.Message)
		return
	}
	for _, c := range checks[1:] {
		switch r := s.result(c); r.Outcome {
		case Fail:
			s.st.HoldingSince = nil
			s.failedCheck(r.Message)
			return
		case Hold:
			s.holdForData(r.Message)
			return
		}
	}
	s.st.HoldingSince = nil
	if s.holdInFlight() {
		return
	}
	s.st.FrozenSince = nil
	s.advance()
}

// advance moves traffic one step after a passed analysis step.
func (s *stepper) advance() {
	in := s.in
	target := s.target()
	switch in.Spec.Strategy {
	case Canary:
		if in.Spec.Mirror && s.st.CanaryWeight == 0 && !in.Routes.Mirror {
			s.do(SetRoutes{Routes: traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: in.Spec.MirrorWeight}})
			s.stepped(Event{Reason: ReasonMirroring, Message: fmt.Sprintf("Mirroring traffic to %s before shifting any", target)})
			return
		}
		if s.st.CanaryWeight < in.Spec.MaxWeight {
			if !s.ask(CheckConfirmTrafficIncrease) {
				return
			}
			if r := s.result(CheckConfirmTrafficIncrease); r.Outcome != Pass {
				s.waitForTrafficApproval(r)
				return
			}
			s.st.CanaryWeight = in.Spec.NextWeight(s.st.CanaryWeight)
			s.do(SetRoutes{Routes: traffic.Weighted(s.st.CanaryWeight)})
			s.stepped(Event{Reason: ReasonWeightIncreased, Message: fmt.Sprintf("Advance %s canary weight %d", target, s.st.CanaryWeight)})
			return
		}
	case ABTesting, BlueGreen:
		if s.st.Iterations < in.Spec.Iterations {
			routes := traffic.PrimaryOnly()
			if in.Spec.Strategy == ABTesting {
				routes.Match = true
			} else if in.Spec.Mirror {
				routes.Mirror, routes.MirrorWeight = true, in.Spec.MirrorWeight
			}
			if routes != in.Routes {
				s.do(SetRoutes{Routes: routes})
			}
			s.st.Iterations++
			s.stepped(Event{Reason: ReasonIterationPassed, Message: fmt.Sprintf("Advance %s canary iteration %d/%d", target, s.st.Iterations, in.Spec.Iterations)})
			return
		}
	}
	s.promotionGate()
}

// promotionGate promotes once the confirm-promotion gates agree.
func (s *stepper) promotionGate() {
	if !s.ask(CheckConfirmPromotion) {
		return
	}
	if r := s.result(CheckConfirmPromotion); r.Outcome != Pass {
		s.markStep()
		s.requeueIn(s.in.Spec.Interval)
		s.message = "Waiting for approval to promote: " + r.Message
		if s.st.Phase != sluicev1beta1.CanaryPhaseWaitingPromotion {
			s.setPhase(sluicev1beta1.CanaryPhaseWaitingPromotion)
			s.emit(Event{Reason: ReasonWaitingForApproval, Message: s.message, Severity: alertUnless(r.Muted)})
		}
		return
	}
	s.promote()
}

// promote copies the canary's spec to the primary. Blue/green first moves
// all traffic to the canary, so that the primary's rolling update drops
// nothing.
func (s *stepper) promote() {
	in := s.in
	// A canary that is not ready (a promote --full from a gate) gets no
	// traffic.
	if in.Spec.Strategy == BlueGreen && in.Capabilities.Weights && !in.Spec.SkipAnalysis && in.Target.Ready.Ready && !in.Target.ScaledToZero {
		s.st.CanaryWeight = 100
		s.do(SetRoutes{Routes: traffic.Weighted(100)})
	}
	s.do(Promote{})
	s.setPhase(sluicev1beta1.CanaryPhasePromoting)
	s.markStep()
	s.emit(Event{Reason: ReasonPromoting, Message: fmt.Sprintf("Copying %s template spec to %s", s.target(), s.primary())})
}

// promoting waits for the primary to run the promoted revision, then moves
// traffic back to it, step by step with stepWeightPromotion.
func (s *stepper) promoting() {
	in := s.in
	if in.Primary.Revision != s.st.LastTrackedRevision {
		// The copy was not seen yet, or not made before a restart; it is
		// idempotent.
		s.do(Promote{})
		s.message = fmt.Sprintf("Copying %s template spec to %s", s.target(), s.primary())
		return
	}
	if !in.Primary.Ready.Ready {
		if s.deadlinePassed(in.Primary.Ready) {
			// Traffic stays where it is: moving it onto a primary that cannot
			// roll out would drop it.
			msg := fmt.Sprintf("Promotion failed: %s not ready: %s", s.primary(), in.Primary.Ready.Message)
			s.setPhase(sluicev1beta1.CanaryPhaseFailed)
			s.message = msg
			s.emit(Event{Warning: true, Reason: ReasonPromotionFailed, Message: msg, Severity: sluicev1beta1.SeverityError})
			s.endRelease(ReleaseFailed, msg)
			return
		}
		s.message = fmt.Sprintf("Waiting for %s to roll out the promoted revision", s.primary())
		s.requeueDeadline(in.Primary.Ready)
		return
	}
	if in.Capabilities.Weights && in.Spec.StepWeightPromotion > 0 && s.st.CanaryWeight > 0 {
		if !s.stepDue() {
			return
		}
		s.st.CanaryWeight = max(s.st.CanaryWeight-in.Spec.StepWeightPromotion, 0)
		s.do(SetRoutes{Routes: traffic.Weighted(s.st.CanaryWeight)})
		s.markStep()
		s.emit(Event{Reason: ReasonPromoting, Message: fmt.Sprintf("Advance %s primary weight %d", s.primary(), 100-s.st.CanaryWeight)})
		if s.st.CanaryWeight > 0 {
			s.requeueIn(in.Spec.Interval)
			return
		}
	} else if !in.Routes.IsPrimaryOnly() || s.st.CanaryWeight > 0 {
		s.st.CanaryWeight = 0
		s.do(SetRoutes{Routes: traffic.PrimaryOnly()})
	}
	// Finalising holds for one interval with all traffic on the primary,
	// as Flagger's does: requests still in flight to the canary finish
	// before it is scaled down, and whoever watches the phase sees it.
	s.setPhase(sluicev1beta1.CanaryPhaseFinalising)
	s.markStep()
	s.requeueIn(in.Spec.Interval)
}

// finalising scales the canary down and records the release, one interval
// after the primary took all traffic back.
func (s *stepper) finalising() {
	in := s.in
	if !s.stepDue() {
		return
	}
	s.do(ScaleTarget{Up: false})
	result := ReleaseSucceeded
	if in.Spec.SkipAnalysis {
		result = ReleaseSkipped
	}
	s.endRelease(result, fmt.Sprintf("Promoted: %s runs revision %s", s.primary(), s.st.LastTrackedRevision))
	s.st.LastPromotedSpec = s.st.LastTrackedRevision
	s.resetAnalysis()
	s.expireCookies()
	s.setPhase(sluicev1beta1.CanaryPhaseSucceeded)
	s.emit(Event{Reason: ReasonPromoted, Severity: sluicev1beta1.SeverityInfo,
		Message: fmt.Sprintf("Promotion completed! %s runs revision %s; %s scaled to zero", s.primary(), s.st.LastPromotedSpec, s.target())})
}

// failedCheck counts a failed step and rolls back at the threshold.
func (s *stepper) failedCheck(msg string) {
	s.st.FailedChecks++
	s.markStep()
	s.message = "Halt advancement: " + msg
	s.emit(Event{Warning: true, Reason: ReasonChecksFailed, Message: fmt.Sprintf("Halt %s advancement (failed checks %d/%d): %s", s.target(), s.st.FailedChecks, s.in.Spec.Threshold, msg)})
	if s.st.FailedChecks >= s.in.Spec.Threshold {
		s.rollback(fmt.Sprintf("failed checks threshold reached (%d): %s", s.st.FailedChecks, msg))
		return
	}
	s.requeueIn(s.in.Spec.Interval)
}

// resetAnalysis starts the count of an analysis afresh.
func (s *stepper) resetAnalysis() {
	s.st.CanaryWeight, s.st.FailedChecks, s.st.Iterations = 0, 0, 0
	s.st.HoldingSince, s.st.FrozenSince = nil, nil
}

// holdForData waits for metric data that is missing under noData: hold,
// without counting the step as failed, but not past the progress
// deadline: a hold never ends in a promotion on its own.
func (s *stepper) holdForData(msg string) {
	now := metav1.NewTime(s.in.Now)
	if s.st.HoldingSince == nil {
		s.st.HoldingSince = &now
	}
	if held := s.in.Now.Sub(s.st.HoldingSince.Time); held >= s.in.Spec.ProgressDeadline {
		s.rollback(fmt.Sprintf("metrics had no data for %s, longer than progressDeadlineSeconds (%s): %s", held.Round(time.Second), s.in.Spec.ProgressDeadline, msg))
		return
	}
	s.hold(msg)
}

// waitForTrafficApproval holds the weight while a confirm-traffic-increase
// gate says no. The wait is alerted once, when it begins, unless the
// gate's hooks mute their alerts.
func (s *stepper) waitForTrafficApproval(r Result) {
	msg := "traffic increase not confirmed: " + r.Message
	previous := meta.FindStatusCondition(s.st.Conditions, sluicev1beta1.ReadyCondition)
	began := previous == nil || previous.Message != "Halt advancement: "+msg
	s.markStep()
	s.requeueIn(s.in.Spec.Interval)
	s.message = "Halt advancement: " + msg
	e := Event{Reason: ReasonWaitingForApproval, Message: fmt.Sprintf("Halt %s advancement: %s", s.target(), msg)}
	if began {
		e.Severity = alertUnless(r.Muted)
	}
	s.emit(e)
}

// alertUnless is the severity of a gate's wait: a warning, or none when
// its hooks muted their alerts.
func alertUnless(muted bool) sluicev1beta1.AlertSeverity {
	if muted {
		return ""
	}
	return sluicev1beta1.SeverityWarn
}

// hold waits a step without counting it as failed.
func (s *stepper) hold(msg string) {
	s.markStep()
	s.requeueIn(s.in.Spec.Interval)
	s.message = "Halt advancement: " + msg
	s.emit(Event{Reason: ReasonHalted, Message: fmt.Sprintf("Halt %s advancement: %s", s.target(), msg)})
}

// rollback ends the release as failed. Traffic moves back only onto a
// ready primary; an autoscaled primary is grown first, so that it can carry
// what the canary carried (flagger#869). The canary is scaled down only once
// it gets no traffic.
func (s *stepper) rollback(reason string) {
	in := s.in
	s.setPhase(sluicev1beta1.CanaryPhaseFailed)
	s.expireCookies()
	s.message = "Rolled back: " + reason
	s.emit(Event{Warning: true, Reason: ReasonRolledBack, Severity: sluicev1beta1.SeverityError,
		Message: fmt.Sprintf("Rolling back %s: %s", s.target(), reason)})
	s.endRelease(ReleaseFailed, "Rolled back: "+reason)
	if in.Spec.Autoscaled && in.Routes.Canary > 0 {
		s.do(ScalePrimaryForRollback{})
		// Traffic moves once the grown primary is ready; idle sees to it.
		return
	}
	if s.primaryOnly() {
		s.do(ScaleTarget{Up: false})
	}
}

// terminate reverts the Canary's changes before its deletion: the target
// serves again, then the apex Service points back at it.
func (s *stepper) terminate() {
	in := s.in
	if s.st.Phase != sluicev1beta1.CanaryPhaseTerminating {
		s.setPhase(sluicev1beta1.CanaryPhaseTerminating)
		s.emit(Event{Reason: ReasonTerminating, Message: fmt.Sprintf("Reverting %s before the Canary's deletion", s.target())})
	}
	if in.Target.Exists {
		if in.Target.ScaledToZero {
			s.do(RevertTarget{})
			s.message = fmt.Sprintf("Scaling %s back up", s.target())
			return
		}
		if !in.Target.Ready.Ready && !s.deadlinePassed(in.Target.Ready) {
			s.message = fmt.Sprintf("Waiting for %s to serve again", s.target())
			s.requeueDeadline(in.Target.Ready)
			return
		}
	}
	s.do(RevertRouting{}, RemoveFinalizer{})
	s.setPhase(sluicev1beta1.CanaryPhaseTerminated)
	s.emit(Event{Reason: ReasonTerminated, Message: fmt.Sprintf("%s reverted", s.target())})
}

// newCookies names the session affinity cookies of a new rollout after its
// revision, so that every rollout has its own and a restart keeps them.
func (s *stepper) newCookies() {
	if s.in.Spec.CookieName == "" {
		return
	}
	value := s.in.Target.Revision
	if len(value) > 16 {
		value = value[:16]
	}
	s.expireCookies()
	s.st.SessionAffinityCookie = s.in.Spec.CookieName + "=" + value
	if s.in.Spec.PrimaryCookieName != "" {
		s.st.PrimarySessionAffinityCookie = s.in.Spec.PrimaryCookieName + "=" + value
	}
}

// expireCookies ends a rollout's session affinity: its canary cookie
// becomes the previous one, which routers expire in users' browsers.
func (s *stepper) expireCookies() {
	if s.st.SessionAffinityCookie != "" {
		s.st.PreviousSessionAffinityCookie = s.st.SessionAffinityCookie
	}
	s.st.SessionAffinityCookie, s.st.PrimarySessionAffinityCookie = "", ""
}

// waitingFor is the message of a wait for a workload's rollout. It leaves
// out the replica counts, which the workload's own status shows: they would
// turn every pod becoming ready into a status write.
func (s *stepper) waitingFor(what string) string {
	return fmt.Sprintf("Waiting for %s to become ready", what)
}

// stepped records a passed step that moved traffic or counted an
// iteration.
func (s *stepper) stepped(e Event) {
	s.markStep()
	s.requeueIn(s.in.Spec.Interval)
	s.message = e.Message
	s.emit(e)
}

// ask reports whether the answers to the checks are in; if not, it asks
// for the ones configured on the Canary. Unconfigured checks pass.
func (s *stepper) ask(checks ...Check) bool {
	var missing []Check
	for _, c := range checks {
		if _, ok := s.in.Checks[c]; !ok && s.configured(c) && !s.approvedGate(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return true
	}
	s.need = &Need{Step: s.stepID(), Checks: missing}
	return false
}

func (s *stepper) result(c Check) Result {
	if s.approvedGate(c) {
		return Result{Outcome: Pass, Message: "approved" + s.by()}
	}
	if r, ok := s.in.Checks[c]; ok {
		return r
	}
	return Result{Outcome: Pass}
}

func (s *stepper) configured(c Check) bool {
	if c == CheckMetrics {
		return s.in.Spec.Metrics > 0
	}
	return s.in.Spec.hasHooks(sluicev1beta1.HookType(c))
}

// stepID names the decision point, so that answers are never carried over
// to another step.
func (s *stepper) stepID() string {
	var at int64
	if s.st.LastStepTime != nil {
		at = s.st.LastStepTime.Unix()
	}
	return fmt.Sprintf("%s/%s/%d/w%d/i%d/f%d", s.in.Target.Revision, s.st.Phase, at, s.st.CanaryWeight, s.st.Iterations, s.st.FailedChecks)
}

// stepDue reports whether an interval has passed since the last step, and
// schedules the next decision when it has not.
func (s *stepper) stepDue() bool {
	if s.st.LastStepTime == nil {
		return true
	}
	wait := s.st.LastStepTime.Add(s.in.Spec.Interval).Sub(s.in.Now)
	if wait <= 0 {
		return true
	}
	s.requeueIn(wait)
	return false
}

func (s *stepper) markStep() {
	now := metav1.NewTime(s.in.Now)
	s.st.LastStepTime = &now
}

// deadlinePassed reports whether a workload has been not ready for longer
// than the progress deadline, counted from when it stopped being ready or,
// when that is unknown, from the start of the current phase.
func (s *stepper) deadlinePassed(r Readiness) bool {
	return r.Stuck || !s.in.Now.Before(s.notReadySince(r).Add(s.in.Spec.ProgressDeadline))
}

func (s *stepper) requeueDeadline(r Readiness) {
	s.requeueIn(s.notReadySince(r).Add(s.in.Spec.ProgressDeadline).Sub(s.in.Now))
}

func (s *stepper) notReadySince(r Readiness) time.Time {
	since := s.st.LastTransitionTime.Time
	if r.NotReadySince.After(since) {
		since = r.NotReadySince
	}
	return since
}

func (s *stepper) releaseDuration() time.Duration {
	if s.st.RolloutStartTime == nil {
		return 0
	}
	return s.in.Now.Sub(s.st.RolloutStartTime.Time)
}

func (s *stepper) setPhase(p sluicev1beta1.CanaryPhase) {
	if s.st.Phase != p {
		s.st.Phase = p
		s.st.LastTransitionTime = metav1.NewTime(s.in.Now)
	}
}

func (s *stepper) do(actions ...Action) { s.actions = append(s.actions, actions...) }

func (s *stepper) emit(e Event) { s.do(Emit{Event: e}) }

func (s *stepper) requeueIn(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

func (s *stepper) target() string  { return s.in.Spec.TargetName }
func (s *stepper) primary() string { return s.in.Spec.TargetName + "-primary" }

// inFlight reports whether a phase belongs to a rollout in progress.
func inFlight(p sluicev1beta1.CanaryPhase) bool {
	return slices.Contains([]sluicev1beta1.CanaryPhase{
		sluicev1beta1.CanaryPhaseInitializing, sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.CanaryPhaseProgressing,
		sluicev1beta1.CanaryPhaseWaitingPromotion, sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising,
		sluicev1beta1.CanaryPhaseTerminating,
	}, p)
}
