package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// syncAction is what reconcile, suspend or resume does to one object.
type syncAction func(ctx context.Context, w waiter, c client.Client, k syncKind, obj client.Object) error

// waiter carries what a command needs to tell a timeout from Ctrl-C.
type waiter struct {
	// parent is the command's context, cancelled by Ctrl-C; the action's
	// ctx is parent bounded by timeout.
	parent  context.Context
	timeout time.Duration
}

// syncCommands builds the kinds a verb (as help shows it: "Suspend") acts
// on: `source git|helm|chart|oci|bucket NAME`, `image repository|update NAME`,
// `kustomization NAME` and `helmrelease NAME`.
func syncCommands(g *globals, verb string, act syncAction) []*cobra.Command {
	source := groupCmd("source", verb+" a GitRepository, HelmRepository, HelmChart, OCIRepository or Bucket")
	source.Aliases = []string{"sources"}
	for _, k := range sourceKinds() {
		source.AddCommand(syncCommand(g, verb, k, act))
	}
	image := groupCmd("image", verb+" an ImageRepository or ImageUpdateAutomation")
	image.Aliases = []string{"images"}
	for _, k := range imageKinds() {
		image.AddCommand(syncCommand(g, verb, k, act))
	}
	return []*cobra.Command{source, image, syncCommand(g, verb, kustomizationKind(), act), syncCommand(g, verb, helmReleaseKind(), act)}
}

func syncCommand(g *globals, verb string, k syncKind, act syncAction) *cobra.Command {
	return &cobra.Command{
		Use:               k.use + " NAME",
		Aliases:           append([]string{k.use + "s"}, k.aliases...),
		Short:             verb + " a " + k.name,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeNames(k.kind),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, timeout := g.withTimeout(cmd.Context(), reconcileTimeout)
			defer cancel()
			c, err := g.kubeClient()
			if err != nil {
				return err
			}
			ns, err := g.namedNamespace()
			if err != nil {
				return err
			}
			obj, err := getObject(ctx, c, k.kind, ns, args[0])
			if err != nil {
				return err
			}
			return act(ctx, waiter{parent: cmd.Context(), timeout: timeout}, c, k, obj)
		},
	}
}
