package workload

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// KnativeService is the kind of a Knative Service target
// (serving.knative.dev/v1 Service), read as unstructured: Sluice does not
// link Knative, and a typed copy of part of its API would drop the rest
// on write.
var KnativeService = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// KnativePrimaryAnnotation on a Knative Service names the Revision that
// serves production, as Flagger's flagger.app/primary-revision does. The
// Service's latest created Revision is the canary.
const KnativePrimaryAnnotation = "sluice.dev/primary-revision"

// flaggerPrimaryAnnotation is Flagger's, read once when a Canary that
// Flagger ran is taken over, so that the Revision in production stays.
const flaggerPrimaryAnnotation = "flagger.app/primary-revision"

// NewTarget returns an empty object of the kind a Canary's targetRef
// names: a Knative Service for the serving.knative.dev group, else a
// Deployment, DaemonSet or Service.
func NewTarget(ref sluicev1beta1.TargetReference) (client.Object, error) {
	if ref.Kind == KnativeService.Kind && strings.HasPrefix(ref.APIVersion, KnativeService.Group+"/") {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(KnativeService)
		return u, nil
	}
	return New(ref.Kind)
}

// IsKnative reports whether obj is a Knative Service.
func IsKnative(obj client.Object) bool {
	u, ok := obj.(*unstructured.Unstructured)
	return ok && u.GroupVersionKind() == KnativeService
}

// KnativeLatestRevision is the Knative Service's latest created Revision,
// the canary; "" until Knative has created one.
func KnativeLatestRevision(obj client.Object) string {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return ""
	}
	name, _, _ := unstructured.NestedString(u.Object, "status", "latestCreatedRevisionName")
	return name
}

// KnativePrimaryRevision is the Revision that serves production, "" before
// the Canary initialized.
func KnativePrimaryRevision(obj client.Object) string {
	if name := obj.GetAnnotations()[KnativePrimaryAnnotation]; name != "" {
		return name
	}
	return obj.GetAnnotations()[flaggerPrimaryAnnotation]
}

// knativeReadiness is ready once Knative reports the latest created
// Revision ready, as Flagger's IsCanaryReady asks.
func knativeReadiness(u *unstructured.Unstructured) Readiness {
	created := KnativeLatestRevision(u)
	ready, _, _ := unstructured.NestedString(u.Object, "status", "latestReadyRevisionName")
	switch {
	case created == "":
		return Readiness{Message: "Knative has not created a Revision of Service " + u.GetName() + " yet"}
	case ready != created:
		return Readiness{Message: "Knative Revision " + created + " is not ready"}
	}
	return Readiness{Ready: true}
}
