package kustomization

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/workload"
)

// byCanary maps a Canary to the Kustomization that applied its target,
// from the ownership labels the apply set.
func (r *Reconciler) byCanary(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*sluicev1beta1.Canary)
	if !ok {
		return nil
	}
	target, err := workload.New(c.Spec.TargetRef.Kind)
	if err != nil {
		return nil
	}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}, target); err != nil {
		return nil
	}
	labels := target.GetLabels()
	name, ns := labels[apply.OwnerGroup+"/name"], labels[apply.OwnerGroup+"/namespace"]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}
