package plan

import (
	"fmt"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// The status keeps a bounded history: people and the dashboard read the
// last releases and the steps of the latest one from the Canary itself,
// and the operator's cache of every Canary stays small.
const (
	maxReleases = 10
	maxSteps    = 100
	// maxStepMessage bounds what a step keeps of a webhook's or a check's
	// message; a webhook may answer with a whole page.
	maxStepMessage = 256
)

// historyChecks are the checks a step record lists under webhooks, in the
// order they run; metrics have their own list.
var historyChecks = []Check{CheckConfirmRollout, CheckPreRollout, CheckRollback, CheckRollout, CheckConfirmTrafficIncrease, CheckConfirmPromotion}

// openRelease records the start of the target revision's release. A
// release still in flight was superseded by it.
func (s *stepper) openRelease() {
	rev := s.in.Target.Revision
	s.closeRelease(sluicev1beta1.ReleaseSuperseded, fmt.Sprintf("Superseded by revision %s", rev))
	record := sluicev1beta1.ReleaseRecord{Revision: rev, Outcome: sluicev1beta1.ReleaseProgressing, StartTime: metav1.NewTime(s.in.Now)}
	s.st.Releases = append([]sluicev1beta1.ReleaseRecord{record}, s.st.Releases...)
	if len(s.st.Releases) > maxReleases {
		s.st.Releases = s.st.Releases[:maxReleases]
	}
	s.st.Steps = nil
}

// endRelease ends the release in flight: it is counted for the metrics,
// its post-rollout hooks run, and the history says how it ended and why.
func (s *stepper) endRelease(result ReleaseResult, msg string) {
	s.do(RecordRelease{Result: result, Duration: s.releaseDuration()}, RunHooks{Type: sluicev1beta1.PostRolloutHook})
	outcome := sluicev1beta1.ReleasePromoted
	if result == ReleaseFailed {
		outcome = sluicev1beta1.ReleaseRolledBack
	}
	s.closeRelease(outcome, msg)
}

// closeRelease gives the release in flight its outcome. A release that
// began under an operator without history is recorded from the rollout's
// start time.
func (s *stepper) closeRelease(outcome sluicev1beta1.ReleaseOutcome, msg string) {
	if len(s.st.Releases) == 0 || s.st.Releases[0].Outcome != sluicev1beta1.ReleaseProgressing {
		if s.st.RolloutStartTime == nil || outcome == sluicev1beta1.ReleaseSuperseded {
			return
		}
		s.st.Releases = append([]sluicev1beta1.ReleaseRecord{{Revision: s.st.LastTrackedRevision, StartTime: *s.st.RolloutStartTime}}, s.st.Releases...)
		if len(s.st.Releases) > maxReleases {
			s.st.Releases = s.st.Releases[:maxReleases]
		}
	}
	end := metav1.NewTime(s.in.Now)
	r := &s.st.Releases[0]
	r.Outcome, r.EndTime, r.Message = outcome, &end, clip(msg)
}

// analysed notes the answers of an analysis step, to be recorded with
// the weight and phase the step ends with.
func (s *stepper) analysed() {
	step := &sluicev1beta1.StepRecord{Time: metav1.NewTime(s.in.Now), Outcome: sluicev1beta1.StepPass}
	worst := func(o Outcome) {
		switch {
		case o == Fail:
			step.Outcome = sluicev1beta1.StepFail
		case o == Hold && step.Outcome == sluicev1beta1.StepPass:
			step.Outcome = sluicev1beta1.StepHold
		}
	}
	if r, ok := s.in.Checks[CheckMetrics]; ok {
		worst(r.Outcome)
		for _, m := range r.Metrics {
			step.Metrics = append(step.Metrics, sluicev1beta1.StepMetric{Name: m.Name, Outcome: m.Outcome, Value: m.Value})
		}
	}
	for _, c := range historyChecks {
		r, ok := s.in.Checks[c]
		if !ok {
			continue
		}
		worst(r.Outcome)
		step.Webhooks = append(step.Webhooks, sluicev1beta1.StepWebhook{Type: string(c), Outcome: string(r.Outcome), Message: clip(r.Message)})
	}
	s.step = step
}

// recordStep appends the step of this decision to the history: an
// analysis step, or a traffic move without one (the promotion's steps
// back to the primary, the rollback's return to it).
func (s *stepper) recordStep() {
	step := s.step
	if step == nil {
		if s.st.CanaryWeight == s.in.Status.CanaryWeight || len(s.st.Releases) == 0 {
			return
		}
		step = &sluicev1beta1.StepRecord{Time: metav1.NewTime(s.in.Now), Outcome: sluicev1beta1.StepMove}
	}
	msg := s.message
	if msg == "" {
		msg = phaseMessage(s.st.Phase)
	}
	step.Phase, step.Weight, step.Message = s.st.Phase, s.st.CanaryWeight, clip(msg)
	s.st.Steps = append(s.st.Steps, *step)
	if n := len(s.st.Steps); n > maxSteps {
		s.st.Steps = s.st.Steps[n-maxSteps:]
	}
}

// clip shortens a message to maxStepMessage bytes, on a rune boundary.
func clip(msg string) string {
	if len(msg) <= maxStepMessage {
		return msg
	}
	cut := maxStepMessage - len("…")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}
