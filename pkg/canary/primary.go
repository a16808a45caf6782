package canary

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/configtrack"
	"sluice.dev/sluice/pkg/workload"
)

// syncPrimary makes the primary a copy of the target as observed: first
// the -primary copies of the tracked configs, then the workload that reads
// them, then its autoscaler. It serves both the creation of the primary
// and every promotion.
func (r *Reconciler) syncPrimary(ctx context.Context, c *sluicev1beta1.Canary, o *observed) error {
	renames := map[string]string{}
	for _, cfg := range o.configs {
		key, err := r.syncConfigCopy(ctx, c, cfg)
		if err != nil {
			return err
		}
		renames[key] = configtrack.PrimaryName(cfg.GetName())
	}
	if workload.IsKnative(o.target) {
		return r.promoteKnativeRevision(ctx, c, o)
	}
	primary, err := workload.NewTarget(c.Spec.TargetRef)
	if err != nil {
		return err
	}
	primary.SetName(o.target.GetName() + workload.PrimarySuffix)
	primary.SetNamespace(c.Namespace)
	_, err = controllerutil.CreateOrPatch(ctx, r.Client, primary, func() error {
		if err := workload.Copy(primary, o.target, workload.PrimaryOptions{
			Revision:             o.in.Target.Revision,
			ConfigRenames:        renames,
			ConfigChecksum:       configtrack.Checksum(o.in.Target.Configs),
			IncludeLabelPrefixes: r.IncludeLabelPrefixes,
		}); err != nil {
			return err
		}
		return controllerutil.SetControllerReference(c, primary, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", o.target.GetName(), primary.GetName(), err)
	}
	r.wrote(c, primary)
	if o.autoscaler != nil {
		return o.autoscaler.syncPrimary(ctx, r, c, primary.GetName())
	}
	return nil
}

// promoteKnativeRevision makes the Knative Service's latest created
// Revision its primary, by its annotation: Knative keeps every Revision,
// so promotion copies nothing.
func (r *Reconciler) promoteKnativeRevision(ctx context.Context, c *sluicev1beta1.Canary, o *observed) error {
	latest := workload.KnativeLatestRevision(o.target)
	if latest == "" {
		return fmt.Errorf("promote Knative Service %s: Knative has not created a Revision yet", o.target.GetName())
	}
	return r.patchWorkload(ctx, c, o.target, func(obj client.Object) {
		annotations := obj.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[workload.KnativePrimaryAnnotation] = latest
		obj.SetAnnotations(annotations)
	})
}

func (r *Reconciler) syncConfigCopy(ctx context.Context, c *sluicev1beta1.Canary, cfg client.Object) (string, error) {
	var copied client.Object
	var ref configtrack.Ref
	var fill func()
	switch src := cfg.(type) {
	case *corev1.ConfigMap:
		want := configtrack.PrimaryConfigMap(src)
		dst := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		copied, ref = dst, configtrack.Ref{Kind: configtrack.ConfigMap, Name: src.Name}
		fill = func() { dst.Labels, dst.Data, dst.BinaryData = want.Labels, want.Data, want.BinaryData }
	case *corev1.Secret:
		want := configtrack.PrimarySecret(src)
		dst := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		copied, ref = dst, configtrack.Ref{Kind: configtrack.Secret, Name: src.Name}
		fill = func() {
			dst.Labels, dst.Type, dst.Data, dst.StringData = want.Labels, want.Type, want.Data, want.StringData
		}
	default:
		return "", fmt.Errorf("unexpected config %T", cfg)
	}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, copied, func() error {
		fill()
		return controllerutil.SetControllerReference(c, copied, r.Scheme)
	})
	if err != nil {
		return "", fmt.Errorf("copy %s %s to %s: %w", ref.Kind, ref.Name, copied.GetName(), err)
	}
	return ref.Key(), nil
}

// canaryReplicas is how many replicas the target gets when it leaves
// zero: its autoscaler's minimum, else as many as the primary runs.
func canaryReplicas(o *observed) int32 {
	if o.autoscaler != nil {
		return max(o.autoscaler.minReplicas(), 1)
	}
	if o.primary != nil {
		return max(workload.Replicas(o.primary), 1)
	}
	return 1
}

// rollbackReplicas is what an autoscaled primary needs before it takes
// back the canary's traffic: its own replicas plus the canary's ready
// ones, within its autoscaler's maximum.
func rollbackReplicas(c *sluicev1beta1.Canary, o *observed) int32 {
	want := workload.Replicas(o.primary) + workload.ReadyReplicas(o.target)
	if o.autoscaler != nil {
		want = min(want, primaryMaxReplicas(c, o.autoscaler))
	}
	return max(want, workload.Replicas(o.primary))
}
