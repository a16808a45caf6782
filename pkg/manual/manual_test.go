package manual_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/manual"
)

// Sending and waiting run against a real API server in pkg/cli's tests
// and in test/e2e/dashboard; here are the parts that read objects only.

func TestStateOfReadsWhatASyncObjectLastDid(t *testing.T) {
	ready := []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded"}}
	tests := []struct {
		name string
		obj  client.Object
		want manual.State
	}{
		{
			name: "a GitRepository's artifact revision",
			obj: &sourcev1.GitRepository{
				Spec:   sourcev1.GitRepositorySpec{Suspend: true},
				Status: sourcev1.GitRepositoryStatus{Artifact: &sourcev1.Artifact{Revision: "main@sha1:abc"}, Conditions: ready},
			},
			want: manual.State{Suspended: true, Revision: "main@sha1:abc", Conditions: ready},
		},
		{
			name: "a Kustomization's last applied revision and handled request",
			obj: &syncv1.Kustomization{Status: syncv1.KustomizationStatus{
				LastAppliedRevision: "main@sha1:def", LastHandledReconcileAt: "2025-06-01T12:00:00Z",
			}},
			want: manual.State{Revision: "main@sha1:def", LastHandled: "2025-06-01T12:00:00Z"},
		},
		{
			name: "a HelmRelease's latest chart version",
			obj:  &syncv2.HelmRelease{Status: syncv2.HelmReleaseStatus{History: []syncv2.Snapshot{{ChartVersion: "1.2.3"}, {ChartVersion: "1.2.2"}}}},
			want: manual.State{Revision: "1.2.3"},
		},
		{
			name: "a GitRepository that fetched nothing yet",
			obj:  &sourcev1.GitRepository{},
			want: manual.State{},
		},
		{
			name: "a kind that is not of the sync core",
			obj:  &sluicev1beta1.Canary{},
			want: manual.State{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := manual.StateOf(tt.obj)
			if got.Suspended != tt.want.Suspended || got.Revision != tt.want.Revision || got.LastHandled != tt.want.LastHandled || len(got.Conditions) != len(tt.want.Conditions) {
				t.Errorf("state %+v, want %+v", got, tt.want)
			}
			if (got.Ready() != nil) != (len(tt.want.Conditions) > 0) {
				t.Errorf("Ready %+v with conditions %+v", got.Ready(), got.Conditions)
			}
		})
	}
}

func TestARequestIsDescribedAsTheCLISaysIt(t *testing.T) {
	tests := []struct {
		req  sluicev1beta1.Request
		want string
	}{
		{sluicev1beta1.Request{Action: sluicev1beta1.RequestPromote}, "promote"},
		{sluicev1beta1.Request{Action: sluicev1beta1.RequestPromote, Full: true}, "full promotion"},
		{sluicev1beta1.Request{Action: sluicev1beta1.RequestAbort}, "abort"},
	}
	for _, tt := range tests {
		if got := manual.Describe(tt.req); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.req, got, tt.want)
		}
	}
}

func TestAnAnnotationPatchTouchesOneAnnotation(t *testing.T) {
	patch := manual.AnnotationPatch(sluicev1beta1.RequestAnnotation, `{"id":"1","action":"abort"}`)
	meta, _ := patch["metadata"].(map[string]any)
	annotations, _ := meta["annotations"].(map[string]string)
	if len(patch) != 1 || len(meta) != 1 || len(annotations) != 1 || annotations[sluicev1beta1.RequestAnnotation] != `{"id":"1","action":"abort"}` {
		t.Errorf("patch %v", patch)
	}
}
