package analysis

import (
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

func TestDecideNeverPassesMissingDataUnlessTheMetricSaysSkip(t *testing.T) {
	const (
		pass   = sluicev1beta1.MetricPass
		fail   = sluicev1beta1.MetricFail
		noData = sluicev1beta1.MetricNoData
		skip   = sluicev1beta1.MetricSkipped
		broken = sluicev1beta1.MetricError
	)
	tests := []struct {
		name     string
		analysis sluicev1beta1.NoDataPolicy
		policies []sluicev1beta1.NoDataPolicy
		outcomes []sluicev1beta1.MetricOutcome
		want     plan.Outcome
	}{
		{"every metric in range passes", "", []sluicev1beta1.NoDataPolicy{"", ""}, []sluicev1beta1.MetricOutcome{pass, pass}, plan.Pass},
		{"one metric out of range fails the step", "", []sluicev1beta1.NoDataPolicy{"", ""}, []sluicev1beta1.MetricOutcome{pass, fail}, plan.Fail},
		{"an unreachable provider fails the step", "", []sluicev1beta1.NoDataPolicy{""}, []sluicev1beta1.MetricOutcome{broken}, plan.Fail},
		{"no data fails by default", "", []sluicev1beta1.NoDataPolicy{""}, []sluicev1beta1.MetricOutcome{noData}, plan.Fail},
		{"no data holds under the analysis' hold policy", sluicev1beta1.NoDataHold, []sluicev1beta1.NoDataPolicy{""}, []sluicev1beta1.MetricOutcome{noData}, plan.Hold},
		{"a metric's own fail policy wins over the analysis' hold", sluicev1beta1.NoDataHold, []sluicev1beta1.NoDataPolicy{sluicev1beta1.NoDataFail}, []sluicev1beta1.MetricOutcome{noData}, plan.Fail},
		{"a metric's hold policy holds", "", []sluicev1beta1.NoDataPolicy{sluicev1beta1.NoDataHold, ""}, []sluicev1beta1.MetricOutcome{noData, pass}, plan.Hold},
		{"a failure beats a hold", "", []sluicev1beta1.NoDataPolicy{sluicev1beta1.NoDataHold, ""}, []sluicev1beta1.MetricOutcome{noData, fail}, plan.Fail},
		{"a skipped metric lets the others decide", "", []sluicev1beta1.NoDataPolicy{sluicev1beta1.NoDataSkip, ""}, []sluicev1beta1.MetricOutcome{skip, pass}, plan.Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &sluicev1beta1.Canary{}
			c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{NoData: tt.analysis}
			var results []sluicev1beta1.CanaryMetricStatus
			for i, p := range tt.policies {
				name := string(rune('a' + i))
				c.Spec.Analysis.Metrics = append(c.Spec.Analysis.Metrics, sluicev1beta1.CanaryMetric{Name: name, NoData: p})
				results = append(results, sluicev1beta1.CanaryMetricStatus{Name: name, Outcome: tt.outcomes[i], Message: name + " " + string(tt.outcomes[i])})
			}
			got := Decide(c, results)
			if got.Outcome != tt.want || len(got.Metrics) != len(results) {
				t.Fatalf("got %s (%q) with %d results, want %s", got.Outcome, got.Message, len(got.Metrics), tt.want)
			}
		})
	}
}
