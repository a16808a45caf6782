package apply

import (
	"context"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Change is what applying one object would do to it.
type Change struct {
	// Entry names the object and the action: created, configured,
	// unchanged or skipped.
	Entry ssa.ChangeSetEntry
	// Live is the object on the cluster and Merged the object as the
	// apply would leave it, both without managed fields and with Secret
	// data masked; they are set only when the object would be configured.
	Live, Merged *unstructured.Unstructured
}

// Preview is what Apply would do, found with server-side dry runs.
type Preview struct {
	// Changes has one entry per object, in the order given.
	Changes []Change
	// Pruned are the objects of Options.Previous that Apply would
	// delete, when Options.Prune is set.
	Pruned []*unstructured.Unstructured
}

// Diff dry-runs the apply of objs as Apply would run it, with the same
// field manager, normalization and ownership labels, so that a preview
// shows only what the operator itself would change. It changes objs as
// Apply does, and nothing on the cluster.
func (a *Applier) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts Options) (*Preview, error) {
	if err := a.prepare(objs, opts); err != nil {
		return nil, err
	}
	ao := applyOptions(opts)
	diffOpts := ssa.DefaultDiffOptions()
	diffOpts.Force = ao.Force
	diffOpts.Exclusions = ao.ExclusionSelector
	diffOpts.IfNotPresentSelector = ao.IfNotPresentSelector
	diffOpts.ForceSelector = ao.ForceSelector
	diffOpts.DriftIgnoreRules = ao.DriftIgnoreRules
	preview := &Preview{}
	for _, o := range objs {
		entry, live, merged, err := a.manager.Diff(ctx, o, diffOpts)
		if err != nil {
			return nil, err
		}
		preview.Changes = append(preview.Changes, Change{Entry: *entry, Live: live, Merged: merged})
	}
	if opts.Prune {
		stale, err := staleObjects(opts.Previous, inventory(objs))
		if err != nil {
			return nil, err
		}
		preview.Pruned = stale
	}
	return preview, nil
}
