package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newSuspendCmd(g *globals) *cobra.Command {
	cmd := groupCmd("suspend", "Stop the operator from reconciling an object (sets spec.suspend)")
	cmd.AddCommand(syncCommands(g, "Suspend", func(ctx context.Context, _ waiter, c client.Client, k syncKind, obj client.Object) error {
		if err := g.setSuspend(ctx, c, k, obj, true); err != nil {
			return err
		}
		fmt.Fprintf(g.streams.Out, "%s %s suspended\n", k.name, client.ObjectKeyFromObject(obj))
		return nil
	})...)
	return cmd
}

func newResumeCmd(g *globals) *cobra.Command {
	cmd := groupCmd("resume", "Let the operator reconcile a suspended object again, or a paused Canary go on")
	cmd.AddCommand(syncCommands(g, "Resume", func(ctx context.Context, w waiter, c client.Client, k syncKind, obj client.Object) error {
		if err := g.setSuspend(ctx, c, k, obj, false); err != nil {
			return err
		}
		fmt.Fprintf(g.streams.Out, "%s %s resumed\n", k.name, client.ObjectKeyFromObject(obj))
		// Changes made while it was suspended are picked up now rather
		// than at the next interval.
		return g.reconcile(ctx, w, c, k, obj)
	})...)
	cmd.AddCommand(newResumeCanaryCmd(g))
	return cmd
}

// setSuspend sets spec.suspend, and nothing else.
func (g *globals) setSuspend(ctx context.Context, c client.Client, k syncKind, obj client.Object, suspend bool) error {
	return g.requester(c).SetSuspend(ctx, k.name, obj, suspend)
}
