package plan

import (
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// Strategy is how traffic moves to a new revision.
type Strategy string

// Strategies, derived from the analysis fields as Flagger does.
const (
	// Canary shifts traffic step by step (stepWeight or stepWeights).
	Canary Strategy = "canary"
	// ABTesting sends matching requests to the canary (iterations and
	// match).
	ABTesting Strategy = "ab-testing"
	// BlueGreen checks the canary apart from live traffic, then switches
	// (iterations alone).
	BlueGreen Strategy = "blue-green"
)

// Spec is the part of a Canary's spec the state machine decides from, with
// defaults applied.
type Spec struct {
	// TargetName names the target workload in messages.
	TargetName          string
	Strategy            Strategy
	Interval            time.Duration
	Threshold           int
	MaxWeight           int
	StepWeight          int
	StepWeights         []int
	StepWeightPromotion int
	Iterations          int
	Mirror              bool
	MirrorWeight        int
	SessionAffinity     bool
	// CookieName and PrimaryCookieName are the session affinity cookies.
	CookieName        string
	PrimaryCookieName string
	SkipAnalysis      bool
	Suspend           bool
	ProgressDeadline  time.Duration
	// Autoscaled is set when the target has an autoscaler, whose primary
	// copy shrinks the primary while the canary takes traffic.
	Autoscaled bool
	// Hooks counts the webhooks of each type.
	Hooks map[sluicev1beta1.HookType]int
	// Metrics is the number of analysis metrics.
	Metrics int
}

// SpecFrom normalizes a Canary's spec. The schema has validated it; an
// error here means a value the schema could not check, such as an interval
// that does not parse.
func SpecFrom(c *sluicev1beta1.Canary) (Spec, error) {
	a := c.Spec.Analysis
	if a == nil {
		return Spec{}, fmt.Errorf("spec.analysis is required")
	}
	s := Spec{
		TargetName:          c.Spec.TargetRef.Name,
		Interval:            time.Minute,
		Threshold:           max(a.Threshold, 1),
		MaxWeight:           a.MaxWeight,
		StepWeight:          a.StepWeight,
		StepWeights:         a.StepWeights,
		StepWeightPromotion: a.StepWeightPromotion,
		Iterations:          a.Iterations,
		Mirror:              a.Mirror,
		MirrorWeight:        a.MirrorWeight,
		SessionAffinity:     a.SessionAffinity != nil,
		SkipAnalysis:        c.Spec.SkipAnalysis,
		Suspend:             c.Spec.Suspend,
		ProgressDeadline:    sluicev1beta1.DefaultProgressDeadlineSeconds * time.Second,
		Autoscaled:          c.Spec.AutoscalerRef != nil,
		Hooks:               map[sluicev1beta1.HookType]int{},
		Metrics:             len(a.Metrics),
	}
	if a.Interval != "" {
		d, err := time.ParseDuration(a.Interval)
		if err != nil {
			return Spec{}, fmt.Errorf("spec.analysis.interval %q: %w", a.Interval, err)
		}
		s.Interval = d
	}
	if sa := a.SessionAffinity; sa != nil {
		s.CookieName, s.PrimaryCookieName = sa.CookieName, sa.PrimaryCookieName
	}
	if c.Spec.ProgressDeadlineSeconds != nil {
		s.ProgressDeadline = time.Duration(*c.Spec.ProgressDeadlineSeconds) * time.Second
	}
	if s.MaxWeight == 0 {
		s.MaxWeight = 100
	}
	if n := len(s.StepWeights); n > 0 {
		s.MaxWeight = s.StepWeights[n-1]
	}
	for _, h := range a.Webhooks {
		t := h.Type
		if t == "" {
			t = sluicev1beta1.RolloutHook
		}
		s.Hooks[t]++
	}
	switch {
	case a.StepWeight > 0 || len(a.StepWeights) > 0:
		s.Strategy = Canary
	case len(a.Match) > 0:
		s.Strategy = ABTesting
	default:
		s.Strategy = BlueGreen
	}
	return s, nil
}

// hasHooks reports whether the spec has webhooks of a type.
func (s Spec) hasHooks(t sluicev1beta1.HookType) bool { return s.Hooks[t] > 0 }

// NextWeight is the canary weight after one more step from current.
func (s Spec) NextWeight(current int) int {
	if len(s.StepWeights) > 0 {
		for _, w := range s.StepWeights {
			if w > current {
				return w
			}
		}
		return s.MaxWeight
	}
	return min(current+s.StepWeight, s.MaxWeight, 100)
}

// Unsupported lists what the spec asks of a router that it cannot do,
// naming the fields; empty means the router can carry out the spec.
func Unsupported(spec Spec, c *sluicev1beta1.Canary, caps traffic.Capabilities) []string {
	a := c.Spec.Analysis
	var out []string
	if spec.Strategy == Canary && !caps.Weights {
		field := "stepWeight"
		if len(spec.StepWeights) > 0 {
			field = "stepWeights"
		}
		out = append(out, fmt.Sprintf("analysis.%s asks for weighted traffic, which this provider cannot split; use analysis.iterations for blue/green", field))
	}
	if a != nil && len(a.Match) > 0 && !caps.HeaderMatch && !caps.CookieMatch {
		out = append(out, "analysis.match asks for A/B routing by header or cookie, which this provider cannot do")
	} else if a != nil && len(a.Match) > 0 && (!caps.HeaderMatch || !caps.CookieMatch) {
		for i, m := range a.Match {
			for name := range m.Headers {
				cookie := strings.EqualFold(name, "cookie")
				if (cookie && !caps.CookieMatch) || (!cookie && !caps.HeaderMatch) {
					out = append(out, fmt.Sprintf("analysis.match[%d].headers[%s] needs %s matching, which this provider cannot do", i, name, map[bool]string{true: "cookie", false: "header"}[cookie]))
				}
			}
		}
	}
	if a != nil {
		for i, m := range a.Match {
			if len(m.QueryParams) > 0 && !caps.QueryMatch {
				out = append(out, fmt.Sprintf("analysis.match[%d].queryParams needs query parameter matching, which this provider cannot do", i))
			}
			if (len(m.SourceLabels) > 0 || m.SourceNamespace != "") && !caps.SourceMatch {
				out = append(out, fmt.Sprintf("analysis.match[%d].sourceLabels needs routing by calling workload, which this provider cannot do", i))
			}
		}
	}
	if spec.Mirror && !caps.Mirror {
		out = append(out, "analysis.mirror asks for traffic mirroring, which this provider cannot do")
	} else if spec.Mirror && spec.MirrorWeight > 0 && spec.MirrorWeight < 100 && !caps.MirrorWeight {
		out = append(out, "analysis.mirrorWeight asks to mirror part of the traffic; this provider mirrors all of it or none")
	}
	if spec.SessionAffinity && !caps.SessionAffinity {
		out = append(out, "analysis.sessionAffinity asks for cookie-based session affinity, which this provider cannot do")
	}
	if spec.StepWeightPromotion > 0 && !caps.Weights {
		out = append(out, "analysis.stepWeightPromotion asks for weighted traffic, which this provider cannot split")
	}
	return out
}
