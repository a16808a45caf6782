package canary

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/workload"
)

// hpa is a HorizontalPodAutoscaler target's autoscaler.
type hpa struct {
	obj *autoscalingv2.HorizontalPodAutoscaler
}

func observeHPA(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary) (autoscaler, error) {
	a := &autoscalingv2.HorizontalPodAutoscaler{}
	name := c.Spec.AutoscalerRef.Name
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, a); apierrors.IsNotFound(err) {
		return nil, problem("AutoscalerNotFound", "spec.autoscalerRef: HorizontalPodAutoscaler %s not found", name)
	} else if err != nil {
		return nil, fmt.Errorf("get HorizontalPodAutoscaler %s: %w", name, err)
	}
	return hpa{a}, nil
}

func (h hpa) minReplicas() int32 {
	if m := h.obj.Spec.MinReplicas; m != nil {
		return *m
	}
	return 0
}

func (h hpa) maxReplicas() int32 { return h.obj.Spec.MaxReplicas }

// hold does nothing: an HPA leaves a workload at zero replicas alone.
func (h hpa) hold(context.Context, *Reconciler, bool) error { return nil }

// syncPrimary gives the primary a copy of the target's HPA, with the
// Canary's replica overrides.
func (h hpa) syncPrimary(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary, primaryName string) error {
	target := h.obj
	copied := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: target.Name + workload.PrimarySuffix, Namespace: c.Namespace}}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, copied, func() error {
		copied.Spec = *target.Spec.DeepCopy()
		copied.Spec.ScaleTargetRef.Name = primaryName
		if o := c.Spec.AutoscalerRef.PrimaryScalerReplicas; o != nil {
			if o.MinReplicas != nil {
				copied.Spec.MinReplicas = o.MinReplicas
			}
			if o.MaxReplicas != nil {
				copied.Spec.MaxReplicas = *o.MaxReplicas
			}
		}
		return controllerutil.SetControllerReference(c, copied, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("copy HorizontalPodAutoscaler %s to %s: %w", target.Name, copied.Name, err)
	}
	return nil
}
