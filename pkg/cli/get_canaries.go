package cli

import (
	"context"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func newGetCanariesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "canaries [NAME]",
		Aliases:           []string{"canary"},
		Short:             "List Canaries with their phase, weight and the revision of their target",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: g.completeNames(canaryKind()),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, _ := g.withTimeout(cmd.Context(), readTimeout)
			defer cancel()
			c, objs, single, err := g.fetch(ctx, canaryKind(), args)
			if err != nil {
				return err
			}
			if g.output != outputTable {
				return g.printObjects(c, objs, single)
			}
			if len(objs) == 0 {
				return g.noneFound("Canaries")
			}
			now := time.Now()
			t := newTable(g.streams.Out, g.header("NAME", "PHASE", "WEIGHT", "FAILED", "LAST TRANSITION", "REVISION")...)
			for _, obj := range objs {
				cn, ok := obj.(*sluicev1beta1.Canary)
				if !ok {
					continue
				}
				t.row(g.cells(cn,
					cn.Name,
					phaseColumn(cn),
					strconv.Itoa(cn.Status.CanaryWeight),
					strconv.Itoa(cn.Status.FailedChecks),
					age(cn.Status.LastTransitionTime.Time, now),
					targetImage(ctx, c, cn),
				)...)
			}
			return t.flush()
		},
	}
}

// targetImage is the image of the first container of the Canary's target,
// which is what a release changes most of the time. It is "" when the
// target cannot be read: a missing object or a denied read is not worth
// failing the whole list for.
func targetImage(ctx context.Context, c client.Client, cn *sluicev1beta1.Canary) string {
	key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}
	var tmpl *corev1.PodTemplateSpec
	switch cn.Spec.TargetRef.Kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); err != nil {
			return ""
		}
		tmpl = &d.Spec.Template
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		if err := c.Get(ctx, key, d); err != nil {
			return ""
		}
		tmpl = &d.Spec.Template
	default:
		return ""
	}
	if len(tmpl.Spec.Containers) == 0 {
		return ""
	}
	return tmpl.Spec.Containers[0].Image
}

// phaseColumn is the phase, marked when a manual pause holds it, or a
// ReleasePolicy queues or freezes it.
func phaseColumn(cn *sluicev1beta1.Canary) string {
	if cn.Status.Paused != nil {
		return string(cn.Status.Phase) + " (paused)"
	}
	if ready := meta.FindStatusCondition(cn.Status.Conditions, sluicev1beta1.ReadyCondition); ready != nil {
		switch ready.Reason {
		case sluicev1beta1.ReasonQueued:
			return string(cn.Status.Phase) + " (queued)"
		case sluicev1beta1.ReasonFrozen:
			return string(cn.Status.Phase) + " (frozen)"
		}
	}
	return string(cn.Status.Phase)
}
