package cli

import (
	"context"
	"fmt"
	iofs "io/fs"
	"os"

	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/pkg/sync/handoff"
)

func newDiffCmd(g *globals) *cobra.Command {
	cmd := groupCmd("diff", "Show what applying local manifests would change on the cluster")
	cmd.AddCommand(newDiffKustomizationCmd(g))
	return cmd
}

func newDiffKustomizationCmd(g *globals) *cobra.Command {
	var path string
	k := kustomizationKind()
	cmd := &cobra.Command{
		Use:     k.use + " NAME --path DIR",
		Aliases: k.aliases,
		Short:   "Show what a Kustomization would change if its source held a local folder",
		Long: `diff kustomization builds a local folder the way the operator builds the
Kustomization's spec.path (its targetNamespace, patches, images,
components and postBuild substitution), dry-runs the server-side apply of
each object, and prints:

  ► Kind/namespace/name created   an object the cluster does not have
  ► Kind/namespace/name drifted   followed by a unified diff, live to merged
  ► Kind/namespace/name deleted   an object of the inventory the build
                                  drops, when spec.prune is set

Secret data is masked. It exits with 1 when something would change, as
flux diff does, and with 0 when the cluster is in sync.`,
		Example:           "  sluicectl diff kustomization apps --path ./deploy/apps -n apps",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeNames(k.kind),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.diffKustomization(cmd.Context(), args[0], path)
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "Local folder to build in place of the Kustomization's spec.path in its source.")
	_ = cmd.MarkFlagRequired("path")
	_ = cmd.MarkFlagDirname("path")
	return cmd
}

func (g *globals) diffKustomization(parent context.Context, name, path string) error {
	ctx, cancel, _ := g.withTimeout(parent, readTimeout)
	defer cancel()
	k := kustomizationKind()
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	ns, err := g.namedNamespace()
	if err != nil {
		return err
	}
	obj, err := getObject(ctx, c, k.kind, ns, name)
	if err != nil {
		return err
	}
	ks, ok := obj.(*syncv1.Kustomization)
	if !ok {
		return fmt.Errorf("read Kustomization %s/%s: got a %T", ns, name, obj)
	}
	// The folder stands for spec.path in the source: it is built as the
	// artifact's root.
	files, err := readFolder(path)
	if err != nil {
		return err
	}
	vars, err := build.Variables(ctx, c, ks)
	if err != nil {
		return fmt.Errorf("read the postBuild variables of Kustomization %s/%s: %w", ns, name, err)
	}
	opts := build.ForKustomization(ks, vars)
	opts.Path = ""
	objs, err := build.Build(files, opts)
	if err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	// The operator leaves alone what a Canary took over; so does the
	// preview, or it would show the Canary's replicas as drift.
	guard := handoff.Guard{Client: c}
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return err
	}
	if err := guard.LeaveAlone(ctx, objs, targets); err != nil {
		return err
	}
	preview, err := apply.New(c, c).Diff(ctx, objs, apply.ForKustomization(ks))
	if err != nil {
		return fmt.Errorf("dry-run the apply of %s: %w", path, err)
	}
	changed, err := g.printPreview(preview)
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(ks)
	if changed > 0 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("applying %s for Kustomization %s would change %d objects", path, key, changed)}
	}
	fmt.Fprintf(g.streams.Err, "Kustomization %s is in sync with %s.\n", key, path)
	return nil
}

// printPreview writes a line per object that would change, and a diff
// per drifted one. It returns how many would change.
func (g *globals) printPreview(p *apply.Preview) (int, error) {
	changed := 0
	for _, ch := range p.Changes {
		switch ch.Entry.Action {
		case ssa.CreatedAction:
			fmt.Fprintf(g.streams.Out, "► %s created\n", ch.Entry.Subject)
		case ssa.ConfiguredAction:
			diff, err := unifiedDiff(ch.Live, ch.Merged)
			if err != nil {
				return changed, fmt.Errorf("diff %s: %w", ch.Entry.Subject, err)
			}
			fmt.Fprintf(g.streams.Out, "► %s drifted\n%s", ch.Entry.Subject, diff)
		default:
			continue
		}
		changed++
	}
	for _, o := range p.Pruned {
		fmt.Fprintf(g.streams.Out, "► %s deleted\n", ssautils.FmtUnstructured(o))
		changed++
	}
	return changed, nil
}

// unifiedDiff is the diff of two objects' YAML, as kubectl diff shows it.
func unifiedDiff(live, merged *unstructured.Unstructured) (string, error) {
	a, err := yaml.Marshal(live.Object)
	if err != nil {
		return "", err
	}
	b, err := yaml.Marshal(merged.Object)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(a)),
		B:        difflib.SplitLines(string(b)),
		FromFile: "live",
		ToFile:   "merged",
		Context:  3,
	})
}

// readFolder reads the files under dir as build.Build takes a source
// artifact: by slash-separated path relative to dir.
func readFolder(dir string) (map[string][]byte, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("--path %s: not a folder", dir)
	}
	files := map[string][]byte{}
	root := os.DirFS(dir)
	err = iofs.WalkDir(root, ".", func(name string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A repository's history is no part of its manifests.
			if d.Name() == ".git" {
				return iofs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := iofs.ReadFile(root, name)
		if err != nil {
			return err
		}
		files[name] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read --path %s: %w", dir, err)
	}
	return files, nil
}
