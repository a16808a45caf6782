package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// printer writes the demo's lines; the app's slots report from their own
// goroutine, so writes are serialised.
type printer struct {
	mu sync.Mutex
	w  io.Writer
	// since is when the current release began; lines show the time since.
	since time.Time
}

func newPrinter(w io.Writer) *printer { return &printer{w: w, since: time.Now()} }

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintf(p.w, format, args...)
}

// restart counts the time of later lines from now.
func (p *printer) restart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since = time.Now()
}

// line writes a line that starts with the time since the release began.
func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := "+" + strconv.FormatFloat(time.Since(p.since).Seconds(), 'f', 1, 64) + "s"
	_, _ = fmt.Fprintf(p.w, "  %7s  "+format+"\n", append([]any{elapsed}, args...)...)
}

// event writes what happened to the app's processes.
func (p *printer) event(format string, args ...any) {
	p.line("  · "+format, args...)
}

// setupStep is one thing the demo starts.
type setupStep struct {
	p     *printer
	what  string
	began time.Time
}

func (p *printer) begin(what string) *setupStep {
	return &setupStep{p: p, what: what, began: time.Now()}
}

func (s *setupStep) done(detail string) {
	if detail != "" {
		detail = ": " + detail
	}
	s.p.printf("  %-6s %s%s\n", fmt.Sprintf("%.1fs", time.Since(s.began).Seconds()), s.what, detail)
}

// result is how a release ended.
type result struct {
	release release
	phase   sluicev1beta1.CanaryPhase
	took    time.Duration
	// reason is the Ready condition's message.
	reason string
}

// outcome names a final phase for people.
func outcome(phase sluicev1beta1.CanaryPhase) string {
	switch phase {
	case sluicev1beta1.CanaryPhaseSucceeded:
		return "promoted"
	case sluicev1beta1.CanaryPhaseFailed:
		return "rolled back"
	}
	return string(phase)
}

// roll releases r and prints a line each time the Canary's status moves,
// until the rollout ends.
func (e *env) roll(ctx context.Context, r release, timeout time.Duration) (result, error) {
	e.out.printf("\nRelease %s: %s%% errors, ~%s latency; it should be %s\n",
		r.version, strconv.FormatFloat(r.errorRate*100, 'f', -1, 64), r.latency, outcome(r.want))
	e.out.printf("  %7s  %-12s %6s  %-24s %-24s %-7s %s\n", "time", "phase", "weight",
		fmt.Sprintf("success rate (min %g%%)", minSuccessRate), fmt.Sprintf("P99 latency (max %gms)", maxP99Millis),
		"failed", "answers since the last line")
	e.out.restart()
	began := time.Now()
	if err := releaseApp(ctx, e.cp.Client, r); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := false
	var shown, last string
	before := e.load.tally()
	for {
		c, err := getCanary(ctx, e.cp.Client)
		if err == nil {
			st := c.Status
			last = fmt.Sprintf("phase %s, weight %d, conditions %+v", st.Phase, st.CanaryWeight, st.Conditions)
			settled := slices.Contains([]sluicev1beta1.CanaryPhase{"", sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed}, st.Phase)
			// Until the rollout starts, the status is the last one's.
			started = started || !settled
			if started {
				if key := statusKey(st); key != shown {
					now := e.load.tally()
					e.out.line("%s", stepLine(c, r.version, now.minus(before)))
					shown, before = key, now
				}
				if settled {
					res := result{release: r, phase: st.Phase, took: time.Since(began)}
					// kwok's pods are ready at once; the app's processes
					// follow the Deployments a moment later.
					if err := e.apps.waitSynced(ctx); err != nil {
						return result{}, fmt.Errorf("release %s: %w", r.version, err)
					}
					if ready := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); ready != nil {
						res.reason = ready.Message
					}
					e.out.printf("  => %s %s in %.1fs: %s\n", r.version, outcome(res.phase), res.took.Seconds(), res.reason)
					return res, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return result{}, fmt.Errorf("release %s did not finish within %s (%s)", r.version, timeout, last)
			}
			return result{}, fmt.Errorf("release %s interrupted: %w", r.version, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// statusKey changes when the status has news to show.
func statusKey(st sluicev1beta1.CanaryStatus) string {
	key := fmt.Sprintf("%s/%d/%d", st.Phase, st.CanaryWeight, st.FailedChecks)
	for _, m := range st.Metrics {
		key += fmt.Sprintf("/%s=%s@%s", m.Name, m.Value, m.LastCheckTime.UTC().Format(time.RFC3339))
	}
	return key
}

// stepLine is the status of a rollout: the weight, each metric's last
// value against its threshold, the failed checks, and how the answers
// the load got since the last line split by version.
func stepLine(c *sluicev1beta1.Canary, version string, answers tally) string {
	st := c.Status
	rate := metricCell(st.Metrics, "success-rate", func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" })
	p99 := metricCell(st.Metrics, "latency-p99", func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "ms" })
	threshold := 1
	if a := c.Spec.Analysis; a != nil && a.Threshold > 0 {
		threshold = a.Threshold
	}
	split := "-"
	if n := answers.total(); n > 0 {
		split = fmt.Sprintf("%3d%% %s of %d", answers.byVersion[version]*100/n, version, n)
		if answers.errors > 0 {
			split += fmt.Sprintf(", %d 5xx", answers.errors)
		}
		if answers.failed > 0 {
			split += fmt.Sprintf(", %d unanswered", answers.failed)
		}
	}
	return fmt.Sprintf("%-12s %5d%%  %-24s %-24s %-7s %s", st.Phase, st.CanaryWeight, rate, p99,
		fmt.Sprintf("%d/%d", st.FailedChecks, threshold), split)
}

// metricCell is a metric's last value and outcome, or "-" before the
// first check.
func metricCell(metrics []sluicev1beta1.CanaryMetricStatus, name string, format func(float64) string) string {
	for _, m := range metrics {
		if m.Name != name {
			continue
		}
		value := m.Value
		if v, err := strconv.ParseFloat(m.Value, 64); err == nil {
			value = format(v)
		}
		verdict := map[sluicev1beta1.MetricOutcome]string{
			sluicev1beta1.MetricPass: "ok", sluicev1beta1.MetricFail: "FAIL", sluicev1beta1.MetricNoData: "no data",
			sluicev1beta1.MetricSkipped: "skipped", sluicev1beta1.MetricError: "error",
		}[m.Outcome]
		return strings.TrimSpace(value + "  " + verdict)
	}
	return "-"
}

// summary prints how each release ended and the traffic, and fails when
// a release ended other than it should.
func (e *env) summary(results []result) error {
	e.out.printf("\nSummary\n")
	var wrong []string
	for _, res := range results {
		r := res.release
		verdict, note := "ok", ""
		if res.phase != r.want {
			verdict, note = "WRONG", "; it should have been "+outcome(r.want)
			wrong = append(wrong, fmt.Sprintf("%s was %s", r.version, outcome(res.phase)))
		}
		e.out.printf("  %-6s %s (%s) was %s in %.1fs%s: %s\n", verdict, r.version, r.about, outcome(res.phase), res.took.Seconds(), note, res.reason)
	}
	t := e.load.tally()
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(t.byVersion)) {
		parts = append(parts, fmt.Sprintf("%s %d", v, t.byVersion[v]))
	}
	e.out.printf("  %d requests through Traefik, answered by %s; %d answers were 5xx, %d requests got no answer\n",
		t.total(), strings.Join(parts, ", "), t.errors, t.failed)
	if len(wrong) > 0 {
		e.out.printf("\nFAIL: %s\n", strings.Join(wrong, ", "))
		return fmt.Errorf("wrong outcome: %s", strings.Join(wrong, ", "))
	}
	e.out.printf("\nPASS: Sluice promoted the healthy release and rolled back the faulty one.\n")
	return nil
}
