package plan

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Gate is what the ReleasePolicies that match a Canary say at Input.Now.
type Gate struct {
	// Freeze, when set, is the freeze in force: a new revision waits
	// before its first step, and a release in flight holds unless the
	// freeze lets it finish.
	Freeze *Freeze
	// Limited is set when a matching policy sets maxConcurrentCanaries: a
	// new revision starts only once admitted, which Step asks for with a
	// Need.
	Limited bool
	// Admission is the answer to that Need; nil until it was asked.
	Admission *Admission
	// NextChange is when a freeze of a matching policy next begins or
	// ends, so that the Canary is looked at again then; zero when none
	// will.
	NextChange time.Time
}

// Freeze is a freeze in force.
type Freeze struct {
	// Policy names the ReleasePolicy.
	Policy string
	// Reason is the Frozen condition's reason: StopTheLine, FreezeWindow
	// or InvalidSchedule.
	Reason string
	// Field is what freezes (spec.stop, spec.freeze.windows[i],
	// spec.freeze.oneOff[i]) or, for InvalidSchedule, the field that
	// cannot be read.
	Field string
	// Why is the policy's reason, or for InvalidSchedule what is wrong.
	Why string
	// SetBy and SetAt say who stopped the line and when, for spec.stop.
	SetBy string
	SetAt time.Time
	// Until is when the freeze ends; zero when it lasts until someone
	// lifts it (spec.stop, or a schedule that cannot be read).
	Until time.Time
	// Finish lets a release in flight finish (inFlight: Finish).
	Finish bool
}

// Message describes the freeze for conditions, events and refusals. It
// holds no relative time, so that it stays the same from one look to the
// next and costs no status write.
func (f *Freeze) Message() string {
	switch f.Reason {
	case sluicev1beta1.ReasonStopTheLine:
		msg := fmt.Sprintf("ReleasePolicy %s stops the line (%s", f.Policy, f.Field)
		if f.SetBy != "" {
			msg += ", set by " + f.SetBy
		}
		if !f.SetAt.IsZero() {
			msg += " at " + f.SetAt.UTC().Format(time.RFC3339)
		}
		return msg + "): " + f.Why
	case sluicev1beta1.ReasonInvalidSchedule:
		return fmt.Sprintf("ReleasePolicy %s cannot read %s: %s; releases are frozen until it is fixed", f.Policy, f.Field, f.Why)
	}
	msg := fmt.Sprintf("ReleasePolicy %s freezes releases until %s (%s)", f.Policy, f.Until.Format("2006-01-02 15:04:05 MST"), f.Field)
	if f.Why != "" {
		msg += ": " + f.Why
	}
	return msg
}

// Admission is whether a new revision may start under the policies that
// limit its Canary.
type Admission struct {
	// Admitted is set when it may start now.
	Admitted bool
	// ArrivedAt is the revision's arrival, which orders the queue: kept
	// from status.admission, or the time of the first answer.
	ArrivedAt time.Time
	// DecidedAt is when the answer was given: an admitted revision is
	// recorded as admitted then, in the order the answers were given.
	DecidedAt time.Time
	// Policy names the policy it waits for when it is not admitted.
	Policy string
	// Position is its place in that policy's queue, from 1.
	Position int
	// Running is how many of that policy's Canaries hold a slot, of
	// Limit.
	Running, Limit int
}

// freeze is the freeze in force for the Canary, or nil.
func (s *stepper) freeze() *Freeze {
	if s.in.Release == nil {
		return nil
	}
	return s.in.Release.Freeze
}

// held reports whether the target's revision waits for a ReleasePolicy,
// frozen or queued, rather than for a confirm-rollout gate: it is looked
// at again at every wake-up, not once an interval.
func (s *stepper) held() bool {
	a := s.st.Admission
	if a == nil || a.AdmittedAt != nil || a.Revision != s.in.Target.Revision {
		return false
	}
	c := meta.FindStatusCondition(s.st.Conditions, sluicev1beta1.ReadyCondition)
	return c != nil && (c.Reason == sluicev1beta1.ReasonFrozen || c.Reason == sluicev1beta1.ReasonQueued)
}

// arrive records the arrival of the target's revision, once per revision.
func (s *stepper) arrive(at time.Time) {
	if a := s.st.Admission; a != nil && a.Revision == s.in.Target.Revision {
		return
	}
	s.st.Admission = &sluicev1beta1.AdmissionStatus{Revision: s.in.Target.Revision, ArrivedAt: metav1.NewMicroTime(at)}
}

// frozenStart holds a new revision before its first step while a freeze
// is in force, as a confirm-rollout gate that says no would: traffic on
// the primary, the target at zero. It reports whether it held it.
func (s *stepper) frozenStart() bool {
	f := s.freeze()
	if f == nil {
		return false
	}
	s.arrive(s.in.Now)
	s.resetAnalysis()
	s.st.Metrics = nil
	if s.primaryOnly() && !s.in.Target.ScaledToZero {
		s.do(ScaleTarget{Up: false})
	}
	s.governed(sluicev1beta1.ReasonFrozen, fmt.Sprintf("New revision %s waits: %s", s.in.Target.Revision, f.Message()))
	s.requeueUntil(f)
	return true
}

// admitted reports whether the new revision may start under the policies
// that limit the Canary. It asks for the answer the first time; when the
// answer is no, the revision waits in the queue.
func (s *stepper) admitted() bool {
	g := s.in.Release
	if g == nil || !g.Limited {
		return true
	}
	a := g.Admission
	if a == nil {
		s.need = &Need{Step: s.stepID(), Admission: true}
		return false
	}
	record := &sluicev1beta1.AdmissionStatus{Revision: s.in.Target.Revision, ArrivedAt: metav1.NewMicroTime(a.ArrivedAt)}
	if a.Admitted {
		at := a.DecidedAt
		if at.IsZero() {
			at = s.in.Now
		}
		admitted := metav1.NewMicroTime(at)
		record.AdmittedAt = &admitted
		s.st.Admission = record
		return true
	}
	s.st.Admission = record
	s.resetAnalysis()
	s.st.Metrics = nil
	if s.primaryOnly() && !s.in.Target.ScaledToZero {
		s.do(ScaleTarget{Up: false})
	}
	s.governed(sluicev1beta1.ReasonQueued, fmt.Sprintf("New revision %s waits for a slot in ReleasePolicy %s: %d of %d running, %s in the queue",
		s.in.Target.Revision, a.Policy, a.Running, a.Limit, ordinal(a.Position)))
	// A slot that frees wakes the Canary; the interval covers a lost
	// wake-up.
	s.requeueIn(s.in.Spec.Interval)
	return false
}

// started completes the admission record of a revision whose rollout
// starts now: admitted at once when nothing held it, or dropped when it
// belongs to another revision and no policy limits the Canary.
func (s *stepper) started() {
	now := metav1.NewMicroTime(s.in.Now)
	switch a := s.st.Admission; {
	case a != nil && a.Revision == s.in.Target.Revision:
		if a.AdmittedAt == nil {
			a.AdmittedAt = &now
		}
	case s.in.Release != nil && s.in.Release.Limited:
		s.st.Admission = &sluicev1beta1.AdmissionStatus{Revision: s.in.Target.Revision, ArrivedAt: now, AdmittedAt: &now}
	default:
		s.st.Admission = nil
	}
}

// holdInFlight keeps a release in flight where it is while a freeze that
// does not let it finish is in force: the step's checks ran, and a failure
// rolled back before this; a pass neither advances nor promotes. It
// reports whether it held.
func (s *stepper) holdInFlight() bool {
	f := s.holding()
	if f == nil {
		return false
	}
	s.markStep()
	s.requeueIn(s.in.Spec.Interval)
	s.requeueUntil(f)
	s.showHold(f)
	if s.st.FrozenSince == nil {
		now := metav1.NewTime(s.in.Now)
		s.st.FrozenSince = &now
		s.emit(Event{Reason: sluicev1beta1.ReasonFrozen, Message: fmt.Sprintf("Holding %s at %s: %s", s.target(), s.where(), f.Message())})
	}
	return true
}

// holding is the freeze that holds releases in flight, or nil.
func (s *stepper) holding() *Freeze {
	if f := s.freeze(); f != nil && !f.Finish {
		return f
	}
	return nil
}

// stillHeld keeps saying, between two steps, that a freeze holds the
// release.
func (s *stepper) stillHeld() {
	if f := s.holding(); f != nil {
		s.requeueUntil(f)
		s.showHold(f)
	}
}

func (s *stepper) showHold(f *Freeze) {
	s.reason = sluicev1beta1.ReasonFrozen
	s.message = fmt.Sprintf("Holding at %s: %s; checks go on, and a failure still rolls back", s.where(), f.Message())
}

// where says how far a release got, for a hold.
func (s *stepper) where() string {
	if s.in.Spec.Strategy == Canary {
		return fmt.Sprintf("weight %d", s.st.CanaryWeight)
	}
	return fmt.Sprintf("iteration %d of %d", s.st.Iterations, s.in.Spec.Iterations)
}

// governed puts a new revision in the Waiting phase on a ReleasePolicy's
// account, with an event when the wait begins or changes reason.
func (s *stepper) governed(reason, msg string) {
	previous := meta.FindStatusCondition(s.st.Conditions, sluicev1beta1.ReadyCondition)
	began := s.st.Phase != sluicev1beta1.CanaryPhaseWaiting || previous == nil || previous.Reason != reason
	s.setPhase(sluicev1beta1.CanaryPhaseWaiting)
	s.reason, s.message = reason, msg
	if began {
		s.emit(Event{Reason: reason, Message: msg})
	}
}

// requeueUntil looks again when a freeze ends.
func (s *stepper) requeueUntil(f *Freeze) {
	if !f.Until.IsZero() {
		s.requeueIn(f.Until.Sub(s.in.Now))
	}
}

// refuseGoverned refuses a promotion that a ReleasePolicy forbids: during
// a freeze, and for a revision waiting in a queue. It reports whether it
// refused.
func (s *stepper) refuseGoverned() bool {
	if f := s.freeze(); f != nil {
		s.refuse(f.Message())
		return true
	}
	if s.held() {
		s.refuse("the new revision waits for a ReleasePolicy and a promotion cannot skip its turn")
		return true
	}
	return false
}

// frozenCondition shows the freeze in force on every Canary it matches,
// idle or not. It also drops status.frozenSince once no release is in
// flight: a rollback or a promotion ends the hold.
func (s *stepper) frozenCondition() {
	if s.st.Phase != sluicev1beta1.CanaryPhaseProgressing && s.st.Phase != sluicev1beta1.CanaryPhaseWaitingPromotion {
		s.st.FrozenSince = nil
	}
	f := s.freeze()
	if f == nil {
		meta.RemoveStatusCondition(&s.st.Conditions, sluicev1beta1.FrozenCondition)
		return
	}
	s.setCondition(metav1.Condition{Type: sluicev1beta1.FrozenCondition, Status: metav1.ConditionTrue, Reason: f.Reason, Message: f.Message()})
}

// requeueAtNextChange looks again when a freeze begins or ends.
func (s *stepper) requeueAtNextChange() {
	if g := s.in.Release; g != nil && !g.NextChange.IsZero() {
		s.requeueIn(g.NextChange.Sub(s.in.Now))
	}
}

// ordinal writes n as 1st, 2nd, 3rd, 4th...
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
