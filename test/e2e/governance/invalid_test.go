package governance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
)

func TestTheAPIServerRefusesReleasePoliciesThatCannotWork(t *testing.T) {
	now := metav1.Now()
	window := func(schedule, duration, tz string) *sluicev1beta1.ReleaseFreeze {
		d, err := time.ParseDuration(duration)
		if err != nil {
			d = -1
		}
		return &sluicev1beta1.ReleaseFreeze{Windows: []sluicev1beta1.FreezeWindow{{Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: tz}}}
	}
	tests := []struct {
		name string
		spec sluicev1beta1.ReleasePolicySpec
		says []string
	}{
		{"a schedule of four fields", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 18 * 5", "2h", "UTC")},
			[]string{"spec.freeze.windows[0].schedule", "cron expression of five fields"}},
		{"a schedule of six fields, seconds first", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 0 18 * * 5", "2h", "UTC")},
			[]string{"spec.freeze.windows[0].schedule", "five fields"}},
		{"an interval in place of a schedule", sluicev1beta1.ReleasePolicySpec{Freeze: window("@every 1h", "2h", "UTC")},
			[]string{"spec.freeze.windows[0].schedule"}},
		{"a time zone in the schedule", sluicev1beta1.ReleasePolicySpec{Freeze: window("CRON_TZ=Europe/Paris 0 18 * * 5", "2h", "UTC")},
			[]string{"spec.freeze.windows[0].schedule"}},
		{"a time zone that is not a name", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 18 * * 5", "2h", "UTC+2 hours")},
			[]string{"spec.freeze.windows[0].timeZone", "IANA time zone"}},
		{"the operator's local time zone", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 18 * * 5", "2h", "Local")},
			[]string{"spec.freeze.windows[0].timeZone"}},
		{"a window that lasts no time", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 18 * * 5", "0s", "UTC")},
			[]string{"spec.freeze.windows[0].duration", "positive duration"}},
		{"a window of negative length", sluicev1beta1.ReleasePolicySpec{Freeze: window("0 18 * * 5", "-2h", "UTC")},
			[]string{"spec.freeze.windows[0].duration"}},
		{"a one-off freeze that ends before it starts", sluicev1beta1.ReleasePolicySpec{Freeze: &sluicev1beta1.ReleaseFreeze{OneOff: []sluicev1beta1.OneOffFreeze{{Start: now, End: metav1.NewTime(now.Add(-time.Hour))}}}},
			[]string{"spec.freeze.oneOff[0].end", "end must be after start"}},
		{"a limit of zero", sluicev1beta1.ReleasePolicySpec{MaxConcurrentCanaries: ptr.To[int32](0)},
			[]string{"spec.maxConcurrentCanaries"}},
		{"an inFlight choice that is neither Hold nor Finish", sluicev1beta1.ReleasePolicySpec{Freeze: &sluicev1beta1.ReleaseFreeze{InFlight: "Abort"}},
			[]string{"spec.freeze.inFlight"}},
		{"a stop without a reason", sluicev1beta1.ReleasePolicySpec{Stop: &sluicev1beta1.StopTheLine{}},
			[]string{"spec.stop.reason"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &sluicev1beta1.ReleasePolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("refused-%d", i)}, Spec: tt.spec}
			err := cp.Client.Create(t.Context(), rp)
			if err == nil {
				_ = cp.Client.Delete(context.Background(), rp)
				t.Fatal("accepted")
			}
			if !containsAll(err.Error(), tt.says) {
				t.Fatalf("refused with %q, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestASchedulePastTheCRDsReachIsReportedAndFreezesItsCanaries(t *testing.T) {
	ns := namespace(t, "invalid")
	app(t, ns, "app", nil)
	operator(t, ns)
	waitCanary(t, ns, "app", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))

	tests := []struct {
		name, schedule, timeZone, field, says string
	}{
		{"a minute out of range", "61 18 * * 5", "UTC", "spec.freeze.windows[0].schedule", `"61 18 * * 5" is not a cron schedule`},
		{"a time zone that does not exist", "0 18 * * 5", "Mars/Olympus", "spec.freeze.windows[0].timeZone", `unknown time zone "Mars/Olympus"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("unreadable-%d", i)
			rp := policy(t, name, ns, sluicev1beta1.ReleasePolicySpec{Freeze: &sluicev1beta1.ReleaseFreeze{Windows: []sluicev1beta1.FreezeWindow{
				{Schedule: tt.schedule, Duration: metav1.Duration{Duration: 2 * time.Hour}, TimeZone: tt.timeZone},
			}}})

			controlplane.Eventually(t, 30*time.Second, "Ready=False InvalidSchedule naming the field", func(ctx context.Context) (bool, string) {
				if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(rp), rp); err != nil {
					return false, err.Error()
				}
				r := meta.FindStatusCondition(rp.Status.Conditions, sluicev1beta1.ReadyCondition)
				s := meta.FindStatusCondition(rp.Status.Conditions, sluicev1beta1.StalledCondition)
				ok := r != nil && r.Status == metav1.ConditionFalse && r.Reason == sluicev1beta1.ReasonInvalidSchedule &&
					strings.Contains(r.Message, tt.field+": "+tt.says) && s != nil && s.Status == metav1.ConditionTrue
				return ok, fmt.Sprintf("%+v", rp.Status.Conditions)
			})
			warning(t, "ReleasePolicy", name, sluicev1beta1.ReasonInvalidSchedule, tt.field, tt.says)
			waitCanary(t, ns, "app", "frozen until the policy is fixed", 10*time.Second,
				frozenBy(sluicev1beta1.ReasonInvalidSchedule, "ReleasePolicy "+name+" cannot read "+tt.field, "releases are frozen until it is fixed"))

			if err := cp.Client.Delete(t.Context(), rp); err != nil {
				t.Fatal(err)
			}
			waitCanary(t, ns, "app", "no longer frozen", 10*time.Second, func(c *sluicev1beta1.Canary) bool {
				return meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition) == nil
			})
		})
	}
}
