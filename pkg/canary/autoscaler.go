package canary

import (
	"context"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// autoscaler is the target's autoscaler as the engine sees it: the bounds
// it keeps the replicas within, the copy the primary gets, and, for those
// that would scale a workload up from zero, a pause while the canary is
// at zero. One file per kind (autoscaler_hpa.go, autoscaler_keda.go).
type autoscaler interface {
	// minReplicas is the autoscaler's minimum, 0 when it sets none.
	minReplicas() int32
	// maxReplicas is its maximum.
	maxReplicas() int32
	// syncPrimary writes the primary's copy, scaling primaryName.
	syncPrimary(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary, primaryName string) error
	// hold pauses the target's autoscaler while the canary is at zero
	// (atZero), and resumes it when the canary scales up.
	hold(ctx context.Context, r *Reconciler, atZero bool) error
}

// autoscalers maps spec.autoscalerRef.kind to how the autoscaler is read;
// a missing one is a problem naming the field.
func autoscalers() map[string]func(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary) (autoscaler, error) {
	return map[string]func(ctx context.Context, r *Reconciler, c *sluicev1beta1.Canary) (autoscaler, error){
		"HorizontalPodAutoscaler": observeHPA,
		"ScaledObject":            observeScaledObject,
	}
}

// primaryMaxReplicas is the primary's maximum: the Canary's override, or
// the autoscaler's.
func primaryMaxReplicas(c *sluicev1beta1.Canary, a autoscaler) int32 {
	if p := c.Spec.AutoscalerRef.PrimaryScalerReplicas; p != nil && p.MaxReplicas != nil {
		return *p.MaxReplicas
	}
	return a.maxReplicas()
}
