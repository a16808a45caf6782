package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

func TestHistory(t *testing.T) {
	metrics := Result{Outcome: Pass, Metrics: []sluicev1beta1.CanaryMetricStatus{
		{Name: "request-success-rate", Outcome: sluicev1beta1.MetricPass, Value: "99.5"},
		{Name: "latency", Outcome: sluicev1beta1.MetricPass, Value: "310"},
	}}
	open := func(in Input) Input {
		in.Status.Releases = []sluicev1beta1.ReleaseRecord{
			{Revision: "v2", Outcome: sluicev1beta1.ReleaseProgressing, StartTime: *at(-2 * interval)},
			{Revision: "v1", Outcome: sluicev1beta1.ReleasePromoted, StartTime: *at(-time.Hour), EndTime: at(-50 * time.Minute)},
		}
		return in
	}
	tests := []struct {
		name string
		in   func() Input
		want func(t *testing.T, st sluicev1beta1.CanaryStatus)
	}{
		{"a rollout that starts opens a release in flight and forgets the last release's steps", func() Input {
			in := newRevision()
			in.Status.Steps = []sluicev1beta1.StepRecord{{Time: *at(-time.Hour), Weight: 50, Outcome: sluicev1beta1.StepPass}}
			return in
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			wantReleases(t, st, "v2 Progressing")
			if r := st.Releases[0]; !r.StartTime.Equal(at(0)) || r.EndTime != nil {
				t.Errorf("release = %+v, want started now and not ended", r)
			}
			if len(st.Steps) != 0 {
				t.Errorf("steps = %+v, want none", st.Steps)
			}
		}},
		{"an analysis step records each metric's value and each webhook's result with the weight it ends with", func() Input {
			in := open(withHooks(canary(), sluicev1beta1.RolloutHook))
			in.Spec.Metrics = 2
			return withChecks(in, Checks{CheckRollback: pass(), CheckRollout: pass(), CheckMetrics: metrics})
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if len(st.Steps) != 1 {
				t.Fatalf("steps = %+v, want one", st.Steps)
			}
			s := st.Steps[0]
			if s.Outcome != sluicev1beta1.StepPass || s.Weight != 40 || s.Phase != sluicev1beta1.CanaryPhaseProgressing || !s.Time.Equal(at(0)) {
				t.Errorf("step = %+v, want Pass at weight 40, Progressing, now", s)
			}
			if got := fmt.Sprint(s.Metrics); got != "[{request-success-rate Pass 99.5} {latency Pass 310}]" {
				t.Errorf("metrics = %s", got)
			}
			if got := fmt.Sprint(s.Webhooks); got != "[{rollback Pass } {rollout Pass }]" {
				t.Errorf("webhooks = %s", got)
			}
			wantReleases(t, st, "v2 Progressing", "v1 Promoted")
		}},
		{"a failed webhook records a failed step with the webhook's answer", func() Input {
			in := open(withHooks(canary(), sluicev1beta1.RolloutHook))
			return withChecks(in, Checks{CheckRollback: pass(), CheckRollout: fail("load-test answered 500")})
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			s := st.Steps[len(st.Steps)-1]
			if s.Outcome != sluicev1beta1.StepFail || s.Weight != 20 || !strings.Contains(s.Message, "load-test answered 500") {
				t.Errorf("step = %+v, want Fail at weight 20 naming the webhook", s)
			}
			if got := fmt.Sprint(s.Webhooks); got != "[{rollback Pass } {rollout Fail load-test answered 500}]" {
				t.Errorf("webhooks = %s", got)
			}
		}},
		{"metrics with no data on hold record a held step", func() Input {
			in := open(canary())
			in.Spec.Metrics = 1
			return withChecks(in, Checks{CheckMetrics: {Outcome: Hold, Message: "no data for latency"}})
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if s := st.Steps[0]; s.Outcome != sluicev1beta1.StepHold || s.Weight != 20 {
				t.Errorf("step = %+v, want Hold at weight 20", s)
			}
		}},
		{"a rollback at the threshold ends the release as rolled back with the reason", func() Input {
			in := open(canary())
			in.Status.FailedChecks = 1
			in.Spec.Metrics = 1
			return withChecks(in, Checks{CheckMetrics: fail("latency 900 > 500")})
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			wantReleases(t, st, "v2 RolledBack", "v1 Promoted")
			if r := st.Releases[0]; r.EndTime == nil || !r.EndTime.Equal(at(0)) || !strings.Contains(r.Message, "latency 900 > 500") {
				t.Errorf("release = %+v, want ended now naming the failed metric", r)
			}
			if s := st.Steps[0]; s.Outcome != sluicev1beta1.StepFail || s.Phase != sluicev1beta1.CanaryPhaseFailed {
				t.Errorf("step = %+v, want the failed step that rolled back", s)
			}
		}},
		{"a finished promotion ends the release as promoted", func() Input {
			return open(finalising())
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			wantReleases(t, st, "v2 Promoted", "v1 Promoted")
			if r := st.Releases[0]; r.EndTime == nil || !strings.Contains(r.Message, "revision v2") {
				t.Errorf("release = %+v, want ended naming the revision", r)
			}
		}},
		{"a new revision during the analysis supersedes the release in flight", func() Input {
			in := open(canary())
			in.Target.Revision, in.Target.PodTemplateHash = "v3", "v3"
			return in
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			wantReleases(t, st, "v3 Progressing", "v2 Superseded", "v1 Promoted")
			if r := st.Releases[1]; r.Message != "Superseded by revision v3" {
				t.Errorf("superseded release message = %q", r.Message)
			}
		}},
		{"a promotion's step back to the primary is recorded as a traffic move", func() Input {
			in := open(promoting())
			in.Capabilities = traffic.Capabilities{Weights: true}
			in.Spec.StepWeightPromotion = 30
			in.Status.CanaryWeight, in.Routes = 60, traffic.Weighted(60)
			return in
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if len(st.Steps) != 1 || st.Steps[0].Outcome != sluicev1beta1.StepMove || st.Steps[0].Weight != 30 {
				t.Errorf("steps = %+v, want one move to weight 30", st.Steps)
			}
		}},
		{"a release begun before the history existed is recorded from its start time when it ends", func() Input {
			return finalising()
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			wantReleases(t, st, "v2 Promoted")
			if r := st.Releases[0]; !r.StartTime.Equal(at(-2 * interval)) {
				t.Errorf("start = %v, want the rollout's start", r.StartTime)
			}
		}},
		{"the history keeps the last 10 releases", func() Input {
			in := newRevision()
			for i := range 10 {
				in.Status.Releases = append(in.Status.Releases, sluicev1beta1.ReleaseRecord{Revision: fmt.Sprintf("old%d", i), Outcome: sluicev1beta1.ReleasePromoted})
			}
			return in
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if len(st.Releases) != maxReleases || st.Releases[0].Revision != "v2" || st.Releases[9].Revision != "old8" {
				t.Errorf("releases = %d, first %s, last %s; want 10 from v2 to old8", len(st.Releases), st.Releases[0].Revision, st.Releases[len(st.Releases)-1].Revision)
			}
		}},
		{"the steps keep the last 100 and a long webhook answer is clipped", func() Input {
			in := open(withHooks(canary(), sluicev1beta1.RolloutHook))
			for i := range maxSteps {
				in.Status.Steps = append(in.Status.Steps, sluicev1beta1.StepRecord{Time: metav1.NewTime(t0.Add(time.Duration(i-maxSteps) * time.Second)), Weight: i})
			}
			return withChecks(in, Checks{CheckRollback: pass(), CheckRollout: fail(strings.Repeat("é", 400))})
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if len(st.Steps) != maxSteps || st.Steps[0].Weight != 1 {
				t.Errorf("steps = %d from weight %d, want 100 from the second", len(st.Steps), st.Steps[0].Weight)
			}
			last := st.Steps[len(st.Steps)-1]
			for _, m := range []string{last.Message, last.Webhooks[1].Message} {
				if len(m) > maxStepMessage || !strings.HasSuffix(m, "…") || !utf8.ValidString(m) {
					t.Errorf("message of %d bytes not clipped to %d on a rune boundary: %q", len(m), maxStepMessage, m)
				}
			}
		}},
		{"an idle Canary records nothing", func() Input {
			return blueGreen()
		}, func(t *testing.T, st sluicev1beta1.CanaryStatus) {
			if len(st.Releases) != 0 || len(st.Steps) != 0 {
				t.Errorf("releases %+v, steps %+v; want none", st.Releases, st.Steps)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Step(tt.in())
			if out.Need != nil {
				t.Fatalf("Step needs %+v", out.Need)
			}
			tt.want(t, out.Status)
		})
	}
}

// wantReleases checks the releases' revisions and outcomes, newest first.
func wantReleases(t *testing.T, st sluicev1beta1.CanaryStatus, want ...string) {
	t.Helper()
	var got []string
	for _, r := range st.Releases {
		got = append(got, fmt.Sprintf("%s %s", r.Revision, r.Outcome))
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("releases = %v, want %v", got, want)
	}
}
