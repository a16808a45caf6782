package governance

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

// friday is 2025-01-03, a Friday, at 17:00 UTC.
var friday = time.Date(2025, 1, 3, 17, 0, 0, 0, time.UTC)

func policy(name string, change func(*sluicev1beta1.ReleasePolicySpec)) *sluicev1beta1.ReleasePolicy {
	rp := &sluicev1beta1.ReleasePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if change != nil {
		change(&rp.Spec)
	}
	return rp
}

func windows(ws ...sluicev1beta1.FreezeWindow) func(*sluicev1beta1.ReleasePolicySpec) {
	return func(s *sluicev1beta1.ReleasePolicySpec) { s.Freeze = &sluicev1beta1.ReleaseFreeze{Windows: ws} }
}

func win(schedule string, d time.Duration, tz, reason string) sluicev1beta1.FreezeWindow {
	return sluicev1beta1.FreezeWindow{Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: tz, Reason: reason}
}

func TestFreezeAt(t *testing.T) {
	oneOff := func(start, end time.Time, reason string) func(*sluicev1beta1.ReleasePolicySpec) {
		return func(s *sluicev1beta1.ReleasePolicySpec) {
			s.Freeze = &sluicev1beta1.ReleaseFreeze{OneOff: []sluicev1beta1.OneOffFreeze{{Start: metav1.NewTime(start), End: metav1.NewTime(end), Reason: reason}}}
		}
	}
	tests := []struct {
		name   string
		spec   func(*sluicev1beta1.ReleasePolicySpec)
		now    time.Time
		reason string
		field  string
		until  time.Time
		finish bool
	}{
		{name: "a policy without a freeze freezes nothing", now: friday},
		{
			name: "a Friday evening window is open on Friday evening",
			spec: windows(win("0 16 * * 5", 64*time.Hour, "UTC", "weekend")),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]", until: friday.Add(63 * time.Hour),
		},
		{
			name: "the window is closed before it opens",
			spec: windows(win("0 18 * * 5", 2*time.Hour, "UTC", "")),
			now:  friday,
		},
		{
			name: "the window is open at the minute it opens",
			spec: windows(win("0 17 * * 5", time.Hour, "UTC", "")),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]", until: friday.Add(time.Hour),
		},
		{
			name: "the window is closed at the second it ends",
			spec: windows(win("0 16 * * 5", time.Hour, "UTC", "")),
			now:  friday,
		},
		{
			name: "a schedule is read in its time zone",
			// 18:00 in Paris is 17:00 UTC in winter.
			spec: windows(win("0 18 * * 5", time.Hour, "Europe/Paris", "")),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]", until: friday.Add(time.Hour),
		},
		{
			name: "the same schedule in New York is not open yet",
			spec: windows(win("0 18 * * 5", time.Hour, "America/New_York", "")),
			now:  friday,
		},
		{
			name: "windows that follow each other freeze until the last ends",
			spec: windows(win("0 16 * * 5", 2*time.Hour, "UTC", "first"), win("0 18 * * 5", 2*time.Hour, "UTC", "second")),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]", until: friday.Add(3 * time.Hour),
		},
		{
			name: "an hourly window longer than an hour is open until its last opening ends",
			spec: windows(win("@hourly", 90*time.Minute, "UTC", "")),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]",
			// Always open: the chain stops after maxChain windows.
			until: friday.Add(time.Duration(maxChain) * time.Hour).Add(30 * time.Minute),
		},
		{
			name: "a one-off freeze is open from its start",
			spec: oneOff(friday, friday.Add(time.Hour), "release train"),
			now:  friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.oneOff[0]", until: friday.Add(time.Hour),
		},
		{
			name: "a one-off freeze is closed at its end",
			spec: oneOff(friday.Add(-time.Hour), friday, ""),
			now:  friday,
		},
		{
			name: "inFlight Finish lets releases in flight finish",
			spec: func(s *sluicev1beta1.ReleasePolicySpec) {
				windows(win("0 17 * * *", time.Hour, "UTC", ""))(s)
				s.Freeze.InFlight = sluicev1beta1.InFlightFinish
			},
			now: friday, reason: sluicev1beta1.ReasonFreezeWindow, field: "spec.freeze.windows[0]", until: friday.Add(time.Hour), finish: true,
		},
		{
			name: "a stop freezes until it is cleared, whatever the windows",
			spec: func(s *sluicev1beta1.ReleasePolicySpec) {
				windows(win("0 17 * * *", time.Hour, "UTC", ""))(s)
				s.Freeze.InFlight = sluicev1beta1.InFlightFinish
				s.Stop = &sluicev1beta1.StopTheLine{Reason: "incident 123", SetBy: "alice"}
			},
			now: friday, reason: sluicev1beta1.ReasonStopTheLine, field: "spec.stop",
		},
		{
			name: "an unknown time zone freezes, since the window might be open",
			spec: windows(win("0 18 * * 5", time.Hour, "Mars/Olympus", "")),
			now:  friday, reason: sluicev1beta1.ReasonInvalidSchedule, field: "spec.freeze.windows[0].timeZone",
		},
		{
			name: "a schedule cron cannot read freezes",
			spec: windows(win("61 * * * *", time.Hour, "UTC", "")),
			now:  friday, reason: sluicev1beta1.ReasonInvalidSchedule, field: "spec.freeze.windows[0].schedule",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Compile(policy("p", tt.spec)).FreezeAt(tt.now)
			if tt.reason == "" {
				if f != nil {
					t.Fatalf("frozen: %s", f.Message())
				}
				return
			}
			if f == nil {
				t.Fatal("not frozen")
			}
			if f.Reason != tt.reason || f.Field != tt.field || !f.Until.Equal(tt.until) || f.Finish != tt.finish {
				t.Fatalf("freeze %+v, want reason %s field %s until %s finish %v", f, tt.reason, tt.field, tt.until, tt.finish)
			}
		})
	}
}

func TestFreezeMessages(t *testing.T) {
	setAt := metav1.NewTime(friday.Add(-time.Hour))
	tests := []struct {
		name string
		spec func(*sluicev1beta1.ReleasePolicySpec)
		want string
	}{
		{
			name: "a window names the policy, its end in its time zone, the field and the reason",
			spec: windows(win("0 18 * * 5", time.Hour, "Europe/Paris", "Friday evening")),
			want: "ReleasePolicy p freezes releases until 2025-01-03 19:00:00 CET (spec.freeze.windows[0]): Friday evening",
		},
		{
			name: "a stop names who set it, when and why",
			spec: func(s *sluicev1beta1.ReleasePolicySpec) {
				s.Stop = &sluicev1beta1.StopTheLine{Reason: "incident 123", SetBy: "alice", SetAt: &setAt}
			},
			want: "ReleasePolicy p stops the line (spec.stop, set by alice at 2025-01-03T16:00:00Z): incident 123",
		},
		{
			name: "a time zone that cannot be read names the field",
			spec: windows(win("0 18 * * 5", time.Hour, "Mars/Olympus", "")),
			want: `ReleasePolicy p cannot read spec.freeze.windows[0].timeZone: unknown time zone "Mars/Olympus"; releases are frozen until it is fixed`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Compile(policy("p", tt.spec)).FreezeAt(friday)
			if f == nil || f.Message() != tt.want {
				t.Fatalf("message %q, want %q", msg(f), tt.want)
			}
		})
	}
}

func msg(f *plan.Freeze) string {
	if f == nil {
		return "<nil>"
	}
	return f.Message()
}

func TestCompileReportsTheFieldsItCannotRead(t *testing.T) {
	tests := []struct {
		name  string
		spec  func(*sluicev1beta1.ReleasePolicySpec)
		field string
		says  string
	}{
		{"an unknown time zone", windows(win("0 18 * * 5", time.Hour, "Mars/Olympus", "")), "spec.freeze.windows[0].timeZone", "unknown time zone"},
		{"the operator's local zone, which no policy means", windows(win("0 18 * * 5", time.Hour, "Local", "")), "spec.freeze.windows[0].timeZone", "unknown time zone"},
		{"a minute out of range", windows(win("0 18 * * 5", time.Hour, "", ""), win("60 18 * * 5", time.Hour, "", "")), "spec.freeze.windows[1].schedule", "is not a cron schedule"},
		{"an interval rather than a calendar", windows(win("@every 1h", time.Hour, "", "")), "spec.freeze.windows[0].schedule", "is not a calendar schedule"},
		{"a duration of zero", windows(win("0 18 * * 5", 0, "", "")), "spec.freeze.windows[0].duration", "longer than zero"},
		{"a one-off that ends before it starts", func(s *sluicev1beta1.ReleasePolicySpec) {
			s.Freeze = &sluicev1beta1.ReleaseFreeze{OneOff: []sluicev1beta1.OneOffFreeze{{Start: metav1.NewTime(friday), End: metav1.NewTime(friday.Add(-time.Hour))}}}
		}, "spec.freeze.oneOff[0].end", "after start"},
		{"a selector with an unknown operator", func(s *sluicev1beta1.ReleasePolicySpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
		}, "spec.namespaceSelector", "not a valid label selector operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compile(policy("p", tt.spec))
			if len(p.Problems) != 1 || p.Problems[0].Field != tt.field || !strings.Contains(p.Problems[0].Message, tt.says) {
				t.Fatalf("problems %+v, want one at %s saying %q", p.Problems, tt.field, tt.says)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	team := func(s *sluicev1beta1.ReleasePolicySpec) {
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	}
	tier := func(s *sluicev1beta1.ReleasePolicySpec) {
		team(s)
		s.CanarySelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "frontend"}}
	}
	tests := []struct {
		name              string
		spec              func(*sluicev1beta1.ReleasePolicySpec)
		namespace, canary labels.Set
		want              bool
	}{
		{"an empty policy matches every Canary", nil, nil, nil, true},
		{"a namespace selector matches a Canary of a labelled namespace", team, labels.Set{"team": "a"}, nil, true},
		{"a namespace selector leaves out other namespaces", team, labels.Set{"team": "b"}, nil, false},
		{"a Canary selector narrows the namespaces", tier, labels.Set{"team": "a"}, labels.Set{"tier": "backend"}, false},
		{"a Canary with the labels in a selected namespace matches", tier, labels.Set{"team": "a"}, labels.Set{"tier": "frontend"}, true},
		{"a selector that cannot be read matches nothing", func(s *sluicev1beta1.ReleasePolicySpec) {
			s.CanarySelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Near"}}}
		}, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compile(policy("p", tt.spec)).Matches(tt.namespace, tt.canary); got != tt.want {
				t.Fatalf("matches %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextChange(t *testing.T) {
	tests := []struct {
		name string
		spec func(*sluicev1beta1.ReleasePolicySpec)
		want time.Time
	}{
		{"a policy without windows never changes", nil, time.Time{}},
		{"a closed window changes when it opens", windows(win("0 18 * * 5", time.Hour, "UTC", "")), friday.Add(time.Hour)},
		{"an open window changes when it closes", windows(win("30 16 * * *", time.Hour, "UTC", "")), friday.Add(30 * time.Minute)},
		{"a one-off ahead changes at its start", func(s *sluicev1beta1.ReleasePolicySpec) {
			s.Freeze = &sluicev1beta1.ReleaseFreeze{OneOff: []sluicev1beta1.OneOffFreeze{{Start: metav1.NewTime(friday.Add(5 * time.Second)), End: metav1.NewTime(friday.Add(time.Minute))}}}
		}, friday.Add(5 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compile(policy("p", tt.spec)).NextChange(friday); !got.Equal(tt.want) {
				t.Fatalf("next change %s, want %s", got, tt.want)
			}
		})
	}
}

func TestGateOf(t *testing.T) {
	limit := func(n int32) func(*sluicev1beta1.ReleasePolicySpec) {
		return func(s *sluicev1beta1.ReleasePolicySpec) { s.MaxConcurrentCanaries = ptr.To(n) }
	}
	finishing := func(schedule string, d time.Duration) func(*sluicev1beta1.ReleasePolicySpec) {
		return func(s *sluicev1beta1.ReleasePolicySpec) {
			windows(win(schedule, d, "UTC", ""))(s)
			s.Freeze.InFlight = sluicev1beta1.InFlightFinish
		}
	}
	tests := []struct {
		name     string
		policies []*sluicev1beta1.ReleasePolicy
		nilGate  bool
		limited  bool
		frozenBy string
		finish   bool
		next     time.Time
	}{
		{name: "no policy, no gate", nilGate: true},
		{name: "a limit asks for admission", policies: []*sluicev1beta1.ReleasePolicy{policy("team", limit(2))}, limited: true},
		{
			name:     "a stop shows before a window that ends later",
			policies: []*sluicev1beta1.ReleasePolicy{policy("window", windows(win("0 17 * * *", 10*time.Hour, "UTC", ""))), policy("stop", func(s *sluicev1beta1.ReleasePolicySpec) { s.Stop = &sluicev1beta1.StopTheLine{Reason: "r"} })},
			frozenBy: "stop", next: friday.Add(10 * time.Hour),
		},
		{
			name:     "of two windows, the one that ends last shows",
			policies: []*sluicev1beta1.ReleasePolicy{policy("short", finishing("0 17 * * *", time.Hour)), policy("long", finishing("0 17 * * *", 2*time.Hour))},
			frozenBy: "long", finish: true, next: friday.Add(time.Hour),
		},
		{
			name:     "a release in flight finishes only when every freeze lets it",
			policies: []*sluicev1beta1.ReleasePolicy{policy("short", windows(win("0 17 * * *", time.Hour, "UTC", ""))), policy("long", finishing("0 17 * * *", 2*time.Hour))},
			frozenBy: "long", next: friday.Add(time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []*Policy
			for _, rp := range tt.policies {
				ps = append(ps, Compile(rp))
			}
			g := GateOf(ps, friday)
			if tt.nilGate {
				if g != nil {
					t.Fatalf("gate %+v, want none", g)
				}
				return
			}
			if g.Limited != tt.limited || !g.NextChange.Equal(tt.next) {
				t.Fatalf("gate %+v, want limited %v next change %s", g, tt.limited, tt.next)
			}
			switch {
			case tt.frozenBy == "" && g.Freeze != nil:
				t.Fatalf("frozen by %s", g.Freeze.Policy)
			case tt.frozenBy != "" && (g.Freeze == nil || g.Freeze.Policy != tt.frozenBy || g.Freeze.Finish != tt.finish):
				t.Fatalf("freeze %+v, want by %s finish %v", g.Freeze, tt.frozenBy, tt.finish)
			}
		})
	}
}
