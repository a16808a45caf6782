package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// fuzzSpec turns fuzzed numbers into a Canary analysis the API server
// accepts: every weight within its schema bounds, stepWeights ascending
// and unique, stepWeight at most maxWeight, iterations apart from the
// weights, mirrorWeight only with mirror. Step is only ever given such
// specs, so the properties below are about them.
type fuzzSpec struct {
	StepWeight, MaxWeight, Promotion, Iterations, MirrorWeight uint8
	StepWeights                                                []byte
	// Flags: bit 0 mirror, 1 A/B match, 2 autoscaled, 3-9 one webhook
	// type each, 10 metrics, 11-12 the threshold.
	Flags uint16
}

var fuzzHookTypes = []sluicev1beta1.HookType{
	sluicev1beta1.ConfirmRolloutHook, sluicev1beta1.PreRolloutHook, sluicev1beta1.RolloutHook,
	sluicev1beta1.ConfirmTrafficIncreaseHook, sluicev1beta1.ConfirmPromotionHook,
	sluicev1beta1.PostRolloutHook, sluicev1beta1.RollbackHook,
}

func (f fuzzSpec) canary() *sluicev1beta1.Canary {
	a := sluicev1beta1.CanaryAnalysis{Interval: "1m", Threshold: int(f.Flags>>11&3) + 1}
	switch {
	case len(f.StepWeights) > 0:
		seen := map[int]bool{}
		for _, b := range f.StepWeights {
			if w := int(b)%100 + 1; !seen[w] && len(a.StepWeights) < 100 {
				seen[w] = true
				a.StepWeights = append(a.StepWeights, w)
			}
		}
		slices.Sort(a.StepWeights)
		// maxWeight may be set beside stepWeights; the last step wins.
		if f.MaxWeight%101 > 0 {
			a.MaxWeight = int(f.MaxWeight)%100 + 1
		}
	case f.StepWeight%101 > 0:
		a.StepWeight = int(f.StepWeight)%100 + 1
		if f.MaxWeight%101 > 0 {
			a.MaxWeight = max(int(f.MaxWeight)%100+1, a.StepWeight)
		}
	default:
		a.Iterations = int(f.Iterations % 31)
		if f.Flags&2 != 0 {
			a.Match = []sluicev1beta1.HTTPMatchRequest{{Name: "insiders"}}
		}
	}
	if f.Flags&1 != 0 {
		a.Mirror = true
		a.MirrorWeight = int(f.MirrorWeight) % 101
	}
	if f.Promotion%101 > 0 {
		a.StepWeightPromotion = int(f.Promotion)%100 + 1
	}
	for i, t := range fuzzHookTypes {
		if f.Flags&(1<<(3+i)) != 0 {
			a.Webhooks = append(a.Webhooks, sluicev1beta1.CanaryWebhook{Name: string(t), Type: t})
		}
	}
	if f.Flags&(1<<10) != 0 {
		a.Metrics = []sluicev1beta1.CanaryMetric{{Name: "request-success-rate"}}
	}
	c := &sluicev1beta1.Canary{}
	c.Spec.TargetRef.Name = "podinfo"
	c.Spec.Analysis = &a
	if f.Flags&4 != 0 {
		c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{Name: "podinfo"}
	}
	return c
}

// answers hands out the outcomes of checks from fuzzed bytes; once they
// run out, every check passes, so that each rollout ends.
type answers []byte

func (a *answers) next(c Check) Result {
	if len(*a) == 0 {
		return Result{Outcome: Pass}
	}
	b := (*a)[0]
	*a = (*a)[1:]
	switch b % 4 {
	case 2:
		return Result{Outcome: Fail, Message: "fuzzed failure"}
	case 3:
		if c == CheckMetrics {
			return Result{Outcome: Hold, Message: "fuzzed missing data"}
		}
		return Result{Outcome: Fail, Message: "fuzzed gate closed"}
	}
	return Result{Outcome: Pass}
}

// rollout runs Step the way the reconciler does, from an initialized
// Canary with a new revision until the release ends, carrying out each
// action on a simulated world as the workloads' controllers and the
// router would. after, when set, sees each decision with the input it
// was made from and the world the actions left.
type rollout struct {
	in    Input
	spec  fuzzSpec
	asked answers
	// newRevisionAt, when above zero, changes the target's revision at
	// that decision, as a commit during the analysis would.
	newRevisionAt int
	// requestAt and request put a manual request on the Canary at that
	// decision.
	requestAt int
	request   *Request
	after     func(t *testing.T, before Input, out Output, world Input)
}

func newRollout(t *testing.T, spec fuzzSpec, asked []byte) *rollout {
	c := spec.canary()
	s, err := SpecFrom(c)
	if err != nil {
		t.Fatalf("SpecFrom: %v", err)
	}
	caps := traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, QueryMatch: true, SourceMatch: true, Mirror: true, MirrorWeight: true, SessionAffinity: true}
	if problems := Unsupported(s, c, caps); len(problems) > 0 {
		t.Fatalf("a router that can do everything is refused: %v", problems)
	}
	in := Input{
		Now: t0, Generation: 1, Spec: s, Capabilities: caps,
		Status: sluicev1beta1.CanaryStatus{
			Phase: sluicev1beta1.CanaryPhaseInitialized, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour)),
			LastAppliedSpec: "v1", LastTrackedRevision: "v1", LastPromotedSpec: "v1",
		},
		Target:  Target{Workload: Workload{Exists: true, Revision: "v2", Ready: ready()}, PodTemplateHash: "v2", ScaledToZero: true},
		Primary: Workload{Exists: true, Revision: "v1", Ready: ready()},
		Routes:  traffic.PrimaryOnly(),
	}
	return &rollout{in: in, spec: spec, asked: asked}
}

// run returns the outputs of each decision, in order, and fails the test
// if the release does not end.
func (r *rollout) run(t *testing.T) []Output {
	var outs []Output
	// Every step is bounded: a gate or a hold waits for answers, which run
	// out; failures reach the threshold; weights reach the maximum.
	limit := 1000 + 4*len(r.asked)
	for i := 1; i <= limit; i++ {
		if i == r.newRevisionAt {
			r.in.Target.Revision, r.in.Target.PodTemplateHash = "v3", "v3"
		}
		if i == r.requestAt {
			r.in.Request = r.request
		}
		out := Step(r.in)
		for round := 0; out.Need != nil; round++ {
			if round == 5 {
				t.Fatalf("decision %d: still needs %v after 5 rounds of answers", i, out.Need.Checks)
			}
			if r.in.Checks == nil {
				r.in.Checks = Checks{}
			}
			for _, c := range out.Need.Checks {
				if _, ok := r.in.Checks[c]; ok {
					t.Fatalf("decision %d: asked again for %s, which was answered", i, c)
				}
				r.in.Checks[c] = r.asked.next(c)
			}
			out = Step(r.in)
		}
		// The input the decision was made from, with its answers.
		before := r.in
		outs = append(outs, out)
		r.carryOut(out)
		if r.after != nil {
			r.after(t, before, out, r.in)
		}
		if r.done() {
			return outs
		}
		wait := out.RequeueAfter
		if wait <= 0 {
			wait = r.in.Spec.Interval
		}
		r.in.Now = r.in.Now.Add(wait)
	}
	t.Fatalf("the release did not end within %d decisions: phase %s, weight %d, routes %s", limit, r.in.Status.Phase, r.in.Status.CanaryWeight, r.in.Routes)
	return nil
}

// carryOut applies a decision to the world: workloads become ready at
// once, and the router reports the routes it was given.
func (r *rollout) carryOut(out Output) {
	for _, a := range out.Actions {
		switch a := a.(type) {
		case CreatePrimary:
			r.in.Primary = Workload{Exists: true, Revision: r.in.Target.Revision, Ready: ready()}
		case TakeOverTraffic:
			r.in.Routes = traffic.PrimaryOnly()
		case ScaleTarget:
			r.in.Target.ScaledToZero = !a.Up
		case SetRoutes:
			r.in.Routes = a.Routes
		case Promote:
			r.in.Primary.Revision = r.in.Target.Revision
		}
	}
	r.in.Status = out.Status
	r.in.Checks = nil
}

// done reports whether the release ended and production is back to
// normal: a final phase, all traffic on the primary, the canary at zero.
// A Canary paused by hand holds where it is until it is resumed, which
// ends the run too.
func (r *rollout) done() bool {
	if r.in.Status.Paused != nil {
		return true
	}
	final := r.in.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded || r.in.Status.Phase == sluicev1beta1.CanaryPhaseFailed
	return final && r.in.Status.LastTrackedRevision == r.in.Target.Revision && r.in.Routes.IsPrimaryOnly() && r.in.Target.ScaledToZero
}

// checkRoutes checks a traffic split: weights within 0..100 that add up
// to 100, and no weight beside a mirror or a match.
func checkRoutes(routes traffic.Routes) error {
	switch {
	case routes.Primary < 0 || routes.Primary > 100 || routes.Canary < 0 || routes.Canary > 100:
		return fmt.Errorf("weights out of 0..100: %s", routes)
	case routes.Primary+routes.Canary != 100:
		return fmt.Errorf("primary and canary do not add up to 100: %s", routes)
	case routes.Mirror && (routes.Canary != 0 || routes.MirrorWeight < 0 || routes.MirrorWeight > 100):
		return fmt.Errorf("a mirror beside a canary weight, or a mirror weight out of 0..100: %s (mirror %d)", routes, routes.MirrorWeight)
	case routes.Match && routes.Canary != 0:
		return fmt.Errorf("a match beside a canary weight: %s", routes)
	}
	return nil
}

// checkWeights checks what a decision did to the canary weight.
func checkWeights(t *testing.T, before Input, out Output, world Input) {
	t.Helper()
	prev, st := before.Status, out.Status
	for _, a := range out.Actions {
		if a, ok := a.(SetRoutes); ok {
			if err := checkRoutes(a.Routes); err != nil {
				t.Fatalf("at %s, phase %s -> %s: %v", before.Now.Sub(t0), prev.Phase, st.Phase, err)
			}
		}
	}
	if st.CanaryWeight < 0 || st.CanaryWeight > 100 {
		t.Fatalf("status.canaryWeight %d is out of 0..100", st.CanaryWeight)
	}
	analysing := func(p sluicev1beta1.CanaryPhase) bool {
		return p == sluicev1beta1.CanaryPhaseProgressing || p == sluicev1beta1.CanaryPhaseWaitingPromotion
	}
	sameRevision := prev.LastTrackedRevision == st.LastTrackedRevision
	if before.Spec.Strategy == Canary && analysing(st.Phase) && st.CanaryWeight > before.Spec.MaxWeight {
		t.Fatalf("canary weight %d above maxWeight %d while %s", st.CanaryWeight, before.Spec.MaxWeight, st.Phase)
	}
	if analysing(prev.Phase) && analysing(st.Phase) && sameRevision && st.CanaryWeight < prev.CanaryWeight {
		t.Fatalf("canary weight went down from %d to %d during the analysis", prev.CanaryWeight, st.CanaryWeight)
	}
	if analysing(prev.Phase) && analysing(st.Phase) && sameRevision && st.CanaryWeight > prev.CanaryWeight &&
		st.CanaryWeight != before.Spec.NextWeight(prev.CanaryWeight) {
		t.Fatalf("canary weight went from %d to %d, not to the next step %d", prev.CanaryWeight, st.CanaryWeight, before.Spec.NextWeight(prev.CanaryWeight))
	}
	if analysing(prev.Phase) && analysing(st.Phase) && st.Iterations > prev.Iterations+1 {
		t.Fatalf("iterations went from %d to %d in one step", prev.Iterations, st.Iterations)
	}
	promoting := func(p sluicev1beta1.CanaryPhase) bool {
		return p == sluicev1beta1.CanaryPhasePromoting || p == sluicev1beta1.CanaryPhaseFinalising
	}
	if promoting(prev.Phase) && promoting(st.Phase) && st.CanaryWeight > prev.CanaryWeight {
		t.Fatalf("canary weight went up from %d to %d during the promotion", prev.CanaryWeight, st.CanaryWeight)
	}
	if promoting(prev.Phase) && promoting(st.Phase) && before.Spec.StepWeightPromotion > 0 &&
		prev.CanaryWeight-st.CanaryWeight > before.Spec.StepWeightPromotion {
		t.Fatalf("the promotion moved %d points at once, more than stepWeightPromotion %d", prev.CanaryWeight-st.CanaryWeight, before.Spec.StepWeightPromotion)
	}
	// What the router was told is what the status says, except while a
	// failed release waits for its autoscaled primary to grow before
	// traffic moves back.
	if st.Phase != sluicev1beta1.CanaryPhaseFailed && world.Routes.Canary != st.CanaryWeight {
		t.Fatalf("phase %s: the router has %s, the status says canary weight %d", st.Phase, world.Routes, st.CanaryWeight)
	}
	if st.Phase == sluicev1beta1.CanaryPhaseSucceeded && (!world.Routes.IsPrimaryOnly() || st.CanaryWeight != 0) {
		t.Fatalf("succeeded with %s and canary weight %d", world.Routes, st.CanaryWeight)
	}
}

// FuzzWeights runs whole releases of fuzzed specs (stepWeight, maxWeight,
// stepWeights, stepWeightPromotion, mirror, iterations, webhooks, metrics)
// through fuzzed check outcomes and checks the weight arithmetic at every
// decision: each split within 0..100 adding up to 100, the canary weight
// rising one step at a time up to maxWeight during the analysis and
// falling by at most stepWeightPromotion during the promotion, the status
// matching the router, and every release ending with all traffic on the
// primary.
func FuzzWeights(f *testing.F) {
	f.Add(uint8(20), uint8(60), uint8(0), uint8(0), uint8(0), []byte(nil), uint16(0), uint8(0), []byte(nil))
	f.Add(uint8(0), uint8(0), uint8(30), uint8(0), uint8(0), []byte{9, 19, 49, 79}, uint16(1<<10), uint8(0), []byte{0, 0, 2, 0, 3, 3, 0})
	f.Add(uint8(0), uint8(0), uint8(20), uint8(5), uint8(0), []byte(nil), uint16(0x7f8), uint8(0), []byte{2, 0, 2, 0, 3})
	f.Add(uint8(33), uint8(100), uint8(7), uint8(0), uint8(50), []byte(nil), uint16(1|4|1<<10), uint8(4), []byte{0, 0, 0, 2, 2})
	f.Add(uint8(0), uint8(0), uint8(0), uint8(3), uint8(0), []byte(nil), uint16(2|1<<11), uint8(0), []byte{3, 3, 0, 2})
	f.Fuzz(func(t *testing.T, stepWeight, maxWeight, promotion, iterations, mirrorWeight uint8, stepWeights []byte, flags uint16, newRevisionAt uint8, asked []byte) {
		spec := fuzzSpec{StepWeight: stepWeight, MaxWeight: maxWeight, Promotion: promotion, Iterations: iterations, MirrorWeight: mirrorWeight, StepWeights: stepWeights, Flags: flags}
		r := newRollout(t, spec, asked)
		r.newRevisionAt = int(newRevisionAt)
		r.after = checkWeights
		r.run(t)
	})
}

// FuzzManualRequest puts a fuzzed sluice.dev/request annotation on a
// Canary at a fuzzed moment of a release, read as the reconciler reads
// it, and checks that the request is answered exactly once, with an
// answer the CRD's schema accepts, that a refused request changes nothing
// but status.lastRequest, and that the release still ends with all
// traffic on the primary.
func FuzzManualRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","action":"promote"}`, `{"id":"1","action":"promote","full":true,"by":"alice"}`,
		`{"id":"2","action":"abort"}`, `{"id":"3","action":"retry"}`, `{"id":"4","action":"pause","by":"bob"}`,
		`{"id":"5","action":"resume"}`, `{"id":"6","action":"abort","full":true}`, `{"action":"pause"}`, `promote`, ``, `null`,
	} {
		f.Add(seed, uint8(3), uint16(1<<10), []byte{0, 2, 0})
	}
	f.Fuzz(func(t *testing.T, annotation string, at uint8, flags uint16, asked []byte) {
		spec := fuzzSpec{StepWeight: 25, MaxWeight: 75, Promotion: 50, Flags: flags}
		r := newRollout(t, spec, asked)
		r.requestAt = int(at%40) + 1
		r.request = RequestFromAnnotation(annotation)
		id := r.request.ID
		answered := 0
		r.after = func(t *testing.T, before Input, out Output, world Input) {
			checkWeights(t, before, out, world)
			got := out.Status.LastRequest
			if got == nil || got.ID != id {
				return
			}
			if before.Status.LastRequest == nil || before.Status.LastRequest.ID != id {
				answered++
				checkAnswer(t, r.request, got)
				if got.Outcome == sluicev1beta1.RequestRefused {
					checkRefusalChangedNothing(t, before, out)
				}
			} else if *got != *before.Status.LastRequest {
				t.Fatalf("the answer to request %s changed from %+v to %+v", id, *before.Status.LastRequest, *got)
			}
		}
		outs := r.run(t)
		// A paused Canary holds the release until it is resumed, which
		// the fuzzed request cannot do: that end is fine.
		if answered > 1 {
			t.Fatalf("request %s was answered %d times", id, answered)
		}
		if answered == 0 && len(outs) >= r.requestAt {
			t.Fatalf("request %s was never answered", id)
		}
	})
}

// checkAnswer checks status.lastRequest against the CRD's schema (action
// in its enum or left out, an id, outcome in its enum) and the request.
func checkAnswer(t *testing.T, r *Request, got *sluicev1beta1.RequestStatus) {
	t.Helper()
	actions := []sluicev1beta1.RequestAction{"", sluicev1beta1.RequestPromote, sluicev1beta1.RequestAbort, sluicev1beta1.RequestRetry, sluicev1beta1.RequestPause, sluicev1beta1.RequestResume}
	switch {
	case got.ID == "":
		t.Fatalf("status.lastRequest has no id: %+v", got)
	case !slices.Contains(actions, got.Action):
		t.Fatalf("status.lastRequest.action %q is not in the CRD's enum", got.Action)
	case got.Outcome != sluicev1beta1.RequestAccepted && got.Outcome != sluicev1beta1.RequestRefused:
		t.Fatalf("status.lastRequest.outcome %q is not in the CRD's enum", got.Outcome)
	case r.Invalid != "" && (got.Outcome != sluicev1beta1.RequestRefused || !strings.Contains(got.Message, r.Invalid)):
		t.Fatalf("an invalid request was answered %s %q, want Refused with %q", got.Outcome, got.Message, r.Invalid)
	case got.Action != r.Action || got.Full != r.Full || got.By != r.By:
		t.Fatalf("status.lastRequest %+v does not echo the request %+v", got, r.Request)
	}
}

// checkRefusalChangedNothing checks that a refused request left the
// release where it was: the refusal is decided before anything else, and
// the rest of the decision is what it would have been without it.
func checkRefusalChangedNothing(t *testing.T, before Input, out Output) {
	t.Helper()
	without := before
	without.Request = nil
	want := Step(without)
	if want.Need != nil {
		// The request was answered with the checks of this step in hand;
		// without it, Step asks for the same checks again.
		without.Checks = before.Checks
		want = Step(without)
	}
	if want.Need != nil {
		return
	}
	st, wantSt := out.Status, want.Status
	if st.Phase != wantSt.Phase || st.CanaryWeight != wantSt.CanaryWeight || st.Iterations != wantSt.Iterations ||
		st.FailedChecks != wantSt.FailedChecks || (st.Paused == nil) != (wantSt.Paused == nil) {
		t.Fatalf("a refused request changed the release: phase %s weight %d iterations %d failed %d paused %v, without it %s %d %d %d %v",
			st.Phase, st.CanaryWeight, st.Iterations, st.FailedChecks, st.Paused != nil,
			wantSt.Phase, wantSt.CanaryWeight, wantSt.Iterations, wantSt.FailedChecks, wantSt.Paused != nil)
	}
}
