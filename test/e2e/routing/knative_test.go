package routing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
)

// knativeService is the Knative Service podinfo as the test last read it.
func knativeService(t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("serving.knative.dev/v1")
	u.SetKind("Service")
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// knativeCreates does what Knative Serving's controller does when the
// template changes: it creates the next Revision and, once it runs, says
// it is ready. No Knative controller runs here.
func knativeCreates(t *testing.T, ns, image, revision string) {
	t.Helper()
	controlplane.Eventually(t, 10*time.Second, "Knative creates "+revision, func(ctx context.Context) (bool, string) {
		u := knativeService(t, ns)
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			return false, err.Error()
		}
		if err := cp.Client.Update(ctx, u); err != nil {
			return false, err.Error()
		}
		_ = unstructured.SetNestedField(u.Object, revision, "status", "latestCreatedRevisionName")
		_ = unstructured.SetNestedField(u.Object, revision, "status", "latestReadyRevisionName")
		err := cp.Client.Status().Update(ctx, u)
		return err == nil, fmt.Sprint(err)
	})
}

// knativeTraffic describes the traffic block: "latest:20 podinfo-00001:80".
func knativeTraffic(u *unstructured.Unstructured) string {
	targets, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic")
	out := ""
	for _, t := range targets {
		tm := t.(map[string]any)
		name := fmt.Sprint(tm["revisionName"])
		if latest, _ := tm["latestRevision"].(bool); latest {
			name = "latest"
		}
		out += fmt.Sprintf("%s:%v ", name, tm["percent"])
	}
	return out
}

// TestKnativeShiftsTrafficBetweenRevisions releases a Knative Service as
// Flagger does: the primary is a Revision named in an annotation, the
// canary the latest created Revision, and the split the Service's traffic
// block. A promoted release moves the annotation; a rolled back one
// leaves production on the Revision it had.
func TestKnativeShiftsTrafficBetweenRevisions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "knative")
	f.Create(&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": "podinfo", "namespace": f.Name},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"image": "podinfo:1", "ports": []any{map[string]any{"containerPort": int64(9898)}}}},
		}}},
	}})

	hook := newGate(t)
	f.canary("knative", sluicev1beta1.CanaryAnalysis{
		Threshold: 1, StepWeights: []int{20, 60},
		Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "load", Type: sluicev1beta1.RolloutHook, URL: hook.URL}},
	}, func(c *sluicev1beta1.Canary) {
		c.Spec.TargetRef = sluicev1beta1.TargetReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
	})
	// Until Knative has made a Revision there is nothing to promote, and
	// the Canary says so.
	f.WaitFor("Ready False with TargetNotReady", time.Minute, func(c *sluicev1beta1.Canary) bool {
		ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
		return ready != nil && ready.Reason == "TargetNotReady" && strings.Contains(ready.Message, "has no Revision yet")
	})
	f.WaitWarning("TargetNotReady", 30*time.Second)
	knativeCreates(t, f.Name, "podinfo:1", "podinfo-00001")
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	settled := func(primary string) {
		t.Helper()
		controlplane.Eventually(t, 15*time.Second, "production on "+primary, func(context.Context) (bool, string) {
			u := knativeService(t, f.Name)
			got, want := knativeTraffic(u), "latest:0 "+primary+":100 "
			annotation := u.GetAnnotations()["sluice.dev/primary-revision"]
			return got == want && annotation == primary, fmt.Sprintf("traffic %q, primary-revision %q", got, annotation)
		})
	}
	settled("podinfo-00001")

	knativeCreates(t, f.Name, "podinfo:2", "podinfo-00002")
	if weights := f.followSteps(sluicev1beta1.CanaryPhaseSucceeded); !slices.Equal(weights, []int{20, 60}) {
		t.Fatalf("the promoted release went through weights %v, want [20 60]", weights)
	}
	settled("podinfo-00002")

	hook.close()
	knativeCreates(t, f.Name, "podinfo:3", "podinfo-00003")
	if weights := f.followSteps(sluicev1beta1.CanaryPhaseFailed); !slices.Equal(weights, []int{20}) {
		t.Fatalf("the rolled back release went through weights %v, want [20]", weights)
	}
	settled("podinfo-00002")
}
