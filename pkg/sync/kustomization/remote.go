package kustomization

import (
	"context"
	"fmt"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
)

// remoteActor applies to the cluster of spec.kubeConfig, as the
// kubeconfig's user, or impersonating account of the Kustomization's
// namespace on that cluster, as Flux does. Health is read live from there,
// and the Canary hand-off reads that cluster's Canaries. The Actor lives
// as long as the kubeconfig does: a rotated Secret gets a new one.
func (r *Reconciler) remoteActor(ctx context.Context, ks *syncv1.Kustomization, account string) (Actor, error) {
	if r.Remotes == nil {
		return Actor{}, fmt.Errorf("spec.kubeConfig: the operator runs without remote clusters")
	}
	remote, err := r.Remotes.For(ctx, ks.Namespace, ks.Spec.KubeConfig, account)
	if err != nil {
		return Actor{}, err
	}
	v, err := remote.Memo("kustomization", func() (any, error) {
		c := remote.Client
		return Actor{
			Applier: apply.New(c, c),
			Health:  &health.Checker{Reader: c, Scheme: c.Scheme(), Mapper: remote.Mapper},
			Guard:   handoff.Guard{Client: remote.Owner, APIReader: remote.Owner, ConfigTracking: r.ConfigTracking},
		}, nil
	})
	if err != nil {
		return Actor{}, err
	}
	act, ok := v.(Actor)
	if !ok {
		return Actor{}, fmt.Errorf("spec.kubeConfig: cached %T is not an Actor", v)
	}
	return act, nil
}
