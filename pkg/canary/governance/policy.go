// Package governance reads ReleasePolicies for the Canary state machine:
// which policies match a Canary, whether one freezes its releases now and
// until when, whether it may start under their limits on concurrent
// releases, and when to look again. Like package plan it is pure: no
// client, no clock, so that every decision is a table test.
package governance

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

// ReasonInvalidSelector is the Ready reason of a ReleasePolicy whose label
// selector cannot be read; such a policy matches no Canary.
const ReasonInvalidSelector = "InvalidSelector"

// Policy is a ReleasePolicy read for decisions. Build it with Compile.
type Policy struct {
	// Name of the ReleasePolicy.
	Name string
	// Limit is spec.maxConcurrentCanaries; 0 when unset.
	Limit int
	// Problems are the fields that cannot be read, in spec order.
	Problems []Problem

	namespaces labels.Selector
	canaries   labels.Selector
	stop       *sluicev1beta1.StopTheLine
	windows    []window
	oneOff     []oneOff
	finish     bool
}

// Problem is a field of a ReleasePolicy that cannot be read.
type Problem struct {
	// Reason is InvalidSchedule or InvalidSelector.
	Reason string
	// Field is the path of the field, such as
	// spec.freeze.windows[0].timeZone.
	Field string
	// Message says what is wrong.
	Message string
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

type window struct {
	field    string
	schedule cron.Schedule
	duration time.Duration
	// loc is the window's time zone, in which its end is shown.
	loc    *time.Location
	reason string
}

type oneOff struct {
	field      string
	start, end time.Time
	reason     string
}

// parser reads the five standard cron fields and the @ descriptors.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Compile reads a ReleasePolicy. What cannot be read is listed in
// Problems, not returned as an error: the policy is still there, and what
// it freezes must be decided.
func Compile(rp *sluicev1beta1.ReleasePolicy) *Policy {
	p := &Policy{Name: rp.Name, stop: rp.Spec.Stop}
	if m := rp.Spec.MaxConcurrentCanaries; m != nil && *m > 0 {
		p.Limit = int(*m)
	}
	p.namespaces = p.selector("spec.namespaceSelector", rp.Spec.NamespaceSelector)
	p.canaries = p.selector("spec.canarySelector", rp.Spec.CanarySelector)
	f := rp.Spec.Freeze
	if f == nil {
		return p
	}
	p.finish = f.InFlight == sluicev1beta1.InFlightFinish
	for i, w := range f.Windows {
		field := fmt.Sprintf("spec.freeze.windows[%d]", i)
		tz := w.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		// "Local" is the operator's own zone, which no policy means.
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			p.Problems = append(p.Problems, Problem{Reason: sluicev1beta1.ReasonInvalidSchedule, Field: field + ".timeZone", Message: fmt.Sprintf("unknown time zone %q", tz)})
			continue
		}
		schedule, err := parser.Parse(w.Schedule)
		if err != nil {
			p.Problems = append(p.Problems, Problem{Reason: sluicev1beta1.ReasonInvalidSchedule, Field: field + ".schedule", Message: fmt.Sprintf("%q is not a cron schedule: %v", w.Schedule, err)})
			continue
		}
		spec, ok := schedule.(*cron.SpecSchedule)
		if !ok {
			p.Problems = append(p.Problems, Problem{Reason: sluicev1beta1.ReasonInvalidSchedule, Field: field + ".schedule", Message: fmt.Sprintf("%q is not a calendar schedule: use five cron fields", w.Schedule)})
			continue
		}
		spec.Location = loc
		if w.Duration.Duration <= 0 {
			p.Problems = append(p.Problems, Problem{Reason: sluicev1beta1.ReasonInvalidSchedule, Field: field + ".duration", Message: "must be longer than zero"})
			continue
		}
		p.windows = append(p.windows, window{field: field, schedule: spec, duration: w.Duration.Duration, loc: loc, reason: w.Reason})
	}
	for i, o := range f.OneOff {
		field := fmt.Sprintf("spec.freeze.oneOff[%d]", i)
		if !o.End.After(o.Start.Time) {
			p.Problems = append(p.Problems, Problem{Reason: sluicev1beta1.ReasonInvalidSchedule, Field: field + ".end", Message: "must be after start"})
			continue
		}
		p.oneOff = append(p.oneOff, oneOff{field: field, start: o.Start.Time, end: o.End.Time, reason: o.Reason})
	}
	return p
}

// selector reads a label selector; unset or empty matches everything.
func (p *Policy) selector(field string, s *metav1.LabelSelector) labels.Selector {
	if s == nil {
		return labels.Everything()
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		p.Problems = append(p.Problems, Problem{Reason: ReasonInvalidSelector, Field: field, Message: err.Error()})
		return labels.Nothing()
	}
	return sel
}

// SelectsNamespaces reports whether the policy looks at namespace labels,
// so that callers read them only when needed.
func (p *Policy) SelectsNamespaces() bool { return !p.namespaces.Empty() }

// Matches reports whether the policy governs a Canary with these labels
// in a namespace with these.
func (p *Policy) Matches(namespaceLabels, canaryLabels labels.Set) bool {
	return p.namespaces.Matches(namespaceLabels) && p.canaries.Matches(canaryLabels)
}

// scheduleProblem is the first problem that makes the freezes unknown.
func (p *Policy) scheduleProblem() *Problem {
	for i := range p.Problems {
		if p.Problems[i].Reason == sluicev1beta1.ReasonInvalidSchedule {
			return &p.Problems[i]
		}
	}
	return nil
}

// FreezeAt is the policy's freeze in force at now, or nil. spec.stop
// comes first; then a window that cannot be read, which freezes because
// it might be open; then the open window that ends last, with the end of
// the freeze as a whole when windows overlap or follow each other.
func (p *Policy) FreezeAt(now time.Time) *plan.Freeze {
	if s := p.stop; s != nil {
		f := &plan.Freeze{Policy: p.Name, Reason: sluicev1beta1.ReasonStopTheLine, Field: "spec.stop", Why: s.Reason, SetBy: s.SetBy}
		if s.SetAt != nil {
			f.SetAt = s.SetAt.Time
		}
		return f
	}
	if pr := p.scheduleProblem(); pr != nil {
		return &plan.Freeze{Policy: p.Name, Reason: sluicev1beta1.ReasonInvalidSchedule, Field: pr.Field, Why: pr.Message, Finish: p.finish}
	}
	var open *plan.Freeze
	var loc *time.Location
	for _, o := range p.openAt(now) {
		if open == nil || o.end.After(open.Until) {
			open = &plan.Freeze{Policy: p.Name, Reason: sluicev1beta1.ReasonFreezeWindow, Field: o.field, Why: o.reason, Until: o.end, Finish: p.finish}
			loc = o.end.Location()
		}
	}
	if open == nil {
		return nil
	}
	open.Until = p.freezeEnd(open.Until).In(loc)
	return open
}

// span is one open window.
type span struct {
	field  string
	end    time.Time
	reason string
}

// openAt lists the windows open at t.
func (p *Policy) openAt(t time.Time) []span {
	var out []span
	for _, w := range p.windows {
		// The first opening after t-duration is open at t if it is not
		// after t: cron's Next is strictly after its argument.
		start := w.schedule.Next(t.Add(-w.duration))
		if !start.IsZero() && !start.After(t) {
			out = append(out, span{field: w.field, end: start.Add(w.duration).In(w.loc), reason: w.reason})
		}
	}
	for _, o := range p.oneOff {
		if !t.Before(o.start) && t.Before(o.end) {
			out = append(out, span{field: o.field, end: o.end.In(time.UTC), reason: o.reason})
		}
	}
	return out
}

// maxChain bounds the windows followed to find where a freeze ends: a
// schedule that is always open would never end.
const maxChain = 200

// freezeEnd follows windows that open before the freeze ends to the time
// it really ends.
func (p *Policy) freezeEnd(end time.Time) time.Time {
	for range maxChain {
		next := end
		for _, s := range p.openAt(end) {
			if s.end.After(next) {
				next = s.end
			}
		}
		if !next.After(end) {
			return end
		}
		end = next
	}
	return end
}

// NextChange is the first time after now at which a window of the policy
// opens or closes; zero when none will (within cron's five years).
func (p *Policy) NextChange(now time.Time) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, w := range p.windows {
		if start := w.schedule.Next(now); !start.IsZero() {
			earlier(start)
		}
	}
	for _, s := range p.openAt(now) {
		earlier(s.end)
	}
	for _, o := range p.oneOff {
		earlier(o.start)
		earlier(o.end)
	}
	return next
}

// ActiveFreeze is the policy's freeze in force at now as its status shows
// it, or nil.
func (p *Policy) ActiveFreeze(now time.Time) *sluicev1beta1.ActiveFreeze {
	f := p.FreezeAt(now)
	if f == nil {
		return nil
	}
	a := &sluicev1beta1.ActiveFreeze{Field: f.Field, Reason: f.Why, SetBy: f.SetBy}
	if !f.Until.IsZero() {
		until := metav1.NewTime(f.Until)
		a.Until = &until
	}
	return a
}

// GateOf is what the policies that match a Canary say at now: nil when
// none matches. A stop comes before a schedule that cannot be read, which
// comes before an open window; of several windows, the one that ends last
// is shown. A release in flight finishes only when every freeze in force
// lets it.
func GateOf(policies []*Policy, now time.Time) *plan.Gate {
	if len(policies) == 0 {
		return nil
	}
	g := &plan.Gate{}
	finish := true
	for _, p := range policies {
		if p.Limit > 0 {
			g.Limited = true
		}
		if t := p.NextChange(now); !t.IsZero() && (g.NextChange.IsZero() || t.Before(g.NextChange)) {
			g.NextChange = t
		}
		f := p.FreezeAt(now)
		if f == nil {
			continue
		}
		finish = finish && f.Finish
		if g.Freeze == nil || rank(f) > rank(g.Freeze) || (rank(f) == rank(g.Freeze) && f.Until.After(g.Freeze.Until)) {
			g.Freeze = f
		}
	}
	if g.Freeze != nil {
		frozen := *g.Freeze
		frozen.Finish = finish
		g.Freeze = &frozen
	}
	return g
}

// rank orders freezes by what is shown first.
func rank(f *plan.Freeze) int {
	switch f.Reason {
	case sluicev1beta1.ReasonStopTheLine:
		return 2
	case sluicev1beta1.ReasonInvalidSchedule:
		return 1
	}
	return 0
}
