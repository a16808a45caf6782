package canary_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
)

func TestABlockedCanaryShowsAPhaseAndRefusesABadRequestForWhatItIs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "blocked")
	startOperator(t, f.ns)
	c := f.canary("Deployment", sluicev1beta1.CanaryAnalysis{Iterations: 1})
	f.create(c)

	// No target: kubectl shows a phase, and Ready says why.
	blocked := f.waitPhase(sluicev1beta1.CanaryPhaseInitializing, 30*time.Second)
	if ready := meta.FindStatusCondition(blocked.Status.Conditions, sluicev1beta1.ReadyCondition); ready == nil ||
		ready.Status != metav1.ConditionFalse || ready.Reason != "TargetNotFound" {
		t.Fatalf("Ready %+v, want False with TargetNotFound", ready)
	}
	waitWarning(t, f.ns, "Canary", "podinfo", "TargetNotFound")
	// As kubectl reads it: with the timestamps it sorts by.
	var events corev1.EventList
	if err := cp.Client.List(t.Context(), &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "Canary" && (e.FirstTimestamp.IsZero() || e.LastTimestamp.IsZero() || e.Count < 1) {
			t.Errorf("event %s has firstTimestamp %v, lastTimestamp %v, count %d", e.Reason, e.FirstTimestamp, e.LastTimestamp, e.Count)
		}
	}

	// A request that is not JSON is refused for that, not for the target.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"sluice.dev/request":"{\"action\": \"promote\""}}}`))
	if err := cp.Client.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
	refused := waitLastRequest(t, f, sluicev1beta1.RequestRefused)
	if msg := refused.Status.LastRequest.Message; !strings.Contains(msg, "not a request") || strings.Contains(msg, "not found") || strings.Contains(msg, "unnamed") {
		t.Fatalf("lastRequest %q, want the annotation's JSON error", msg)
	}
	waitWarning(t, f.ns, "Canary", "podinfo", "RequestRefused")
	if ready := meta.FindStatusCondition(refused.Status.Conditions, sluicev1beta1.ReadyCondition); strings.Contains(ready.Message, "refused") {
		t.Fatalf("Ready %+v carries the refusal", ready)
	}

	// The target arrives; the Canary initializes, and its Ready says so,
	// not the old refusal.
	f.create(f.deployment("podinfo:6.0.0"))
	initialized := f.waitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	if ready := meta.FindStatusCondition(initialized.Status.Conditions, sluicev1beta1.ReadyCondition); ready.Status != metav1.ConditionTrue || strings.Contains(ready.Message, "refused") {
		t.Fatalf("Ready %+v", ready)
	}
}

func waitLastRequest(t *testing.T, f *fixture, outcome sluicev1beta1.RequestOutcome) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{}
	controlplane.Eventually(t, 30*time.Second, "lastRequest "+string(outcome), func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, c); err != nil {
			return false, err.Error()
		}
		r := c.Status.LastRequest
		return r != nil && r.Outcome == outcome, fmt.Sprintf("lastRequest %+v", r)
	})
	return c
}
