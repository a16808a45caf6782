package cli

import (
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/manual"
)

func newGetSourcesCmd(g *globals) *cobra.Command {
	return newGetGroupCmd(g, "sources", "source", "List GitRepositories, HelmRepositories, HelmCharts, OCIRepositories and Buckets with the revision they fetched", sourceKinds())
}

func newGetImagesCmd(g *globals) *cobra.Command {
	return newGetGroupCmd(g, "images", "image",
		"List ImageRepositories with their tag count, ImagePolicies with the image they chose, and ImageUpdateAutomations with their last commit",
		append(imageKinds()[:1:1], imagePolicyKind(), imageKinds()[1]))
}

// newGetGroupCmd lists several kinds in one table, each row named
// Kind/name.
func newGetGroupCmd(g *globals, use, alias, short string, kinds []syncKind) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Aliases: []string{alias},
		Short:   short,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			c, err := g.kubeClient()
			if err != nil {
				return err
			}
			ns, err := g.listNamespace()
			if err != nil {
				return err
			}
			var objs []client.Object
			var names []string
			for _, k := range kinds {
				list, err := listObjects(ctx, c, k.kind, ns)
				if err != nil {
					return err
				}
				objs = append(objs, list...)
				for _, o := range list {
					names = append(names, k.name+"/"+o.GetName())
				}
			}
			if g.output != outputTable {
				return g.printObjects(c, objs, false)
			}
			if len(objs) == 0 {
				return g.noneFound(use)
			}
			t := newTable(g.streams.Out, g.header("NAME", "READY", "SUSPENDED", "REVISION", "MESSAGE")...)
			for i, obj := range objs {
				t.row(g.syncRow(obj, names[i])...)
			}
			return t.flush()
		},
	}
}

func newGetSyncCmd(g *globals, k syncKind, short string) *cobra.Command {
	return &cobra.Command{
		Use:               k.use + "s [NAME]",
		Aliases:           append([]string{k.use}, k.aliases...),
		Short:             short,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: g.completeNames(k.kind),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			c, objs, single, err := g.fetch(ctx, k.kind, args)
			if err != nil {
				return err
			}
			if g.output != outputTable {
				return g.printObjects(c, objs, single)
			}
			if len(objs) == 0 {
				return g.noneFound(k.name + " objects")
			}
			t := newTable(g.streams.Out, g.header("NAME", "READY", "SUSPENDED", "REVISION", "MESSAGE")...)
			for _, obj := range objs {
				t.row(g.syncRow(obj, obj.GetName())...)
			}
			return t.flush()
		},
	}
}

// syncRow is the table row of a sync-core object shown as name.
func (g *globals) syncRow(obj client.Object, name string) []string {
	s := manual.StateOf(obj)
	ready, message := "Unknown", ""
	if cond := s.Ready(); cond != nil {
		ready, message = string(cond.Status), cond.Message
	}
	return g.cells(obj, name, ready, strconv.FormatBool(s.Suspended), s.Revision, message)
}
