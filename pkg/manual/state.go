package manual

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// State is what the manual requests and their callers read of a sync
// object.
type State struct {
	// Suspended is spec.suspend.
	Suspended bool
	// LastHandled is status.lastHandledReconcileAt: the last reconcile
	// request the operator handled.
	LastHandled string
	// Conditions are the status conditions.
	Conditions []metav1.Condition
	// Revision is what the object last produced or applied: the artifact
	// revision of a source, the last applied revision of a Kustomization,
	// the chart version of a HelmRelease's latest release.
	Revision string
}

// StateOf reads the State of a sync object: a source, a Kustomization, a
// HelmRelease or an image kind. Any other object has an empty State.
func StateOf(obj client.Object) State {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, artifactRevision(o.Status.Artifact)}
	case *sourcev1.HelmRepository:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, artifactRevision(o.Status.Artifact)}
	case *sourcev1.HelmChart:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, artifactRevision(o.Status.Artifact)}
	case *sourcev1.OCIRepository:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, artifactRevision(o.Status.Artifact)}
	case *sourcev1.Bucket:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, artifactRevision(o.Status.Artifact)}
	case *syncv1.Kustomization:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, o.Status.LastAppliedRevision}
	case *imagev1.ImageRepository:
		s := State{Suspended: o.Spec.Suspend, LastHandled: o.Status.LastHandledReconcileAt, Conditions: o.Status.Conditions}
		if r := o.Status.LastScanResult; r != nil {
			s.Revision = fmt.Sprintf("%d tags", r.TagCount)
		}
		return s
	case *imagev1.ImagePolicy:
		s := State{Conditions: o.Status.Conditions}
		if r := o.Status.LatestRef; r != nil {
			s.Revision = r.String()
		}
		return s
	case *imagev1.ImageUpdateAutomation:
		return State{o.Spec.Suspend, o.Status.LastHandledReconcileAt, o.Status.Conditions, o.Status.LastPushCommit}
	case *syncv2.HelmRelease:
		s := State{Suspended: o.Spec.Suspend, LastHandled: o.Status.LastHandledReconcileAt, Conditions: o.Status.Conditions}
		if len(o.Status.History) > 0 {
			s.Revision = o.Status.History[0].ChartVersion
		}
		return s
	}
	// Only the kinds above are ever passed; an empty state shows as
	// unknown rather than crashing the caller.
	return State{}
}

func artifactRevision(a *sourcev1.Artifact) string {
	if a == nil {
		return ""
	}
	return a.Revision
}

// Ready is the Ready condition, or nil while there is none.
func (s State) Ready() *metav1.Condition {
	return meta.FindStatusCondition(s.Conditions, "Ready")
}
