package helmrelease

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/apply"
	"sluice.dev/sluice/pkg/sync/handoff"
)

// helmFieldManager is the field manager Helm applied the release with:
// the one set for the process, else the program's name, as Helm works it
// out. Drift is what this manager would change.
func helmFieldManager() string {
	if kube.ManagedFieldsManager != "" {
		return kube.ManagedFieldsManager
	}
	return filepath.Base(os.Args[0])
}

// manifestObjects parses a release's manifest, with the release
// namespace set on namespaced objects that name none, as Helm applies
// them.
func manifestObjects(c client.Client, rel *releasev1.Release, namespace string) ([]*unstructured.Unstructured, error) {
	objs, err := utils.ReadObjects(strings.NewReader(rel.Manifest))
	if err != nil {
		return nil, fmt.Errorf("read the manifest of release %s: %w", rel.Name, err)
	}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			continue
		}
		mapping, err := c.RESTMapper().RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", o.GetKind(), err)
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			o.SetNamespace(namespace)
		}
	}
	return objs, nil
}

// drift compares the cluster with the release's manifest by a
// server-side dry-run apply as Helm's field manager, and returns the
// objects that differ. Fields a Canary owns are left out of the
// comparison, so the engine's scaling and routing are not drift
// (flagger#1407). The paths of ignore are left out of the comparison and
// of the correction, on the objects their target selects, and an object
// labelled or annotated helm.toolkit.fluxcd.io/driftDetection: disabled
// (in the manifest or in the cluster) is left out entirely, as in Flux.
// With correct, the drifted objects are applied again.
func drift(ctx context.Context, c client.Client, guard handoff.Guard, rel *releasev1.Release, namespace string, correct bool, ignore []syncv1.IgnoreRule) ([]string, error) {
	objs, err := manifestObjects(c, rel, namespace)
	if err != nil {
		return nil, err
	}
	// Helm adds its ownership metadata as it applies; the manifest does
	// not hold it, and without it every object would look drifted.
	for _, o := range objs {
		labels, annotations := o.GetLabels(), o.GetAnnotations()
		if labels == nil {
			labels = map[string]string{}
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		labels["app.kubernetes.io/managed-by"] = "Helm"
		annotations["meta.helm.sh/release-name"], annotations["meta.helm.sh/release-namespace"] = rel.Name, rel.Namespace
		o.SetLabels(labels)
		o.SetAnnotations(annotations)
	}
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return nil, err
	}
	if err := guard.LeaveAlone(ctx, objs, targets); err != nil {
		return nil, err
	}
	manager := ssa.NewResourceManager(c, nil, ssa.Owner{Field: helmFieldManager()})
	exclusions := map[string]string{syncv2.DriftDetectionMetadataKey: syncv2.DriftDetectionDisabledValue}
	rules := apply.IgnoreRules(ignore)
	diffOpts := ssa.DefaultDiffOptions()
	diffOpts.Exclusions, diffOpts.DriftIgnoreRules = exclusions, rules
	var drifted []string
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		entry, _, _, err := manager.Diff(ctx, o, diffOpts)
		if err != nil {
			return nil, fmt.Errorf("compare %s/%s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		if entry.Action != ssa.UnchangedAction && entry.Action != ssa.SkippedAction {
			drifted = append(drifted, fmt.Sprintf("%s %s", entry.Subject, entry.Action))
			apply = append(apply, o)
		}
	}
	if correct && len(apply) > 0 {
		// The ignored paths keep the cluster's values: ssa strips them
		// from what it applies, or applies what the cluster holds.
		applyOpts := ssa.DefaultApplyOptions()
		applyOpts.ExclusionSelector, applyOpts.DriftIgnoreRules = exclusions, rules
		if _, err := manager.ApplyAll(ctx, apply, applyOpts); err != nil {
			return drifted, fmt.Errorf("correct drift: %w", err)
		}
	}
	return drifted, nil
}

// detectDrift compares the cluster with the release as
// spec.driftDetection asks: enabled corrects drift, warn reports it.
func (r *Reconciler) detectDrift(ctx context.Context, hr *syncv2.HelmRelease, run *runner, rel *releasev1.Release, namespace string) error {
	mode := syncv2.DriftDetectionDisabled
	if hr.Spec.DriftDetection != nil && hr.Spec.DriftDetection.Mode != "" {
		mode = hr.Spec.DriftDetection.Mode
	}
	if mode == syncv2.DriftDetectionDisabled {
		meta.RemoveStatusCondition(&hr.Status.Conditions, syncv2.DriftedCondition)
		return nil
	}
	correct := mode == syncv2.DriftDetectionEnabled
	// The cluster the release is on, this one or spec.kubeConfig's.
	drifted, err := drift(ctx, run.cluster.live, run.cluster.guard, rel, namespace, correct, hr.Spec.DriftDetection.Ignore)
	if err != nil {
		return err
	}
	cond := metav1.Condition{Type: syncv2.DriftedCondition, Status: metav1.ConditionFalse, Reason: syncv2.ReasonNoDrift, ObservedGeneration: hr.Generation,
		Message: fmt.Sprintf("no drift from release %s/%s.v%d", rel.Namespace, rel.Name, rel.Version)}
	if len(drifted) > 0 {
		what := "corrected"
		if !correct {
			what = "not corrected (warn mode)"
			cond.Status = metav1.ConditionTrue
		}
		cond.Reason = syncv2.ReasonDriftDetected
		cond.Message = fmt.Sprintf("drift from release %s/%s.v%d %s: %s", rel.Namespace, rel.Name, rel.Version, what, strings.Join(drifted, ", "))
		r.Events.Eventf(hr, nil, corev1.EventTypeWarning, syncv2.ReasonDriftDetected, "DetectDrift", "%s", cond.Message)
	}
	meta.SetStatusCondition(&hr.Status.Conditions, cond)
	return nil
}
