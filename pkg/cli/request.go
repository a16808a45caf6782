package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/manual"
)

// Manual requests are annotations, not spec edits: a GitOps tool that
// re-applies the Canary from Git leaves another manager's annotation
// alone, and the operator keeps the request's effect in the status.

func newPromoteCmd(g *globals) *cobra.Command {
	var full bool
	cmd := requestCmd(g, "promote NAME", "Approve the gates a Canary waits at, or with --full promote it now",
		`promote approves the gates a Canary's rollout waits at (confirm-rollout,
confirm-traffic-increase, confirm-promotion) and runs its next step now; the
step's analysis must still pass. With --full it promotes the revision at once,
skipping the remaining steps and their checks; --full also promotes a revision
that was rolled back.`,
		func() sluicev1beta1.Request {
			return sluicev1beta1.Request{Action: sluicev1beta1.RequestPromote, Full: full}
		})
	cmd.Flags().BoolVar(&full, "full", false, "Skip the remaining steps and promote now.")
	return cmd
}

func newAbortCmd(g *globals) *cobra.Command {
	return requestCmd(g, "abort NAME", "Roll a Canary's rollout back now",
		`abort rolls back the revision a Canary waits with or analyses: traffic goes
back to the primary and the canary is scaled to zero. The Canary stays Failed
with that revision until a new one, or until retry.`,
		func() sluicev1beta1.Request { return sluicev1beta1.Request{Action: sluicev1beta1.RequestAbort} })
}

func newRetryCmd(g *globals) *cobra.Command {
	return requestCmd(g, "retry NAME", "Analyse a rolled-back revision again, without changing the workload",
		`retry starts the rollout of a Canary's failed revision again, from its first
step and its confirm-rollout gates, with no change to the Deployment.`,
		func() sluicev1beta1.Request { return sluicev1beta1.Request{Action: sluicev1beta1.RequestRetry} })
}

func newPauseCmd(g *globals) *cobra.Command {
	cmd := groupCmd("pause", "Hold a Canary where it is")
	cmd.AddCommand(requestCmd(g, "canary NAME", "Hold a Canary where it is: no step, promotion or new rollout until resumed",
		`pause holds a Canary where it is: its weight stays, no analysis step runs, it
is not promoted or rolled back, and a new revision does not start, until
`+"`resume canary`"+`. abort and promote --full still act.`,
		func() sluicev1beta1.Request { return sluicev1beta1.Request{Action: sluicev1beta1.RequestPause} }))
	return cmd
}

// newResumeCanaryCmd is `resume canary NAME`, beside the sync kinds'
// resume.
func newResumeCanaryCmd(g *globals) *cobra.Command {
	return requestCmd(g, "canary NAME", "Let a paused Canary go on",
		`resume lifts a pause: a step that fell due runs now.`,
		func() sluicev1beta1.Request { return sluicev1beta1.Request{Action: sluicev1beta1.RequestResume} })
}

// requestCmd builds a command that sends the request made by build to the
// named Canary and waits for the operator's answer.
func requestCmd(g *globals, use, short, long string, build func() sluicev1beta1.Request) *cobra.Command {
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		Long:              long + "\n\nIt waits for the operator's answer (status.lastRequest) and fails when the\nrequest is refused, with exit code 2 when --timeout (2m by default) passes first.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeNames(canaryKind()),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.request(cmd.Context(), args[0], build())
		},
	}
	if strings.HasPrefix(use, "canary ") {
		cmd.Aliases = []string{"canaries"}
	}
	return cmd
}

// request annotates the Canary with r and waits until the operator
// answers it.
func (g *globals) request(parent context.Context, name string, r sluicev1beta1.Request) error {
	ctx, cancel, timeout := g.withTimeout(parent, reconcileTimeout)
	defer cancel()
	cn, err := g.getCanary(ctx, name)
	if err != nil {
		return err
	}
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(cn)
	m := g.requester(c)
	r.By = g.whoAmI(ctx, c)
	r, err = m.SendCanary(ctx, cn, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Err, "Requested %s of Canary %s; waiting for the operator.\n", manual.Describe(r), key)

	answer, err := m.AwaitCanary(ctx, key, r.ID, func(err error) { fmt.Fprintln(g.streams.Err, err) })
	if err != nil {
		return g.watchEnded(parent, ctx, timeout, fmt.Sprintf("the operator to answer the %s request on Canary %s (is it running?)", r.Action, key))
	}
	if answer.Outcome == sluicev1beta1.RequestRefused {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("canary %s: %s", key, answer.Message)}
	}
	fmt.Fprintf(g.streams.Out, "Canary %s: %s\n", key, answer.Message)
	return nil
}

// requester sends manual requests through c, as sluicectl.
func (g *globals) requester(c client.Client) manual.Requester {
	return manual.Requester{Client: c, FieldOwner: FieldManager, PollInterval: pollInterval}
}

// whoAmI names the user the API server authenticates, for the request's
// record. A server that does not answer SelfSubjectReview leaves it to
// the operator's default.
func (g *globals) whoAmI(ctx context.Context, c client.Client) string {
	user, err := g.requester(c).WhoAmI(ctx)
	if err != nil {
		fmt.Fprintf(g.streams.Err, "could not ask the API server who you are (%v); the request is sent unnamed\n", err)
		return ""
	}
	return user
}
