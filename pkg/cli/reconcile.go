package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/manual"
)

func newReconcileCmd(g *globals) *cobra.Command {
	cmd := groupCmd("reconcile", "Ask the operator to reconcile an object now, and wait until it has")
	cmd.Long = `reconcile sets the reconcile request annotation (` + sourcev1.ReconcileRequestAnnotation + `)
on an object, waits until the operator echoes it in status.lastHandledReconcileAt,
and prints the object's Ready condition. It fails when the object is not
Ready, and with exit code 2 when --timeout (2m by default) passes first.`
	cmd.AddCommand(syncCommands(g, "Reconcile", g.reconcile)...)
	return cmd
}

// reconcile asks the operator to reconcile obj and waits until it has.
func (g *globals) reconcile(ctx context.Context, w waiter, c client.Client, k syncKind, obj client.Object) error {
	key := client.ObjectKeyFromObject(obj)
	m := g.requester(c)
	requested, err := m.RequestReconcile(ctx, k.name, obj)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Err, "Requested a reconcile of %s %s; waiting for the operator.\n", k.name, key)

	if err := m.AwaitReconcile(ctx, k.name, obj, requested, func(err error) { fmt.Fprintln(g.streams.Err, err) }); err != nil {
		return g.watchEnded(w.parent, ctx, w.timeout, fmt.Sprintf("the operator to reconcile %s %s (is it running?)", k.name, key))
	}

	ready := manual.StateOf(obj).Ready()
	if ready == nil {
		fmt.Fprintf(g.streams.Out, "%s %s reconciled; it has no Ready condition yet\n", k.name, key)
		return nil
	}
	fmt.Fprintf(g.streams.Out, "%s %s reconciled: Ready=%s: %s\n", k.name, key, ready.Status, ready.Message)
	if ready.Status == metav1.ConditionFalse {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%s %s is not ready (%s): %s", k.name, key, ready.Reason, ready.Message)}
	}
	return nil
}

// poll calls done now and then every pollInterval until it returns true,
// or returns ctx's error when ctx ends first.
func (g *globals) poll(ctx context.Context, done func() bool) error {
	return manual.Requester{PollInterval: pollInterval}.Poll(ctx, done)
}

// mergePatch writes patch to obj as a JSON merge patch, which touches
// nothing else the operator or a GitOps tool may be writing at the same
// time.
func mergePatch(ctx context.Context, c client.Client, obj client.Object, patch map[string]any) error {
	return manual.Requester{Client: c, FieldOwner: FieldManager}.MergePatch(ctx, obj, patch)
}
