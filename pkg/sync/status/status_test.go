package status

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

func TestSetReady(t *testing.T) {
	tests := []struct {
		name        string
		ready       metav1.ConditionStatus
		stalled     bool
		reconciling string
		isStalled   bool
	}{
		{"a ready object is neither reconciling nor stalled", metav1.ConditionTrue, false, "", false},
		{"an object waiting is reconciling with its reason", metav1.ConditionUnknown, false, "Progressing", false},
		{"a failure a retry may fix is reconciling with retry", metav1.ConditionFalse, false, ReasonProgressingWithRetry, false},
		{"a failure that will repeat is stalled", metav1.ConditionFalse, true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start from the opposite state, to see both are cleared.
			conditions := []metav1.Condition{{Type: "Reconciling", Status: metav1.ConditionTrue, Reason: "Old"}, {Type: "Stalled", Status: metav1.ConditionTrue, Reason: "Old"}}
			SetReady(&conditions, metav1.Condition{Status: tt.ready, Reason: "Progressing", Message: "m"}, tt.stalled, 3)
			ready := meta.FindStatusCondition(conditions, "Ready")
			if ready == nil || ready.Status != tt.ready || ready.ObservedGeneration != 3 {
				t.Fatalf("Ready %+v", ready)
			}
			reconciling := meta.FindStatusCondition(conditions, "Reconciling")
			switch {
			case tt.reconciling == "" && reconciling != nil:
				t.Fatalf("Reconciling %+v, want none", reconciling)
			case tt.reconciling != "" && (reconciling == nil || reconciling.Reason != tt.reconciling):
				t.Fatalf("Reconciling %+v, want reason %s", reconciling, tt.reconciling)
			}
			if got := meta.IsStatusConditionTrue(conditions, "Stalled"); got != tt.isStalled {
				t.Fatalf("Stalled %v, want %v", got, tt.isStalled)
			}
		})
	}
}

func TestReadyMeansReadyForTheCurrentGeneration(t *testing.T) {
	tests := []struct {
		name       string
		status     metav1.ConditionStatus
		observed   int64
		generation int64
		want       bool
	}{
		{"Ready for the current generation is ready", metav1.ConditionTrue, 2, 2, true},
		{"Ready for an older generation is not", metav1.ConditionTrue, 1, 2, false},
		{"not Ready is not", metav1.ConditionFalse, 2, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := &syncv1.Kustomization{}
			ks.Generation = tt.generation
			SetReady(&ks.Status.Conditions, metav1.Condition{Status: tt.status, Reason: "Test"}, false, tt.observed)
			if got := Ready(ks); got != tt.want {
				t.Fatalf("Ready %t, want %t", got, tt.want)
			}
		})
	}
	if Ready(&syncv1.Kustomization{}) {
		t.Fatal("an object with no Ready condition is ready")
	}
}
