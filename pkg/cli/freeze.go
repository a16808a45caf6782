package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// The stop-the-line switch is the spec of a ReleasePolicy, not a flag of
// the operator: it is kept in the API, so that every replica and a
// restarted operator honour it, and `kubectl get releasepolicies` shows
// it.

// errNeedAll refuses freeze and unfreeze without a scope.
var errNeedAll = errors.New("name the scope: --all, the whole cluster, is the only one")

func newFreezeCmd(g *globals) *cobra.Command {
	var all bool
	var reason string
	cmd := &cobra.Command{
		Use:   "freeze --all --reason REASON",
		Short: "Stop the line: no Canary starts or advances a release until unfreeze",
		Long: `freeze --all stops the line: it sets spec.stop on the ReleasePolicy
` + sluicev1beta1.StopTheLinePolicy + `, which matches every Canary, creating it if needed, with
the reason, who you are (a SelfSubjectReview) and the time. No new revision
starts, and releases in flight hold their weight, until ` + "`unfreeze --all`" + `.
Failed checks still roll back, and ` + "`abort`" + ` still works. Every Canary shows the
stop in its Frozen condition.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all {
				return errNeedAll
			}
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required: it is shown on every Canary held")
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			return g.freeze(ctx, reason)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "Stop every Canary of the cluster.")
	cmd.Flags().StringVar(&reason, "reason", "", "Why, such as \"incident 123\"; shown on every Canary held.")
	return cmd
}

func newUnfreezeCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unfreeze --all",
		Short: "Lift the stop that freeze --all set",
		Long: `unfreeze --all clears spec.stop on the ReleasePolicy ` + sluicev1beta1.StopTheLinePolicy + `:
waiting revisions start, and releases that held go on. Freeze windows of
other ReleasePolicies stay in force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all {
				return errNeedAll
			}
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			return g.unfreeze(ctx)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "Lift the cluster-wide stop.")
	return cmd
}

// freeze sets spec.stop on the stop-the-line policy, creating it if it is
// not there.
func (g *globals) freeze(ctx context.Context, reason string) error {
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	now := metav1.Now()
	stop := &sluicev1beta1.StopTheLine{Reason: reason, SetBy: g.whoAmI(ctx, c), SetAt: &now}
	rp := &sluicev1beta1.ReleasePolicy{}
	err = c.Get(ctx, client.ObjectKey{Name: sluicev1beta1.StopTheLinePolicy}, rp)
	switch {
	case apierrors.IsNotFound(err):
		rp = &sluicev1beta1.ReleasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: sluicev1beta1.StopTheLinePolicy, Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager}},
			Spec:       sluicev1beta1.ReleasePolicySpec{Stop: stop},
		}
		if err := c.Create(ctx, rp, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("create ReleasePolicy %s: %w", sluicev1beta1.StopTheLinePolicy, err)
		}
	case err != nil:
		return fmt.Errorf("get ReleasePolicy %s: %w", sluicev1beta1.StopTheLinePolicy, err)
	default:
		if err := mergePatch(ctx, c, rp, map[string]any{"spec": map[string]any{"stop": stop}}); err != nil {
			return fmt.Errorf("set spec.stop on ReleasePolicy %s: %w", sluicev1beta1.StopTheLinePolicy, err)
		}
	}
	fmt.Fprintf(g.streams.Out, "Stopped the line%s: no Canary starts or advances a release until `unfreeze --all` (ReleasePolicy %s: %s)\n",
		named(" as ", stop.SetBy), sluicev1beta1.StopTheLinePolicy, reason)
	return nil
}

// unfreeze clears spec.stop on the stop-the-line policy.
func (g *globals) unfreeze(ctx context.Context) error {
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	rp := &sluicev1beta1.ReleasePolicy{}
	err = c.Get(ctx, client.ObjectKey{Name: sluicev1beta1.StopTheLinePolicy}, rp)
	if apierrors.IsNotFound(err) || (err == nil && rp.Spec.Stop == nil) {
		fmt.Fprintln(g.streams.Out, "The line is not stopped: nothing to unfreeze")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get ReleasePolicy %s: %w", sluicev1beta1.StopTheLinePolicy, err)
	}
	was := rp.Spec.Stop
	if err := mergePatch(ctx, c, rp, map[string]any{"spec": map[string]any{"stop": nil}}); err != nil {
		return fmt.Errorf("clear spec.stop on ReleasePolicy %s: %w", sluicev1beta1.StopTheLinePolicy, err)
	}
	fmt.Fprintf(g.streams.Out, "Lifted the stop%s (%s): waiting revisions start and held releases go on\n", named(" set by ", was.SetBy), was.Reason)
	return nil
}

// named is prefix+user, or nothing for an unnamed user.
func named(prefix, user string) string {
	if user == "" {
		return ""
	}
	return prefix + user
}
