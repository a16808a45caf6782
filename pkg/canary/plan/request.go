package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Request is a manual request read from the Canary's request annotation.
type Request struct {
	sluicev1beta1.Request
	// Invalid, when set, says why the annotation could not be read; the
	// request is refused with it.
	Invalid string
}

// RequestFromAnnotation reads a sluice.dev/request annotation value. A
// value that does not parse is still a request, refused with the reason,
// and named by its digest: its text may be anything, and the digest is
// an id that the status can hold and that stays the same while the
// annotation does, so that it is answered once.
func RequestFromAnnotation(value string) *Request {
	r, err := sluicev1beta1.ParseRequest(value)
	if err != nil {
		sum := sha256.Sum256([]byte(value))
		return &Request{Request: sluicev1beta1.Request{ID: "sha256:" + hex.EncodeToString(sum[:6])}, Invalid: err.Error()}
	}
	return &Request{Request: r}
}

// Event reasons of manual requests.
const (
	ReasonPromoteRequested = "PromoteRequested"
	ReasonAbortRequested   = "AbortRequested"
	ReasonRetryRequested   = "RetryRequested"
	ReasonPaused           = "Paused"
	ReasonResumed          = "Resumed"
	ReasonRequestRefused   = "RequestRefused"
)

// handleRequest answers a manual request that was not answered yet. It
// reports true when the request decided this step, so that nothing else
// runs; false lets the step go on, with the request's effect (a pause, an
// approval, a retry) in place.
func (s *stepper) handleRequest() bool {
	if !s.pending() {
		return false
	}
	r := s.in.Request
	if r.Invalid != "" {
		s.refuse(r.Invalid)
		return false
	}
	if s.in.Spec.Suspend && r.Action != sluicev1beta1.RequestPause && r.Action != sluicev1beta1.RequestResume {
		s.refuse("spec.suspend is set: nothing moves until it is unset")
		return false
	}
	phase := s.st.Phase
	switch r.Action {
	case sluicev1beta1.RequestPause:
		if s.st.Paused == nil {
			s.st.Paused = &sluicev1beta1.PauseStatus{By: r.By, Since: metav1.NewTime(s.in.Now)}
		}
		s.accept(ReasonPaused, fmt.Sprintf("Paused %s%s: no step, promotion or new rollout until it is resumed", s.target(), s.by()))
		return false
	case sluicev1beta1.RequestResume:
		if s.st.Paused == nil {
			s.accept(ReasonResumed, fmt.Sprintf("%s was not paused; nothing to resume", s.target()))
			return false
		}
		s.st.Paused = nil
		// Time spent paused is not time without metric data.
		s.st.HoldingSince = nil
		s.accept(ReasonResumed, fmt.Sprintf("Resumed %s%s", s.target(), s.by()))
		return false
	case sluicev1beta1.RequestAbort:
		if !analysing(phase) {
			s.refuse(fmt.Sprintf("nothing to abort: the Canary is %s; abort applies while a revision waits or is analysed", phaseName(phase)))
			return false
		}
		s.st.Paused = nil
		s.accept(ReasonAbortRequested, fmt.Sprintf("Abort of %s requested%s", s.target(), s.by()))
		s.rollback("aborted" + s.by())
		return true
	case sluicev1beta1.RequestRetry:
		if phase != sluicev1beta1.CanaryPhaseFailed || s.in.Target.Revision == s.st.LastPromotedSpec {
			s.refuse(fmt.Sprintf("nothing to retry: the Canary is %s; retry applies to a revision that was rolled back", phaseName(phase)))
			return false
		}
		// Forgetting the revision makes it new again: the rollout starts
		// from the beginning, gates and all, once traffic is back on the
		// primary.
		s.st.LastTrackedRevision = ""
		s.accept(ReasonRetryRequested, fmt.Sprintf("Retry of revision %s requested%s", s.in.Target.Revision, s.by()))
		return false
	case sluicev1beta1.RequestPromote:
		return s.promoteRequest(r.Request)
	}
	return false
}

// promoteRequest handles promote: --full promotes now; without it, the
// gates that wait are approved and the next step runs now. The analysis
// of that step still has to pass.
func (s *stepper) promoteRequest(r sluicev1beta1.Request) bool {
	in, phase := s.in, s.st.Phase
	if s.refuseGoverned() {
		return false
	}
	if r.Full {
		failed := phase == sluicev1beta1.CanaryPhaseFailed && in.Target.Revision != s.st.LastPromotedSpec
		if !analysing(phase) && !failed {
			s.refuse(fmt.Sprintf("nothing to promote: the Canary is %s", phaseName(phase)))
			return false
		}
		if !in.Primary.Ready.Ready && !in.Spec.SkipAnalysis && phase != sluicev1beta1.CanaryPhaseFailed {
			// Promoting onto a primary that does not roll out would leave
			// production on a broken copy.
			s.refuse(fmt.Sprintf("%s is not ready: %s", s.primary(), in.Primary.Ready.Message))
			return false
		}
		s.st.Paused = nil
		s.st.LastTrackedRevision = in.Target.Revision
		s.st.LastAppliedSpec, s.st.TrackedConfigs = in.Target.PodTemplateHash, in.Target.Configs
		if s.st.RolloutStartTime == nil || phase == sluicev1beta1.CanaryPhaseFailed {
			now := metav1.NewTime(in.Now)
			s.st.RolloutStartTime = &now
			s.openRelease()
		}
		s.accept(ReasonPromoteRequested, fmt.Sprintf("Full promotion of %s requested%s: skipping the remaining steps", s.target(), s.by()))
		s.promote()
		return true
	}
	switch {
	case s.st.Paused != nil:
		s.refuse("the Canary is paused: resume it first, or promote with --full")
	case !analysing(phase):
		s.refuse(fmt.Sprintf("nothing waits for approval: the Canary is %s", phaseName(phase)))
	case in.Target.Revision != s.st.LastTrackedRevision:
		s.refuse(fmt.Sprintf("revision %s has not been seen yet; ask again once its rollout started", in.Target.Revision))
	case phase != sluicev1beta1.CanaryPhaseWaiting && !in.Target.Ready.Ready:
		// The step would only wait for the canary, and an approval is not
		// kept for a later one.
		s.refuse(fmt.Sprintf("canary %s is not ready yet (%s); ask again once it is, or promote with --full", s.target(), in.Target.Ready.Message))
	default:
		s.approved = true
		s.accept(ReasonPromoteRequested, fmt.Sprintf("Promotion of %s approved%s: the waiting gates pass and the next step runs now", s.target(), s.by()))
	}
	return false
}

// analysing reports whether a revision waits for a gate or is under
// analysis: what abort and promote act on.
func analysing(p sluicev1beta1.CanaryPhase) bool {
	return p == sluicev1beta1.CanaryPhaseWaiting || p == sluicev1beta1.CanaryPhaseProgressing || p == sluicev1beta1.CanaryPhaseWaitingPromotion
}

// approvedGate reports whether a check is a gate that a promote request
// approved for this step.
func (s *stepper) approvedGate(c Check) bool {
	return s.approved && (c == CheckConfirmRollout || c == CheckConfirmTrafficIncrease || c == CheckConfirmPromotion)
}

func (s *stepper) accept(reason, msg string) { s.answer(sluicev1beta1.RequestAccepted, reason, msg) }

func (s *stepper) refuse(msg string) {
	what := string(s.in.Request.Action)
	if what == "" {
		what = "request"
	}
	s.answer(sluicev1beta1.RequestRefused, ReasonRequestRefused, fmt.Sprintf("%s request%s refused: %s", what, s.by(), msg))
}

func (s *stepper) answer(outcome sluicev1beta1.RequestOutcome, reason, msg string) {
	r := s.in.Request
	s.st.LastRequest = &sluicev1beta1.RequestStatus{
		ID: r.ID, Action: r.Action, Full: r.Full, By: r.By,
		Outcome: outcome, Message: msg, Time: metav1.NewTime(s.in.Now),
	}
	if outcome == sluicev1beta1.RequestAccepted {
		// A refusal changed nothing: it is kept in status.lastRequest and
		// the event, not in Ready, which says how the Canary is.
		s.message = msg
	}
	s.emit(Event{Warning: outcome == sluicev1beta1.RequestRefused, Reason: reason, Message: msg})
}

// by names the requester in messages, as " by alice".
func (s *stepper) by() string { return by(s.in.Request.By) }

// by is " by user"; requests may come unnamed, and then the words are
// left out rather than name nobody.
func by(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

func phaseName(p sluicev1beta1.CanaryPhase) string {
	if p == "" {
		return string(sluicev1beta1.CanaryPhaseInitializing)
	}
	return string(p)
}

// pending reports whether a request waits for its answer.
func (s *stepper) pending() bool {
	r := s.in.Request
	return r != nil && (s.st.LastRequest == nil || s.st.LastRequest.ID != r.ID)
}
