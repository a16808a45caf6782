package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newGetCmd(g *globals) *cobra.Command {
	cmd := groupCmd("get", "Display Canaries and sync-core objects")
	cmd.AddCommand(
		newGetCanariesCmd(g),
		newGetSourcesCmd(g),
		newGetImagesCmd(g),
		newGetSyncCmd(g, kustomizationKind(), "List Kustomizations with the revision they applied"),
		newGetSyncCmd(g, helmReleaseKind(), "List HelmReleases with the chart version they released"),
		newGetAlertsCmd(g),
		newGetProvidersCmd(g),
	)
	return cmd
}

// groupCmd is a command that only holds subcommands. Cobra would print
// the help for an unknown subcommand and succeed; a typo should fail.
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		// It runs only to show help or refuse a typo: it takes no flags of
		// its own.
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				var names []string
				for _, c := range cmd.Commands() {
					if c.IsAvailableCommand() {
						names = append(names, c.Name())
					}
				}
				return fmt.Errorf("unknown command %q for %q; use one of: %s", args[0], cmd.CommandPath(), strings.Join(names, ", "))
			}
			return cmd.Help()
		},
	}
}

// fetch reads the object named by args, or lists the kind when args is
// empty. single says which it did.
func (g *globals) fetch(ctx context.Context, k kind, args []string) (c client.Client, objs []client.Object, single bool, err error) {
	c, err = g.kubeClient()
	if err != nil {
		return nil, nil, false, err
	}
	if len(args) == 1 {
		ns, err := g.namedNamespace()
		if err != nil {
			return nil, nil, false, err
		}
		obj, err := getObject(ctx, c, k, ns, args[0])
		if err != nil {
			return nil, nil, false, err
		}
		return c, []client.Object{obj}, true, nil
	}
	ns, err := g.listNamespace()
	if err != nil {
		return nil, nil, false, err
	}
	objs, err = listObjects(ctx, c, k, ns)
	return c, objs, false, err
}

// header prepends the NAMESPACE column when listing every namespace.
func (g *globals) header(cols ...string) []string {
	if g.allNamespaces {
		return append([]string{"NAMESPACE"}, cols...)
	}
	return cols
}

// cells prepends obj's namespace when listing every namespace.
func (g *globals) cells(obj client.Object, cells ...string) []string {
	if g.allNamespaces {
		return append([]string{obj.GetNamespace()}, cells...)
	}
	return cells
}

// noneFound tells, on Err as kubectl does, that a list came back empty,
// so that Out stays empty for scripts.
func (g *globals) noneFound(what string) error {
	ns, err := g.listNamespace()
	if err != nil {
		return err
	}
	where := "any namespace"
	if ns != "" {
		where = fmt.Sprintf("namespace %q", ns)
	}
	fmt.Fprintf(g.streams.Err, "No %s found in %s.\n", what, where)
	return nil
}
