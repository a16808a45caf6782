package workload

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func targetService(version string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Labels: map[string]string{"team": "web"}},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeNodePort,
			ClusterIP:  "10.0.0.10",
			ClusterIPs: []string{"10.0.0.10"},
			Selector:   map[string]string{"app": "podinfo", "version": version},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(9898), NodePort: 30080}},
		},
	}
}

func TestAServiceTargetsRevisionIsWhatItsUserWrote(t *testing.T) {
	v1 := targetService("v1")
	reallocated := targetService("v1")
	reallocated.Spec.ClusterIP, reallocated.Spec.ClusterIPs, reallocated.Spec.Ports[0].NodePort = "10.0.0.99", []string{"10.0.0.99"}, 31000
	tests := []struct {
		name  string
		other *corev1.Service
		same  bool
	}{
		{"addresses the API server gave are not a revision", reallocated, true},
		{"another selector is a revision", targetService("v2"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodTemplateHash(v1) == PodTemplateHash(tt.other); got != tt.same {
				t.Fatalf("same revision: %v, want %v", got, tt.same)
			}
		})
	}
}

func TestAServiceTargetsCopiesRouteAsItDoesInsideTheCluster(t *testing.T) {
	primary := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.20", ClusterIPs: []string{"10.0.0.20"}}}
	if err := Copy(primary, targetService("v2"), PrimaryOptions{Revision: "r2", IncludeLabelPrefixes: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	if primary.Spec.Type != corev1.ServiceTypeClusterIP || primary.Spec.ClusterIP != "10.0.0.20" || primary.Spec.Ports[0].NodePort != 0 {
		t.Errorf("the primary copy is %s at %s with node port %d, want ClusterIP at its own 10.0.0.20 and no node port",
			primary.Spec.Type, primary.Spec.ClusterIP, primary.Spec.Ports[0].NodePort)
	}
	if !maps.Equal(primary.Spec.Selector, map[string]string{"app": "podinfo", "version": "v2"}) {
		t.Errorf("the primary selects %v, want the target's selector as written", primary.Spec.Selector)
	}
	if primary.Annotations[sluicev1beta1.RevisionAnnotation] != "r2" || primary.Labels["team"] != "web" {
		t.Errorf("the primary's metadata is %v %v", primary.Labels, primary.Annotations)
	}
	if r := ReadinessOf(targetService("v2"), 100); !r.Ready {
		t.Errorf("a Service target is not ready: %s", r.Message)
	}
}

func knative(annotations map[string]string, created, ready string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"latestCreatedRevisionName": created, "latestReadyRevisionName": ready,
	}}}
	u.SetGroupVersionKind(KnativeService)
	u.SetAnnotations(annotations)
	return u
}

func TestAKnativeServicesRevisionsAreKnatives(t *testing.T) {
	tests := []struct {
		name              string
		svc               *unstructured.Unstructured
		revision, primary string
		ready             bool
	}{
		{"the latest created Revision is the canary, ready once Knative says so", knative(nil, "podinfo-00002", "podinfo-00002"), "podinfo-00002", "", true},
		{"a Revision Knative has not made ready is not", knative(nil, "podinfo-00002", "podinfo-00001"), "podinfo-00002", "", false},
		{"no Revision yet is not ready", knative(nil, "", ""), "", "", false},
		{"the primary is the annotated Revision", knative(map[string]string{KnativePrimaryAnnotation: "podinfo-00001"}, "podinfo-00002", "podinfo-00002"), "podinfo-00002", "podinfo-00001", true},
		{"Flagger's annotation is read when Sluice takes over", knative(map[string]string{"flagger.app/primary-revision": "podinfo-00001"}, "podinfo-00001", "podinfo-00001"), "podinfo-00001", "podinfo-00001", true},
		{"Sluice's annotation wins over Flagger's", knative(map[string]string{"flagger.app/primary-revision": "podinfo-00001", KnativePrimaryAnnotation: "podinfo-00003"}, "podinfo-00003", "podinfo-00003"), "podinfo-00003", "podinfo-00003", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodTemplateHash(tt.svc); got != tt.revision {
				t.Errorf("revision %q, want %q", got, tt.revision)
			}
			if got := KnativePrimaryRevision(tt.svc); got != tt.primary {
				t.Errorf("primary %q, want %q", got, tt.primary)
			}
			if got := ReadinessOf(tt.svc, 100).Ready; got != tt.ready {
				t.Errorf("ready %v, want %v", got, tt.ready)
			}
		})
	}
}

func TestATargetRefNamesItsKind(t *testing.T) {
	tests := []struct {
		ref     sluicev1beta1.TargetReference
		knative bool
	}{
		{sluicev1beta1.TargetReference{APIVersion: "serving.knative.dev/v1", Kind: "Service"}, true},
		{sluicev1beta1.TargetReference{APIVersion: "v1", Kind: "Service"}, false},
	}
	for _, tt := range tests {
		obj, err := NewTarget(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		if IsKnative(obj) != tt.knative {
			t.Errorf("%s %s: Knative %v, want %v", tt.ref.APIVersion, tt.ref.Kind, IsKnative(obj), tt.knative)
		}
	}
}
