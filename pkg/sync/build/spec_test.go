package build

import (
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// targets holds two objects that differ in every field a patch target
// selects by: group, version, namespace, labels and annotations.
var targets = map[string][]byte{
	"app/deploy.yaml": []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: web
  labels: {tier: web}
  annotations: {owner: sre}
spec:
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
      - name: app
        image: ghcr.io/stefanprodan/podinfo:6.0.0
`),
	"app/hpa.yaml": []byte(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
  namespace: batch
  labels: {tier: db}
  annotations: {owner: dev}
spec:
  maxReplicas: 3
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
`),
}

// TestPatchTargetsSelectByEachOfTheirFields builds two objects with a
// patch (as a Kustomization's spec.patches and a HelmRelease's
// post-renderer give it) whose target sets one field, and checks that
// only the objects it selects are patched.
func TestPatchTargetsSelectByEachOfTheirFields(t *testing.T) {
	const patch = `[{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}]`
	tests := []struct {
		name   string
		target syncv1.Selector
		// want are the kinds patched.
		want []string
	}{
		{"a group selects the objects of that group", syncv1.Selector{Group: "apps"}, []string{"Deployment"}},
		{"a version selects the objects of that version", syncv1.Selector{Version: "v2"}, []string{"HorizontalPodAutoscaler"}},
		{"a group and version select together", syncv1.Selector{Group: "autoscaling", Version: "v1"}, nil},
		{"a name selects the objects of that name", syncv1.Selector{Name: "podinfo"}, []string{"Deployment", "HorizontalPodAutoscaler"}},
		{"a namespace selects the objects in it", syncv1.Selector{Namespace: "batch"}, []string{"HorizontalPodAutoscaler"}},
		{"a label selector selects the objects it matches", syncv1.Selector{LabelSelector: "tier=web"}, []string{"Deployment"}},
		{"a set-based label selector selects the objects it matches", syncv1.Selector{LabelSelector: "tier notin (web)"}, []string{"HorizontalPodAutoscaler"}},
		{"an annotation selector selects the objects it matches", syncv1.Selector{AnnotationSelector: "owner=dev"}, []string{"HorizontalPodAutoscaler"}},
		{"an annotation selector that matches nothing patches nothing", syncv1.Selector{AnnotationSelector: "owner=ops"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			patches, _ := PatchesAndImages([]syncv1.Patch{{Patch: patch, Target: &target}}, nil)
			objs, err := Build(targets, Options{Path: "app", Patches: patches})
			if err != nil {
				t.Fatal(err)
			}
			var patched []string
			for _, o := range objs {
				if o.GetLabels()["patched"] == "yes" {
					patched = append(patched, o.GetKind())
				}
			}
			slices.Sort(patched)
			if !slices.Equal(patched, tt.want) {
				t.Errorf("patched %v, want %v", patched, tt.want)
			}
		})
	}
}

// TestImageOverridesRewriteTheImagesTheyName builds a Deployment with
// each field of an image override, as a Kustomization's spec.images and a
// HelmRelease's post-renderer give it.
func TestImageOverridesRewriteTheImagesTheyName(t *testing.T) {
	const digest = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"
	tests := []struct {
		name  string
		image syncv1.Image
		want  string
	}{
		{"newTag replaces the tag", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.1.0"}, "ghcr.io/stefanprodan/podinfo:6.1.0"},
		{"newName replaces the name and keeps the tag", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", NewName: "registry.example.com/podinfo"}, "registry.example.com/podinfo:6.0.0"},
		{"digest pins the image in place of its tag", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", Digest: digest}, "ghcr.io/stefanprodan/podinfo@" + digest},
		{"newName and digest together", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", NewName: "registry.example.com/podinfo", Digest: digest}, "registry.example.com/podinfo@" + digest},
		{"an override naming another image changes nothing", syncv1.Image{Name: "nginx", NewName: "registry.example.com/nginx", NewTag: "1.27"}, "ghcr.io/stefanprodan/podinfo:6.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, images := PatchesAndImages(nil, []syncv1.Image{tt.image})
			objs, err := Build(targets, Options{Path: "app", Images: images})
			if err != nil {
				t.Fatal(err)
			}
			containers, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment").Object, "spec", "template", "spec", "containers")
			if got := containers[0].(map[string]any)["image"]; got != tt.want {
				t.Errorf("image %v, want %s", got, tt.want)
			}
		})
	}
}

// TestAnOptionalSubstituteFromThatIsMissingAddsNoVariables reads
// spec.postBuild.substituteFrom: a missing object is an error naming it
// unless it is optional, and an optional one that exists still counts.
func TestAnOptionalSubstituteFromThatIsMissingAddsNoVariables(t *testing.T) {
	const ns = "substitute-from"
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cluster"}, Data: map[string]string{"CLUSTER": "eu-1"}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		from    []syncv1.SubstituteReference
		want    map[string]string
		wantErr string
	}{
		{"a missing optional ConfigMap adds nothing", []syncv1.SubstituteReference{{Kind: "ConfigMap", Name: "cluster"}, {Kind: "ConfigMap", Name: "absent", Optional: true}}, map[string]string{"CLUSTER": "eu-1"}, ""},
		{"a missing optional Secret adds nothing", []syncv1.SubstituteReference{{Kind: "Secret", Name: "absent", Optional: true}, {Kind: "ConfigMap", Name: "cluster"}}, map[string]string{"CLUSTER": "eu-1"}, ""},
		{"an optional object that exists adds its variables", []syncv1.SubstituteReference{{Kind: "ConfigMap", Name: "cluster", Optional: true}}, map[string]string{"CLUSTER": "eu-1"}, ""},
		{"a missing object that is not optional is an error naming it", []syncv1.SubstituteReference{{Kind: "ConfigMap", Name: "cluster"}, {Kind: "Secret", Name: "absent"}}, nil, "spec.postBuild.substituteFrom[1]: Secret absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: syncv1.KustomizationSpec{PostBuild: &syncv1.PostBuild{SubstituteFrom: tt.from}}}
			vars, err := Variables(t.Context(), cp.Client, ks)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(vars, tt.want) {
				t.Errorf("variables %v, want %v", vars, tt.want)
			}
		})
	}
}
