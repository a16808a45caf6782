package cli_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
)

func TestStatusShowsTheReleaseAndEachMetricAgainstItsRange(t *testing.T) {
	ns := newNamespace(t)
	c := newCanary(t, ns, "podinfo", "Deployment", "podinfo")
	updateStatus(t, c, func(c *sluicev1beta1.Canary) {
		progressing(c)
		// Minutes, so that a slow run does not change what the ages read.
		checked := metav1.NewTime(time.Now().Add(-30 * time.Minute))
		c.Status.Metrics = []sluicev1beta1.CanaryMetricStatus{
			{Name: "request-success-rate", Outcome: sluicev1beta1.MetricPass, Value: "99.5", LastCheckTime: checked},
			{Name: "request-duration", Outcome: sluicev1beta1.MetricFail, Value: "620", Message: "620 > 500", LastCheckTime: checked},
		}
		c.Status.Paused = &sluicev1beta1.PauseStatus{By: "alice", Since: checked}
		c.Status.LastRequest = &sluicev1beta1.RequestStatus{ID: "1", Action: sluicev1beta1.RequestPause, By: "alice",
			Outcome: sluicev1beta1.RequestAccepted, Message: "Paused podinfo by alice", Time: checked}
	})

	r := run(t, "status", "podinfo", "-n", ns).mustSucceed(t)
	for _, field := range []string{
		`Canary:\s+` + ns + `/podinfo`,
		`Target:\s+Deployment/podinfo`,
		`Phase:\s+Progressing`,
		`Weight:\s+20%`,
		`Iterations:\s+2`,
		`Failed checks:\s+1/5`,
		`Last transition:\s+3d ago`,
		`Message:\s+New revision detected`,
		`Paused:\s+by alice, 30m ago`,
		`Last request:\s+pause \(Accepted, 30m ago\): Paused podinfo by alice`,
	} {
		if !regexp.MustCompile(`(?m)^` + field).MatchString(r.out) {
			t.Errorf("no line matches %q in:\n%s", field, r.out)
		}
	}
	_, metrics, ok := strings.Cut(r.out, "\n\n")
	if !ok {
		t.Fatalf("no metrics table in:\n%s", r.out)
	}
	want := [][]string{
		{"METRIC", "VALUE", "RANGE", "OUTCOME", "CHECKED", "MESSAGE"},
		{"request-success-rate", "99.5", ">= 99", "Pass", "30m", "-"},
		{"request-duration", "620", "<= 500", "Fail", "30m", "620 > 500"},
	}
	if got := rows(metrics); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got metrics %q, want %q", got, want)
	}
}

func TestStatusWatchFollowsTheReleaseToItsEnd(t *testing.T) {
	// step is one change the operator makes, once the watch has printed
	// after.
	type step struct {
		after string
		set   func(*sluicev1beta1.Canary)
	}
	weight := func(w int) func(*sluicev1beta1.Canary) {
		return func(c *sluicev1beta1.Canary) { c.Status.CanaryWeight = w }
	}
	metric := func(name, value string, outcome sluicev1beta1.MetricOutcome) func(*sluicev1beta1.Canary) {
		return func(c *sluicev1beta1.Canary) {
			c.Status.Metrics = []sluicev1beta1.CanaryMetricStatus{{Name: name, Value: value, Outcome: outcome, LastCheckTime: metav1.Now()}}
		}
	}
	phase := func(p sluicev1beta1.CanaryPhase, ready metav1.ConditionStatus, message string) func(*sluicev1beta1.Canary) {
		return func(c *sluicev1beta1.Canary) {
			c.Status.Phase = p
			c.Status.LastTransitionTime = metav1.Now()
			setCondition(&c.Status.Conditions, sluicev1beta1.ReadyCondition, ready, string(p), message)
		}
	}
	tests := []struct {
		name    string
		timeout string
		steps   []step
		code    int
		lines   []string
		err     string
	}{
		{
			name: "a promoted release exits 0",
			steps: []step{
				{"Progressing  weight 20%", weight(40)},
				{"Progressing  weight 40%", metric("request-success-rate", "99.9", sluicev1beta1.MetricPass)},
				{"request-success-rate 99.9", phase(sluicev1beta1.CanaryPhaseSucceeded, metav1.ConditionTrue, "Canary analysis completed successfully, promotion finished.")},
			},
			lines: []string{
				"Progressing  weight 20%",
				"Progressing  weight 40%",
				"Progressing  weight 40%  iterations 2  failed checks 1/5  metrics: request-success-rate 99.9 (>= 99) Pass",
				"Succeeded  weight 40%",
			},
		},
		{
			name: "a rolled-back release exits 1 with the reason",
			steps: []step{
				{"Progressing  weight 20%", phase(sluicev1beta1.CanaryPhaseFailed, metav1.ConditionFalse, "Canary analysis failed: failed checks threshold reached 5.")},
			},
			code:  cli.ExitFailure,
			lines: []string{"Progressing  weight 20%", "Failed  weight 20%"},
			err:   "failed checks threshold reached 5",
		},
		{
			name: "a release that ends back at Initialized exits 0",
			steps: []step{
				{"Progressing  weight 20%", phase(sluicev1beta1.CanaryPhaseInitialized, metav1.ConditionTrue, "Initialization done.")},
			},
			lines: []string{"Progressing  weight 20%", "Initialized  weight 20%"},
		},
		{
			name:    "a release that outlasts the timeout exits 2",
			timeout: "2s",
			code:    cli.ExitTimeout,
			lines:   []string{"Progressing  weight 20%"},
			err:     "timed out after 2s waiting for Canary",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			c := newCanary(t, ns, "podinfo", "Deployment", "podinfo")
			updateStatus(t, c, progressing)

			args := []string{"--kubeconfig", cp.Kubeconfig, "status", "podinfo", "--watch", "-n", ns}
			if tt.timeout != "" {
				args = append(args, "--timeout", tt.timeout)
			}
			out := &syncBuffer{}
			done := make(chan error, 1)
			go func() { done <- execute(t.Context(), out, &syncBuffer{}, args...) }()
			for _, s := range tt.steps {
				waitForOutput(t, out, s.after)
				updateStatus(t, c, s.set)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the watch did not end; output:\n%s", out)
			}

			if code := cli.ExitCode(err); code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got error %v, want one with %q", err, tt.err)
			}
			// One line per change: the lines are the steps, in order.
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(tt.lines) {
				t.Fatalf("got lines:\n%s\nwant %d", out, len(tt.lines))
			}
			for i, want := range tt.lines {
				if !strings.Contains(lines[i], want) {
					t.Errorf("line %d is %q, want it to have %q", i, lines[i], want)
				}
			}
		})
	}
}
