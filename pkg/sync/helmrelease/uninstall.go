package helmrelease

import (
	"context"
	"fmt"

	"helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
)

// finalize uninstalls the release of a deleted HelmRelease.
func (r *Reconciler) finalize(ctx context.Context, hr *syncv2.HelmRelease) error {
	if !controllerutil.ContainsFinalizer(hr, finalizer) {
		return nil
	}
	if !hr.Spec.Suspend {
		run, err := r.runner(ctx, hr)
		switch {
		case kubeconfig.IsError(err) && len(hr.Status.History) == 0:
			// Nothing was ever released, so nothing is left on a cluster
			// that cannot be reached: the HelmRelease goes.
			run = nil
		case err != nil:
			reason := syncv2.ReasonUninstallFailed
			if kubeconfig.IsError(err) {
				reason = syncv2.ReasonRESTClientError
			}
			r.Events.Eventf(hr, nil, corev1.EventTypeWarning, reason, "Uninstall", "%v", err)
			return err
		}
		if run != nil {
			rel, err := run.last()
			if err != nil {
				return err
			}
			if rel != nil && rel.Info.Status != common.StatusUninstalled {
				if err := run.uninstall(r.timeout(hr, uninstallTimeout(hr)), uninstallOf(hr)); err != nil {
					return fmt.Errorf("uninstall release %s: %w", run.name, err)
				}
			}
		}
	}
	// The HelmChart made from spec.chart goes with its HelmRelease.
	if hr.Spec.Chart != nil {
		key := chartKey(hr)
		hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		if err := r.Client.Delete(ctx, hc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete HelmChart %s: %w", key, err)
		}
	}
	patch := client.MergeFrom(hr.DeepCopy())
	controllerutil.RemoveFinalizer(hr, finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, hr, patch))
}

// uninstallOf is the HelmRelease's uninstall settings, zero when none.
func uninstallOf(hr *syncv2.HelmRelease) syncv2.Uninstall {
	if hr.Spec.Uninstall != nil {
		return *hr.Spec.Uninstall
	}
	return syncv2.Uninstall{}
}

func uninstallTimeout(hr *syncv2.HelmRelease) *metav1.Duration {
	if hr.Spec.Uninstall != nil {
		return hr.Spec.Uninstall.Timeout
	}
	return nil
}
