package chaos

import (
	"fmt"
	"slices"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Expectation is what one release of a Canary must do.
type Expectation struct {
	// StepWeights are a weighted canary's steps; empty for an A/B test or
	// a blue/green switch, which count Iterations.
	StepWeights []int
	Iterations  int
	// Interval is the analysis interval: no two analysis steps may be
	// closer, or one was run twice.
	Interval time.Duration
	// Healthy versions must end Succeeded, the others Failed.
	Healthy bool
}

// analysing are the phases of a rollout under way.
var analysing = []sluicev1beta1.CanaryPhase{
	sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion,
	sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising,
}

// Terminal reports whether a phase ends a rollout.
func Terminal(p sluicev1beta1.CanaryPhase) bool {
	return p == sluicev1beta1.CanaryPhaseSucceeded || p == sluicev1beta1.CanaryPhaseFailed
}

// Cut returns the observations of the rollout that began after start: from
// the first in a phase of a rollout under way to the first terminal one
// after it, which ends it. ended is false while the rollout goes on.
func Cut(h []Observation, start time.Time) (obs []Observation, ended bool) {
	begun := false
	for _, o := range h {
		if o.At.Before(start) {
			continue
		}
		if !begun {
			if !slices.Contains(analysing, o.Phase) {
				continue
			}
			begun = true
		}
		obs = append(obs, o)
		if Terminal(o.Phase) {
			return obs, true
		}
	}
	return obs, false
}

// Check returns what a rollout did wrong: the wrong final phase, a step
// skipped, taken back or run twice, a promotion not made or made twice.
// promotions counts the changes of the primary's pod template while the
// rollout ran.
func Check(e Expectation, obs []Observation, promotions int) []string {
	if len(obs) == 0 {
		return []string{"no rollout was observed"}
	}
	var problems []string
	end := obs[len(obs)-1]
	want := sluicev1beta1.CanaryPhaseSucceeded
	if !e.Healthy {
		want = sluicev1beta1.CanaryPhaseFailed
	}
	if end.Phase != want {
		problems = append(problems, fmt.Sprintf("ended %s, want %s", end.Phase, want))
	}

	// The steps the analysis must go through, in order, each once.
	steps := []int{0}
	if len(e.StepWeights) > 0 {
		steps = append(steps, e.StepWeights...)
	} else {
		for i := 1; i <= e.Iterations; i++ {
			steps = append(steps, i)
		}
	}
	position := func(o Observation) int {
		if len(e.StepWeights) > 0 {
			return slices.Index(steps, o.Weight)
		}
		return slices.Index(steps, o.Iterations)
	}
	last, reached := -1, -1
	var stepTimes []time.Time
	for _, o := range obs {
		if o.Phase != sluicev1beta1.CanaryPhaseProgressing {
			continue
		}
		p := position(o)
		switch {
		case p < 0:
			problems = append(problems, fmt.Sprintf("a step that is not configured: %s", o))
		case last >= 0 && p < last:
			problems = append(problems, fmt.Sprintf("went back from step %d to step %d: %s", last, p, o))
		case last >= 0 && p > last+1:
			problems = append(problems, fmt.Sprintf("skipped from step %d to step %d: %s", last, p, o))
		case last < 0 && p > 1:
			// The first status seen may already be the first step.
			problems = append(problems, fmt.Sprintf("began at step %d: %s", p, o))
		}
		if p >= 0 {
			last = p
			reached = max(reached, p)
		}
		if !o.LastStepTime.IsZero() && (len(stepTimes) == 0 || !o.LastStepTime.Equal(stepTimes[len(stepTimes)-1])) {
			stepTimes = append(stepTimes, o.LastStepTime)
		}
	}
	// The first step time may be the previous rollout's last.
	for i := 2; i < len(stepTimes); i++ {
		// Status times are whole seconds: a second of slack.
		if gap := stepTimes[i].Sub(stepTimes[i-1]); gap < e.Interval-time.Second {
			problems = append(problems, fmt.Sprintf("two analysis steps %s apart, under the interval %s: a step ran twice", gap, e.Interval))
		}
	}
	if end.Phase == sluicev1beta1.CanaryPhaseSucceeded && reached != len(steps)-1 {
		problems = append(problems, fmt.Sprintf("promoted after step %d of %d", reached, len(steps)-1))
	}
	switch {
	case end.Phase == sluicev1beta1.CanaryPhaseSucceeded && promotions != 1:
		problems = append(problems, fmt.Sprintf("succeeded with %d promotions of the primary, want 1", promotions))
	case end.Phase != sluicev1beta1.CanaryPhaseSucceeded && promotions != 0:
		problems = append(problems, fmt.Sprintf("%s with %d promotions of the primary, want 0", end.Phase, promotions))
	}
	return problems
}

// Promotions counts the template changes in (from, to], not the
// primary's creation.
func Promotions(changes []TemplateChange, from, to time.Time) int {
	n := 0
	for i, c := range changes {
		if i > 0 && c.At.After(from) && !c.At.After(to) {
			n++
		}
	}
	return n
}
