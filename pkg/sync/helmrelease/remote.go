package helmrelease

import (
	"context"
	"errors"

	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
)

// remoteTarget releases to the cluster of spec.kubeConfig, as Flux does:
// Helm's storage and every action are there, as the kubeconfig's user or
// impersonating spec.serviceAccountName of the HelmRelease's namespace on
// that cluster; drift, health and the Canary hand-off read that cluster
// too. The clients live as long as the kubeconfig does.
func (r *Reconciler) remoteTarget(ctx context.Context, hr *syncv2.HelmRelease) (*getter, cluster, error) {
	if r.Remotes == nil {
		return nil, cluster{}, errors.New("spec.kubeConfig: the operator runs without remote clusters")
	}
	remote, err := r.Remotes.For(ctx, hr.Namespace, hr.Spec.KubeConfig, hr.Spec.ServiceAccountName)
	if err != nil {
		return nil, cluster{}, err
	}
	cl, err := kubeconfig.Memo(remote, "helmrelease", func() (cluster, error) {
		c := remote.Client
		return cluster{
			live:   c,
			guard:  handoff.Guard{Client: remote.Owner, APIReader: remote.Owner, ConfigTracking: r.ConfigTracking},
			health: &health.Checker{Reader: c, Scheme: c.Scheme(), Mapper: remote.Mapper},
		}, nil
	})
	if err != nil {
		return nil, cluster{}, err
	}
	return sharedGetter(remote.Config, remote.Discovery, remote.Mapper), cl, nil
}
