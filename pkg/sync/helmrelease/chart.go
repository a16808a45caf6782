package helmrelease

import (
	"context"
	"fmt"
	"maps"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/pkg/sync/index"
)

// liveReads is a client that reads from live, for an object its cache
// does not hold.
type liveReads struct {
	client.Client
	live client.Reader
}

// Get reads from the API server.
func (c liveReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.live.Get(ctx, key, obj, opts...)
}

// chartKey names the HelmChart a HelmRelease releases: its chartRef, or
// the one made from spec.chart, <namespace>-<name> in the source's
// namespace, as Flux names it.
func chartKey(hr *syncv2.HelmRelease) types.NamespacedName {
	if ref := hr.Spec.ChartRef; ref != nil {
		return types.NamespacedName{Namespace: index.NamespaceOr(ref.Namespace, hr.Namespace), Name: ref.Name}
	}
	if hr.Spec.Chart == nil {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: index.NamespaceOr(hr.Spec.Chart.Spec.SourceRef.Namespace, hr.Namespace), Name: hr.Namespace + "-" + hr.Name}
}

// versioned is the stored chart with its version set to the HelmChart's
// revision, so that a chart from Git under the Revision strategy makes
// a new release on each commit, and the release says which.
func versioned(stored *source.StoredChart) *chart.Chart {
	ch := *stored.Chart
	md := *stored.Chart.Metadata
	md.Version = stored.Revision
	ch.Metadata = &md
	return &ch
}

// chartKind is the kind of the source a HelmRelease releases from: its
// chartRef's, or HelmChart for the one made from spec.chart.
func chartKind(hr *syncv2.HelmRelease) string {
	if ref := hr.Spec.ChartRef; ref != nil {
		return ref.Kind
	}
	return "HelmChart"
}

// unusableChartError is a chart source that has caught up with its spec
// but holds no chart to release: waiting cannot help, a new artifact or
// spec can.
type unusableChartError struct{ err error }

func (e *unusableChartError) Error() string { return e.err.Error() }
func (e *unusableChartError) Unwrap() error { return e.err }

// chart returns the chart of the HelmRelease's source at key once the
// source has caught up with its spec.
func (r *Reconciler) chart(ctx context.Context, hr *syncv2.HelmRelease, key types.NamespacedName) (*source.StoredChart, error) {
	if chartKind(hr) == "OCIRepository" {
		return r.ociChart(ctx, key)
	}
	hc := &sourcev1.HelmChart{}
	if err := r.Client.Get(ctx, key, hc); err != nil {
		return nil, fmt.Errorf("HelmChart %s: %w", key, err)
	}
	ready := meta.FindStatusCondition(hc.Status.Conditions, "Ready")
	if hc.Status.ObservedGeneration != hc.Generation || ready == nil || ready.Status != metav1.ConditionTrue || hc.Status.Artifact == nil {
		msg := fmt.Sprintf("HelmChart %s is not ready", key)
		if ready != nil && ready.Message != "" {
			msg += ": " + ready.Message
		}
		return nil, fmt.Errorf("%s", msg)
	}
	stored, ok := r.Charts.Get(key)
	if !ok || stored.Revision != hc.Status.Artifact.Revision {
		return nil, fmt.Errorf("HelmChart %s: chart %s is not loaded yet", key, hc.Status.Artifact.Revision)
	}
	return stored, nil
}

// ociChart loads the Helm chart of an OCIRepository's artifact once the
// OCIRepository has caught up with its spec, as Flux releases a chartRef
// of kind OCIRepository (see source.OCIChart for its version).
func (r *Reconciler) ociChart(ctx context.Context, key types.NamespacedName) (*source.StoredChart, error) {
	repo := &sourcev1.OCIRepository{}
	if err := r.Client.Get(ctx, key, repo); err != nil {
		return nil, fmt.Errorf("spec.chartRef: OCIRepository %s: %w", key, err)
	}
	ready := meta.FindStatusCondition(repo.Status.Conditions, "Ready")
	if repo.Status.ObservedGeneration != repo.Generation || ready == nil || ready.Status != metav1.ConditionTrue || repo.Status.Artifact == nil {
		msg := fmt.Sprintf("OCIRepository %s is not ready", key)
		if ready != nil && ready.Message != "" {
			msg += ": " + ready.Message
		}
		return nil, fmt.Errorf("%s", msg)
	}
	if r.OCISources == nil {
		return nil, fmt.Errorf("OCIRepository %s: no artifact store", key)
	}
	a, ok := r.OCISources.Get(key)
	if !ok || a.Revision != repo.Status.Artifact.Revision {
		return nil, fmt.Errorf("OCIRepository %s: artifact %s is not fetched yet", key, repo.Status.Artifact.Revision)
	}
	stored, err := source.OCIChart(a)
	if err != nil {
		return nil, &unusableChartError{fmt.Errorf("spec.chartRef: OCIRepository %s: %w", key, err)}
	}
	return stored, nil
}

// chartLabels are the labels of the HelmChart made from spec.chart:
// spec.chart.metadata's, as Flux sets them, so that one taken out of the
// template goes, and the owner labels, which win.
func chartLabels(hr *syncv2.HelmRelease) map[string]string {
	labels := map[string]string{}
	if m := hr.Spec.Chart.ObjectMeta; m != nil {
		maps.Copy(labels, m.Labels)
	}
	labels[OwnerNameLabel], labels[OwnerNamespaceLabel] = hr.Name, hr.Namespace
	return labels
}

// withShardLabels sets on a HelmChart's labels the HelmRelease's values
// of keys, the labels a sharded replica selects by, and drops those the
// HelmRelease lacks, over spec.chart.metadata's: the replica that
// releases the HelmRelease reads the chart it loaded from its own memory,
// so the chart must be in the same shard. Flux leaves this to
// spec.chart.metadata.labels.
func withShardLabels(labels map[string]string, hr *syncv2.HelmRelease, keys []string) map[string]string {
	for _, k := range keys {
		if v, ok := hr.Labels[k]; ok {
			labels[k] = v
		} else {
			delete(labels, k)
		}
	}
	return labels
}

// chartAnnotations are the annotations of the HelmChart made from
// spec.chart: spec.chart.metadata's, as Flux sets them, and the
// reconcile request that a Receiver or sluicectl set on the HelmChart
// itself, unless the template sets one.
func chartAnnotations(hr *syncv2.HelmRelease, current map[string]string) map[string]string {
	out := map[string]string{}
	if v, ok := current[sourcev1.ReconcileRequestAnnotation]; ok {
		out[sourcev1.ReconcileRequestAnnotation] = v
	}
	if m := hr.Spec.Chart.ObjectMeta; m != nil {
		maps.Copy(out, m.Annotations)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ensureChart makes or updates the HelmChart of spec.chart.
func (r *Reconciler) ensureChart(ctx context.Context, hr *syncv2.HelmRelease) error {
	if hr.Spec.Chart == nil {
		return nil
	}
	tpl := hr.Spec.Chart.Spec
	key := chartKey(hr)
	hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	mutate := func() error {
		interval := hr.Spec.Interval
		if tpl.Interval != nil {
			interval = *tpl.Interval
		}
		hc.Spec = sourcev1.HelmChartSpec{
			Chart: tpl.Chart, Version: tpl.Version, Interval: interval,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: tpl.SourceRef.Kind, Name: tpl.SourceRef.Name, APIVersion: tpl.SourceRef.APIVersion},
			ReconcileStrategy: tpl.ReconcileStrategy, ValuesFiles: tpl.ValuesFiles,
			ValuesFile: tpl.ValuesFile, IgnoreMissingValuesFiles: tpl.IgnoreMissingValuesFiles,
		}
		if hc.Spec.Version == "" {
			hc.Spec.Version = "*"
		}
		if hc.Spec.ReconcileStrategy == "" {
			hc.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyChartVersion
		}
		// As Flux copies it: the provider and the Secret of the keys.
		if v := tpl.Verify; v != nil {
			hc.Spec.Verify = &sourcev1.HelmChartVerification{Provider: v.Provider}
			if v.SecretRef != nil {
				hc.Spec.Verify.SecretRef = &sourcev1.LocalObjectReference{Name: v.SecretRef.Name}
			}
		}
		hc.SetLabels(withShardLabels(chartLabels(hr), hr, r.ShardLabels))
		hc.SetAnnotations(chartAnnotations(hr, hc.GetAnnotations()))
		return nil
	}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, hc, mutate)
	if apierrors.IsAlreadyExists(err) && r.APIReader != nil {
		// The chart exists outside this replica's cache: it carries
		// another shard's label, as when the HelmRelease moved to this
		// shard. Read it live and take it over.
		hc = &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		_, err = controllerutil.CreateOrPatch(ctx, liveReads{Client: r.Client, live: r.APIReader}, hc, mutate)
	}
	if err != nil {
		return fmt.Errorf("spec.chart: HelmChart %s: %w", key, err)
	}
	return nil
}
