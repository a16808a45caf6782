package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/kustomize"
)

func newInstallCmd(g *globals) *cobra.Command {
	var export bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install or upgrade Sluice's CRDs and operator on the cluster",
		Long: `install applies the manifests of kustomize/ built into sluicectl, as
kubectl apply -k kustomize/ would: the sluice-system Namespace, the CRDs,
the operator's RBAC and its Deployment. It uses server-side apply (field
manager ` + FieldManager + `), applies the Namespace, CRDs and ClusterRoles first and
waits until the CRDs are Established, then prints each object with what
was done to it (created, configured or unchanged). Run it again to
upgrade. With --export it prints the manifests instead, as one
multi-document YAML stream, and reads nothing from the cluster.`,
		Example: "  sluicectl install\n  sluicectl install --export > sluice.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := kustomize.Build()
			if err != nil {
				return err
			}
			if export {
				return g.printManifests(objs)
			}
			return g.install(cmd.Context(), objs)
		},
	}
	cmd.Flags().BoolVar(&export, "export", false, "Print the manifests as YAML instead of applying them.")
	return cmd
}

// printManifests writes objs as a multi-document YAML stream.
func (g *globals) printManifests(objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("encode %s %s as YAML: %w", o.GetKind(), o.GetName(), err)
		}
		if _, err := fmt.Fprintf(g.streams.Out, "---\n%s", data); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// install applies objs in stages and waits for the CRDs, as the operator
// applies a Kustomization.
func (g *globals) install(parent context.Context, objs []*unstructured.Unstructured) error {
	ctx, cancel, timeout := g.withTimeout(parent, reconcileTimeout)
	defer cancel()
	manager, err := g.resourceManager()
	if err != nil {
		return err
	}
	changes, err := applyStaged(ctx, manager, objs, timeout)
	if changes != nil {
		for _, e := range changes.Entries {
			fmt.Fprintln(g.streams.Out, e.String())
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return g.watchEnded(parent, ctx, timeout, "the install")
		}
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintf(g.streams.Err, "Installed: %d objects applied, CRDs established.\n", len(changes.Entries))
	return nil
}

// resourceManager applies and waits as the operator does, under
// sluicectl's field manager.
func (g *globals) resourceManager() (*ssa.ResourceManager, error) {
	c, err := g.kubeClient()
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	return ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager}), nil
}

// applyStaged applies objs with server-side apply, Namespaces, CRDs and
// ClusterRoles first, and waits up to timeout for the CRDs to be
// Established before the rest. objs are normalized in place.
func applyStaged(ctx context.Context, manager *ssa.ResourceManager, objs []*unstructured.Unstructured, timeout time.Duration) (*ssa.ChangeSet, error) {
	// Defaults the API server would fill in are set first, so that an
	// unchanged object is not reported as configured.
	if err := normalize.UnstructuredList(objs); err != nil {
		return nil, fmt.Errorf("normalize the manifests: %w", err)
	}
	opts := ssa.DefaultApplyOptions()
	// ApplyAllStaged waits for the CRDs with this timeout, not ctx.
	opts.WaitTimeout = timeout
	return manager.ApplyAllStaged(ctx, objs, opts)
}
