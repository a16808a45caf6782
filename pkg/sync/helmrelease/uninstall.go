package helmrelease

import (
	"context"
	"errors"
	"fmt"

	"helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/kubeconfig"
)

// finalize uninstalls the release of a deleted HelmRelease, then lets it
// go.
func (r *Reconciler) finalize(ctx context.Context, hr *syncv2.HelmRelease) error {
	if !controllerutil.ContainsFinalizer(hr, finalizer) {
		return nil
	}
	if !hr.Spec.Suspend {
		before := hr.DeepCopy()
		if v, err := r.uninstallDeleted(ctx, hr); err != nil {
			return errors.Join(err, r.writeStatus(ctx, hr, before, v))
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

// uninstallDeleted uninstalls the release a deleted HelmRelease made:
// the one its status records, should the spec name another target. As
// Flux does, the uninstall is skipped, with a Warning Event naming what
// is left, when what it needs is gone for good: the kubeConfig Secret
// (once something was released), or the impersonated ServiceAccount,
// whose namespace may be terminating. A failure is Ready=False
// (UninstallFailed, or RESTClientError for a kubeconfig that cannot be
// used) with a Warning Event, and is tried again.
func (r *Reconciler) uninstallDeleted(ctx context.Context, hr *syncv2.HelmRelease) (verdict, error) {
	release, namespace, storage := names(hr)
	moved := targetChange(hr) != ""
	if moved {
		cur := hr.Status.History[0]
		release, namespace, storage = cur.Name, cur.Namespace, hr.Status.StorageNamespace
	}
	left := fmt.Sprintf("release %s/%s, stored in %s", namespace, release, storage)
	skip := func(why string) (verdict, error) {
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonUninstallSkipped, "Uninstall", "%s; %s is left installed", why, left)
		return verdict{}, nil
	}
	fail := func(reason string, err error) (verdict, error) {
		err = fmt.Errorf("uninstall %s: %w", left, err)
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, reason, "Uninstall", "%v", err)
		return verdict{ready: metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}}, err
	}
	run, err := r.runner(ctx, hr)
	switch {
	case kubeconfig.IsError(err) && len(hr.Status.History) == 0:
		// Nothing was ever released, so nothing is left on a cluster
		// that cannot be reached: the HelmRelease goes.
		return verdict{}, nil
	case kubeconfig.IsError(err) && apierrors.IsNotFound(err):
		return skip(fmt.Sprintf("%s: Secret %s/%s is gone", kubeconfig.Field, hr.Namespace, hr.Spec.KubeConfig.SecretRef.Name))
	case kubeconfig.IsError(err):
		return fail(syncv2.ReasonRESTClientError, err)
	case err != nil:
		return fail(syncv2.ReasonUninstallFailed, err)
	}
	if sa := hr.Spec.ServiceAccountName; sa != "" && hr.Spec.KubeConfig == nil {
		err := r.reader().Get(ctx, types.NamespacedName{Namespace: hr.Namespace, Name: sa}, &corev1.ServiceAccount{})
		switch {
		case apierrors.IsNotFound(err):
			return skip(fmt.Sprintf("spec.serviceAccountName: ServiceAccount %s/%s is gone", hr.Namespace, sa))
		case err != nil:
			return fail(syncv2.ReasonUninstallFailed, fmt.Errorf("spec.serviceAccountName: ServiceAccount %s/%s: %w", hr.Namespace, sa, err))
		}
	}
	if moved {
		if run, err = run.at(release, namespace, storage); err != nil {
			return fail(syncv2.ReasonUninstallFailed, err)
		}
	}
	rel, err := run.last()
	if err != nil {
		return fail(syncv2.ReasonUninstallFailed, err)
	}
	if rel != nil && rel.Info.Status != common.StatusUninstalled {
		if err := run.uninstall(r.timeout(hr, uninstallTimeout(hr)), uninstallOf(hr)); err != nil {
			return fail(syncv2.ReasonUninstallFailed, err)
		}
	}
	return verdict{}, nil
}

// reader reads what the cache may not hold: APIReader, or else Client.
func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
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
