package status

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/test/controlplane"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// cp is the real API server the Loop test reads and writes through.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

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

// loopNamespace holds the objects of the Loop test.
const loopNamespace = "loop"

func TestLoopComesBackAtTheIntervalUnlessSuspendedStalledOrGone(t *testing.T) {
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loopNamespace}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		exists    bool
		suspend   bool
		stalled   bool
		wantAfter time.Duration
		wantGone  bool
		wantReady metav1.ConditionStatus
	}{
		{"a working object comes back at its interval", true, false, false, time.Minute, false, metav1.ConditionTrue},
		{"a suspended object waits for a watch event", true, true, false, 0, false, metav1.ConditionTrue},
		{"a stalled object waits for a spec change", true, false, true, 0, false, metav1.ConditionFalse},
		{"a deleted object is forgotten", false, false, false, 0, true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := types.NamespacedName{Namespace: loopNamespace, Name: fmt.Sprintf("app-%d", i)}
			if tt.exists {
				obj := &sourcev1.GitRepository{
					ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
					Spec:       sourcev1.GitRepositorySpec{URL: "https://example.com/app.git", Suspend: tt.suspend, Interval: metav1.Duration{Duration: time.Minute}},
				}
				if err := cp.Client.Create(t.Context(), obj); err != nil {
					t.Fatal(err)
				}
			}
			c := cp.Client
			repo := &sourcev1.GitRepository{}
			var gone bool
			res, err := Loop{
				Client: c, Kind: "GitRepository", Object: repo,
				Fields: Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
				Gone:   func(types.NamespacedName) { gone = true },
				Pass: func(context.Context) (metav1.Condition, bool) {
					if tt.stalled {
						return metav1.Condition{Status: metav1.ConditionFalse, Reason: "URLInvalid", Message: "m"}, true
					}
					return metav1.Condition{Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "m"}, false
				},
				Next: Every(&repo.Spec.Suspend, &repo.Spec.Interval.Duration),
			}.Reconcile(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tt.wantAfter || gone != tt.wantGone {
				t.Fatalf("requeue after %v, gone %v; want %v, %v", res.RequeueAfter, gone, tt.wantAfter, tt.wantGone)
			}
			if !tt.exists {
				return
			}
			stored := &sourcev1.GitRepository{}
			if err := c.Get(context.Background(), key, stored); err != nil {
				t.Fatal(err)
			}
			ready := meta.FindStatusCondition(stored.Status.Conditions, "Ready")
			if ready == nil || ready.Status != tt.wantReady || stored.Status.ObservedGeneration != stored.Generation {
				t.Fatalf("stored status %+v, want Ready=%s at generation %d", stored.Status, tt.wantReady, stored.Generation)
			}
		})
	}
}
