package helmrelease_test

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/helmrelease"
)

// rendered is what a chart rendered: two objects that differ in every
// field a patch target selects by (group, version, name, namespace,
// labels and annotations), one with an image.
const rendered = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
  labels: {tier: web}
  annotations: {owner: sre}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: ghcr.io/stefanprodan/podinfo:6.0.0
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web-hpa
  namespace: batch
  labels: {tier: db}
  annotations: {owner: dev}
spec:
  maxReplicas: 3
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
`

// postRender runs the HelmRelease's post-renderers over rendered, as
// Helm does after it renders the chart.
func postRender(t *testing.T, prs []syncv2.PostRenderer) []*unstructured.Unstructured {
	t.Helper()
	hr := &syncv2.HelmRelease{Spec: syncv2.HelmReleaseSpec{PostRenderers: prs}}
	hr.Name, hr.Namespace = "web", "apps"
	objs, err := helmrelease.PostRender(t.Context(), cp.Client, hr, rendered)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestPostRendererPatchTargetsSelectByEachOfTheirFields post-renders
// two objects with a kustomize patch whose target sets one field, and
// checks that only the objects it selects are patched.
func TestPostRendererPatchTargetsSelectByEachOfTheirFields(t *testing.T) {
	const patch = `[{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}]`
	tests := []struct {
		name   string
		target syncv1.Selector
		// want are the kinds patched.
		want []string
	}{
		{"a kind selects the objects of that kind", syncv1.Selector{Kind: "HorizontalPodAutoscaler"}, []string{"HorizontalPodAutoscaler"}},
		{"a name selects the objects of that name", syncv1.Selector{Name: "web"}, []string{"Deployment"}},
		{"a group selects the objects of that group", syncv1.Selector{Group: "apps"}, []string{"Deployment"}},
		{"a version selects the objects of that version", syncv1.Selector{Version: "v2"}, []string{"HorizontalPodAutoscaler"}},
		{"a namespace selects the objects in it", syncv1.Selector{Namespace: "batch"}, []string{"HorizontalPodAutoscaler"}},
		{"a label selector selects the objects it matches", syncv1.Selector{LabelSelector: "tier=web"}, []string{"Deployment"}},
		{"an annotation selector selects the objects it matches", syncv1.Selector{AnnotationSelector: "owner=dev"}, []string{"HorizontalPodAutoscaler"}},
		{"a target that matches nothing patches nothing", syncv1.Selector{Group: "apps", Namespace: "batch"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			objs := postRender(t, []syncv2.PostRenderer{{Kustomize: &syncv2.KustomizePostRenderer{Patches: []syncv1.Patch{{Patch: patch, Target: &target}}}}})
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

// TestPostRendererImagesRewriteTheImagesTheyName post-renders a
// Deployment with each field of a kustomize image override.
func TestPostRendererImagesRewriteTheImagesTheyName(t *testing.T) {
	const digest = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"
	tests := []struct {
		name  string
		image syncv1.Image
		want  string
	}{
		{"newTag replaces the tag of the image name names", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.1.0"}, "ghcr.io/stefanprodan/podinfo:6.1.0"},
		{"newName replaces the name and keeps the tag", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", NewName: "registry.example.com/podinfo"}, "registry.example.com/podinfo:6.0.0"},
		{"digest pins the image in place of its tag", syncv1.Image{Name: "ghcr.io/stefanprodan/podinfo", Digest: digest}, "ghcr.io/stefanprodan/podinfo@" + digest},
		{"an override whose name is another image changes nothing", syncv1.Image{Name: "nginx", NewName: "registry.example.com/nginx", NewTag: "1.27", Digest: digest}, "ghcr.io/stefanprodan/podinfo:6.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := postRender(t, []syncv2.PostRenderer{{Kustomize: &syncv2.KustomizePostRenderer{Images: []syncv1.Image{tt.image}}}})
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				if got := containers[0].(map[string]any)["image"]; got != tt.want {
					t.Errorf("image %v, want %s", got, tt.want)
				}
				return
			}
			t.Fatal("no Deployment after the post-renderers")
		})
	}
}
