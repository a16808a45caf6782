package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

func canaryWith(a sluicev1beta1.CanaryAnalysis) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{
		TargetRef: sluicev1beta1.TargetReference{Name: "podinfo"},
		Analysis:  &a,
	}}
}

func TestSpecFromDerivesTheStrategyAsFlaggerDoes(t *testing.T) {
	tests := []struct {
		name     string
		analysis sluicev1beta1.CanaryAnalysis
		want     Strategy
	}{
		{"stepWeight makes a progressive canary", sluicev1beta1.CanaryAnalysis{StepWeight: 10}, Canary},
		{"stepWeights make a progressive canary", sluicev1beta1.CanaryAnalysis{StepWeights: []int{1, 10}}, Canary},
		{"iterations with match make an A/B test", sluicev1beta1.CanaryAnalysis{Iterations: 5, Match: []sluicev1beta1.HTTPMatchRequest{{}}}, ABTesting},
		{"iterations alone make blue/green", sluicev1beta1.CanaryAnalysis{Iterations: 5}, BlueGreen},
		{"iterations with mirror make mirrored blue/green", sluicev1beta1.CanaryAnalysis{Iterations: 5, Mirror: true}, BlueGreen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SpecFrom(canaryWith(tt.analysis))
			if err != nil || s.Strategy != tt.want {
				t.Fatalf("strategy %q, %v; want %q", s.Strategy, err, tt.want)
			}
		})
	}
}

func TestSpecFromAppliesDefaults(t *testing.T) {
	s, err := SpecFrom(canaryWith(sluicev1beta1.CanaryAnalysis{StepWeight: 10, Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "load"}, {Name: "gate", Type: sluicev1beta1.ConfirmPromotionHook}}}))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{s.Interval, s.Threshold, s.MaxWeight, s.ProgressDeadline, s.Hooks}
	want := []any{time.Minute, 1, 100, 600 * time.Second, map[sluicev1beta1.HookType]int{sluicev1beta1.RolloutHook: 1, sluicev1beta1.ConfirmPromotionHook: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults %v, want %v (a hook without a type is a rollout hook)", got, want)
	}
	if _, err := SpecFrom(canaryWith(sluicev1beta1.CanaryAnalysis{Interval: "soon"})); err == nil || !strings.Contains(err.Error(), "spec.analysis.interval") {
		t.Fatalf("an unparsable interval gave %v", err)
	}
}

func TestNextWeight(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		current int
		want    int
	}{
		{"stepWeight adds one step", Spec{StepWeight: 10, MaxWeight: 50}, 20, 30},
		{"stepWeight stops at maxWeight", Spec{StepWeight: 20, MaxWeight: 50}, 40, 50},
		{"stepWeight never passes 100", Spec{StepWeight: 30, MaxWeight: 100}, 90, 100},
		{"stepWeights give the next listed weight", Spec{StepWeights: []int{1, 5, 25, 80}, MaxWeight: 80}, 5, 25},
		{"stepWeights start at the first listed weight", Spec{StepWeights: []int{1, 5, 25, 80}, MaxWeight: 80}, 0, 1},
		{"stepWeights between two entries go to the next", Spec{StepWeights: []int{10, 50}, MaxWeight: 50}, 30, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.NextWeight(tt.current); got != tt.want {
				t.Fatalf("next weight after %d is %d, want %d", tt.current, got, tt.want)
			}
		})
	}
}

func TestUnsupportedNamesWhatTheRouterCannotDo(t *testing.T) {
	servicesOnly := traffic.Capabilities{}
	headersOnly := traffic.Capabilities{Weights: true, HeaderMatch: true}
	tests := []struct {
		name     string
		analysis sluicev1beta1.CanaryAnalysis
		caps     traffic.Capabilities
		want     []string
	}{
		{"blue/green needs nothing", sluicev1beta1.CanaryAnalysis{Iterations: 10}, servicesOnly, nil},
		{"weights on Kubernetes Services are refused", sluicev1beta1.CanaryAnalysis{StepWeight: 10}, servicesOnly, []string{"analysis.stepWeight"}},
		{"stepWeights on Kubernetes Services are refused", sluicev1beta1.CanaryAnalysis{StepWeights: []int{10, 50}}, servicesOnly, []string{"analysis.stepWeights"}},
		{"mirroring on Kubernetes Services is refused", sluicev1beta1.CanaryAnalysis{Iterations: 10, Mirror: true}, servicesOnly, []string{"analysis.mirror"}},
		{"A/B on Kubernetes Services is refused", sluicev1beta1.CanaryAnalysis{Iterations: 10, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "1"}}}}}, servicesOnly, []string{"analysis.match"}},
		{"a cookie match on a router without cookies is refused", sluicev1beta1.CanaryAnalysis{Iterations: 10, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"cookie": {Regex: "canary"}}}}}, headersOnly, []string{"analysis.match[0].headers[cookie]"}},
		{"session affinity without support is refused", sluicev1beta1.CanaryAnalysis{StepWeight: 10, SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "c"}}, headersOnly, []string{"analysis.sessionAffinity"}},
		{"a partial mirror without mirror weights is refused", sluicev1beta1.CanaryAnalysis{Iterations: 10, Mirror: true, MirrorWeight: 50}, traffic.Capabilities{Mirror: true}, []string{"analysis.mirrorWeight"}},
		{"stepWeightPromotion without weights is refused", sluicev1beta1.CanaryAnalysis{Iterations: 10, StepWeightPromotion: 20}, servicesOnly, []string{"analysis.stepWeightPromotion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := canaryWith(tt.analysis)
			spec, err := SpecFrom(c)
			if err != nil {
				t.Fatal(err)
			}
			got := Unsupported(spec, c, tt.caps)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want ones naming %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]+" ") {
					t.Errorf("problem %q does not name %s", got[i], tt.want[i])
				}
			}
		})
	}
}
