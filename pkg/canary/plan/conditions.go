package plan

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// phaseMessage describes a phase when nothing more specific is known.
func phaseMessage(p sluicev1beta1.CanaryPhase) string {
	switch p {
	case sluicev1beta1.CanaryPhaseInitialized:
		return "Initialization done; waiting for a new revision"
	case sluicev1beta1.CanaryPhaseWaiting:
		return "Waiting for approval to start the rollout"
	case sluicev1beta1.CanaryPhaseProgressing:
		return "Analysing the new revision"
	case sluicev1beta1.CanaryPhaseWaitingPromotion:
		return "Waiting for approval to promote"
	case sluicev1beta1.CanaryPhasePromoting:
		return "Promoting the new revision"
	case sluicev1beta1.CanaryPhaseFinalising:
		return "Scaling the canary down"
	case sluicev1beta1.CanaryPhaseSucceeded:
		return "Canary analysis completed successfully, promotion finished."
	case sluicev1beta1.CanaryPhaseFailed:
		return "Canary analysis failed, the canary is scaled to zero."
	case sluicev1beta1.CanaryPhaseTerminating:
		return "Reverting the Canary's changes"
	case sluicev1beta1.CanaryPhaseTerminated:
		return "The Canary's changes are reverted"
	}
	return "Creating the primary"
}

// finish sets observedGeneration and the conditions, which follow from the
// phase: Ready and Promoted for people and `kubectl wait`, Reconciling and
// Stalled for kstatus.
func (s *stepper) finish() {
	in := s.in
	s.recordStep()
	s.st.ObservedGeneration = in.Generation
	phase := s.st.Phase
	// A copy: setting the condition below changes the one in the list.
	previous := conditionCopy(s.st.Conditions, sluicev1beta1.ReadyCondition)

	ready := metav1.Condition{Type: sluicev1beta1.ReadyCondition, Reason: string(phase), Message: s.message}
	switch phase {
	case sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded:
		ready.Status = metav1.ConditionTrue
	case sluicev1beta1.CanaryPhaseFailed:
		ready.Status = metav1.ConditionFalse
	default:
		ready.Status = metav1.ConditionUnknown
	}
	if phase == "" {
		ready.Reason = string(sluicev1beta1.CanaryPhaseInitializing)
	}
	if s.reason != "" {
		ready.Reason = s.reason
	}
	if s.suspended {
		ready.Reason, ready.Message = ReasonSuspended, "Suspended: no rollout moves until spec.suspend is unset"
	}
	if s.paused {
		ready.Reason, ready.Message = ReasonPaused, fmt.Sprintf("Paused%s: no step, promotion or new rollout until it is resumed", by(s.st.Paused.By))
	}
	if s.problem != nil {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, s.problem.Reason, s.problem.Message
	}
	if ready.Message == "" {
		// Keep the account of the last thing that happened until something
		// else does.
		if previous != nil && previous.Reason == ready.Reason && !s.refusal(previous.Message) {
			ready.Message = previous.Message
		} else {
			ready.Message = phaseMessage(phase)
		}
	}

	promoted := metav1.Condition{Type: sluicev1beta1.PromotedCondition, Status: metav1.ConditionUnknown, Reason: ready.Reason, Message: phaseMessage(phase)}
	switch phase {
	case sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded:
		promoted.Status = metav1.ConditionTrue
	case sluicev1beta1.CanaryPhaseFailed:
		promoted.Status = metav1.ConditionFalse
	}
	if phase != "" {
		promoted.Reason = string(phase)
	}

	s.setCondition(ready)
	s.setCondition(promoted)
	switch {
	case s.problem != nil || s.suspended:
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.ReconcilingCondition)
	case inFlight(phase):
		s.setCondition(metav1.Condition{Type: sluicev1beta1.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: ready.Reason, Message: ready.Message})
	case s.settling != "":
		s.setCondition(metav1.Condition{Type: sluicev1beta1.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: ReasonRestoringTraffic, Message: s.settling})
	default:
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.ReconcilingCondition)
	}
	if s.problem != nil || phase == sluicev1beta1.CanaryPhaseFailed {
		s.setCondition(metav1.Condition{Type: sluicev1beta1.StalledCondition, Status: metav1.ConditionTrue, Reason: ready.Reason, Message: ready.Message})
	} else {
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.StalledCondition)
	}

	s.metricsCondition()
	s.alertsCondition()
	s.frozenCondition()
	s.requeueAtNextChange()

	// A problem or a suspension is worth an event when it begins or
	// changes, not at every reconcile.
	changed := previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message
	switch {
	case s.problem != nil && changed:
		s.emit(Event{Warning: true, Reason: s.problem.Reason, Message: s.problem.Message})
	case s.suspended && changed:
		s.emit(Event{Reason: ReasonSuspended, Message: ready.Message})
	}
}

// ReasonRestoringTraffic is the Reconciling reason of a rolled-back Canary
// that waits for its primary before moving traffic back to it.
const ReasonRestoringTraffic = "RestoringTraffic"

// ReasonProviderUnhealthy is the MetricsReady reason of a metric provider
// that failed its health probe.
const ReasonProviderUnhealthy = "ProviderUnhealthy"

// metricsCondition reports whether the Canary's metrics can run. A broken
// template also blocks, with its own event; an unhealthy provider only
// warns, once per change.
func (s *stepper) metricsCondition() {
	m := s.in.Metrics
	if m == nil {
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.MetricsReadyCondition)
		return
	}
	c := metav1.Condition{Type: sluicev1beta1.MetricsReadyCondition, Status: metav1.ConditionTrue, Reason: "MetricsReady",
		Message: "Every metric's query renders and its provider answers its health probe"}
	switch {
	case m.Problem != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, m.Problem.Reason, m.Problem.Message
	case m.Unhealthy != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonProviderUnhealthy, m.Unhealthy
		previous := meta.FindStatusCondition(s.st.Conditions, c.Type)
		if previous == nil || previous.Message != c.Message {
			s.emit(Event{Warning: true, Reason: ReasonProviderUnhealthy, Message: c.Message})
		}
	}
	s.setCondition(c)
}

// Reasons of the AlertsReady condition.
const (
	ReasonAlertsReady           = "AlertProvidersReady"
	ReasonAlertProviderNotReady = "AlertProviderNotReady"
)

// alertsCondition reports whether the Canary's alerts can reach people.
// A provider that is not ready warns once per change and holds nothing.
func (s *stepper) alertsCondition() {
	a := s.in.Alerts
	if a == nil {
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.AlertsReadyCondition)
		return
	}
	c := metav1.Condition{Type: sluicev1beta1.AlertsReadyCondition, Status: metav1.ConditionTrue, Reason: ReasonAlertsReady,
		Message: "Every AlertProvider of the Canary's alerts is ready"}
	if a.Unready != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonAlertProviderNotReady, a.Unready
		previous := meta.FindStatusCondition(s.st.Conditions, c.Type)
		if previous == nil || previous.Message != c.Message {
			s.emit(Event{Warning: true, Reason: ReasonAlertProviderNotReady, Message: c.Message})
		}
	}
	s.setCondition(c)
}

func (s *stepper) setCondition(c metav1.Condition) {
	c.ObservedGeneration = s.in.Generation
	c.LastTransitionTime = metav1.NewTime(s.in.Now)
	meta.SetStatusCondition(&s.st.Conditions, c)
}

// refusal reports whether msg is the answer to a refused request, which
// older versions kept in Ready: it is not how the Canary is.
func (s *stepper) refusal(msg string) bool {
	r := s.st.LastRequest
	return r != nil && r.Outcome == sluicev1beta1.RequestRefused && r.Message == msg
}

// conditionCopy is a copy of the condition of type typ, or nil.
func conditionCopy(conditions []metav1.Condition, typ string) *metav1.Condition {
	c := meta.FindStatusCondition(conditions, typ)
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}
