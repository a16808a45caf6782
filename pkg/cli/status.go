package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func newStatusCmd(g *globals) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a Canary's release progress and metrics, or follow it to its end with --watch",
		Long: `status shows a Canary's phase, weight, iterations, failed checks and the
result of each metric of its last analysis step.

With --watch it prints a line at each change until the release ends, and
exits 0 when the Canary is promoted, 1 when it is rolled back and 2 when
--timeout (30m by default) passes first.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeNames(canaryKind()),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output != outputTable {
				return fmt.Errorf("status prints text only; use `get canaries %s -o %s` for the object", args[0], g.output)
			}
			if watch {
				return g.watchStatus(cmd.Context(), args[0])
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			cn, err := g.getCanary(ctx, args[0])
			if err != nil {
				return err
			}
			return printStatus(g.streams.Out, cn, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "Print each change until the release is promoted (exit 0), rolled back (exit 1) or --timeout passes (exit 2).")
	return cmd
}

// printStatus writes the status of a Canary as a block of fields and a
// table of its metrics.
func printStatus(out io.Writer, cn *sluicev1beta1.Canary, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	field := func(name, value string) {
		if value == "" {
			value = none
		}
		fmt.Fprintf(w, "%s:\t%s\n", name, value)
	}
	field("Canary", cn.Namespace+"/"+cn.Name)
	field("Target", cn.Spec.TargetRef.Kind+"/"+cn.Spec.TargetRef.Name)
	field("Phase", string(cn.Status.Phase))
	field("Weight", strconv.Itoa(cn.Status.CanaryWeight)+"%")
	field("Iterations", strconv.Itoa(cn.Status.Iterations))
	field("Failed checks", failedChecks(cn))
	if t := cn.Status.LastTransitionTime; !t.IsZero() {
		field("Last transition", age(t.Time, now)+" ago")
	} else {
		field("Last transition", "")
	}
	if cond := meta.FindStatusCondition(cn.Status.Conditions, sluicev1beta1.ReadyCondition); cond != nil {
		field("Message", cond.Message)
	}
	if p := cn.Status.Paused; p != nil {
		field("Paused", "by "+p.By+", "+age(p.Since.Time, now)+" ago")
	}
	if cond := meta.FindStatusCondition(cn.Status.Conditions, sluicev1beta1.FrozenCondition); cond != nil {
		field("Frozen", cond.Message)
	}
	if r := cn.Status.LastRequest; r != nil {
		field("Last request", fmt.Sprintf("%s (%s, %s ago): %s", r.Action, r.Outcome, age(r.Time.Time, now), r.Message))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if len(cn.Status.Metrics) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	t := newTable(out, "METRIC", "VALUE", "RANGE", "OUTCOME", "CHECKED", "MESSAGE")
	for _, m := range cn.Status.Metrics {
		t.row(m.Name, m.Value, metricRange(cn, m.Name), string(m.Outcome), age(m.LastCheckTime.Time, now), m.Message)
	}
	return t.flush()
}

// statusLine is one line of `status --watch`: everything that can change
// during a release, so that a line is printed exactly when something did.
func statusLine(cn *sluicev1beta1.Canary) string {
	phase := string(cn.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	parts := []string{
		phase,
		fmt.Sprintf("weight %d%%", cn.Status.CanaryWeight),
		fmt.Sprintf("iterations %d", cn.Status.Iterations),
		"failed checks " + failedChecks(cn),
	}
	var metrics []string
	for _, m := range cn.Status.Metrics {
		value := m.Value
		if value == "" {
			value = none
		}
		metrics = append(metrics, fmt.Sprintf("%s %s (%s) %s", m.Name, value, metricRange(cn, m.Name), m.Outcome))
	}
	if len(metrics) > 0 {
		parts = append(parts, "metrics: "+strings.Join(metrics, ", "))
	}
	return strings.Join(parts, "  ")
}

// failedChecks is the failed checks against the threshold that rolls back.
func failedChecks(cn *sluicev1beta1.Canary) string {
	if a := cn.Spec.Analysis; a != nil && a.Threshold > 0 {
		return fmt.Sprintf("%d/%d", cn.Status.FailedChecks, a.Threshold)
	}
	return strconv.Itoa(cn.Status.FailedChecks)
}

// metricRange is the accepted range of the named metric, from the spec:
// the status holds only the value.
func metricRange(cn *sluicev1beta1.Canary, name string) string {
	if cn.Spec.Analysis == nil {
		return none
	}
	for _, m := range cn.Spec.Analysis.Metrics {
		if m.Name != name {
			continue
		}
		lo, hi := m.Range()
		switch {
		case lo != nil && hi != nil:
			return formatFloat(*lo) + ".." + formatFloat(*hi)
		case lo != nil:
			return ">= " + formatFloat(*lo)
		case hi != nil:
			return "<= " + formatFloat(*hi)
		}
	}
	return none
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}
