package plan

import (
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// TestKstatusReadsTheCanarysState checks the conditions with kstatus
// itself, as Flux and kubectl wait tools read them.
func TestKstatusReadsTheCanarysState(t *testing.T) {
	tests := []struct {
		name string
		in   func() Input
		want status.Status
	}{
		{"an initialized Canary is current", blueGreen, status.CurrentStatus},
		{"a rollout in progress is in progress", progressing, status.InProgressStatus},
		{"a promoted Canary is current", finalising, status.CurrentStatus},
		{"a rolled back Canary has failed", func() Input {
			in := progressing()
			in.Target.Ready = Readiness{Stuck: true}
			return in
		}, status.FailedStatus},
		{"a Canary whose spec cannot be carried out has failed", func() Input {
			in := blueGreen()
			in.Blocked = &Problem{Reason: "UnsupportedStrategy", Message: "no"}
			return in
		}, status.FailedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &sluicev1beta1.Canary{
				TypeMeta:   metav1.TypeMeta{APIVersion: sluicev1beta1.GroupVersion.String(), Kind: "Canary"},
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Generation: 3},
				Status:     Step(tt.in()).Status,
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
			if err != nil {
				t.Fatal(err)
			}
			res, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil || res.Status != tt.want {
				t.Fatalf("kstatus %v (%v), want %v", res, err, tt.want)
			}
		})
	}
	t.Run("a spec change not acted on yet is in progress", func(t *testing.T) {
		c := &sluicev1beta1.Canary{
			TypeMeta:   metav1.TypeMeta{APIVersion: sluicev1beta1.GroupVersion.String(), Kind: "Canary"},
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Generation: 4},
			Status:     Step(blueGreen()).Status,
		}
		obj, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
		if res, err := status.Compute(&unstructured.Unstructured{Object: obj}); err != nil || res.Status != status.InProgressStatus {
			t.Fatalf("kstatus %v (%v), want InProgress", res, err)
		}
	})
}
