package receiver

import (
	"net/http"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
)

// object is an object of a kind a Receiver may name, with a valid spec.
func object(kind, ns, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(kinds()[kind])
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func TestACallRequestsAReconcileOfEveryKindSluiceReconciles(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-kinds")
	sourceRef := map[string]any{"kind": "GitRepository", "name": "app"}
	shop := map[string]string{"team": "shop"}
	objs := []*unstructured.Unstructured{
		object("HelmRepository", e.ns, "charts", nil, map[string]any{"url": "https://charts.example.com", "interval": "1h"}),
		object("HelmChart", e.ns, "app", nil, map[string]any{"chart": "app", "interval": "1h", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}),
		object("OCIRepository", e.ns, "manifests", shop, map[string]any{"url": "oci://ghcr.io/shop/manifests", "interval": "1h", "ref": map[string]any{"tag": "latest"}}),
		object("OCIRepository", e.ns, "other", nil, map[string]any{"url": "oci://ghcr.io/shop/other", "interval": "1h", "ref": map[string]any{"tag": "latest"}}),
		object("Bucket", e.ns, "app", nil, map[string]any{"bucketName": "manifests", "endpoint": "s3.example.com", "interval": "1h"}),
		object("Kustomization", e.ns, "app", nil, map[string]any{"interval": "1h", "prune": true, "sourceRef": sourceRef}),
		object("HelmRelease", e.ns, "app", nil, map[string]any{"interval": "1h", "chart": map[string]any{"spec": map[string]any{"chart": "app", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}}}),
		object("ImageRepository", e.ns, "app", nil, map[string]any{"image": "ghcr.io/shop/app", "interval": "1h"}),
		object("ImageUpdateAutomation", e.ns, "app", nil, map[string]any{"interval": "1h", "sourceRef": sourceRef}),
		object("ImagePolicy", e.ns, "app", nil, map[string]any{"imageRepositoryRef": map[string]any{"name": "app"}, "policy": map[string]any{"semver": map[string]any{"range": ">=1.0.0"}}}),
	}
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	// Half of them are named with Flux's apiVersion, as a manifest
	// migrated by changing only its own group still names them.
	fluxGroup := map[string]string{"Kustomization": "kustomize", "HelmRelease": "helm", "ImageRepository": "image", "ImageUpdateAutomation": "image", "ImagePolicy": "image"}
	var refs []notificationv1.CrossNamespaceObjectReference
	for i, o := range objs {
		if o.GetName() != "other" && o.GetKind() != "OCIRepository" {
			ref := notificationv1.CrossNamespaceObjectReference{Kind: o.GetKind(), Name: o.GetName()}
			if i%2 == 0 {
				group := fluxGroup[o.GetKind()]
				if group == "" {
					group = "source"
				}
				ref.APIVersion = group + ".toolkit.fluxcd.io/v1"
			}
			refs = append(refs, ref)
		}
	}
	// The OCIRepositories are named by label: the list is of metadata, and
	// the endpoint knows the kind by group, version and kind alone.
	refs = append(refs, notificationv1.CrossNamespaceObjectReference{Kind: "OCIRepository", Name: "*", MatchLabels: shop})
	path := e.receiverWith(t, "all", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: refs})

	if code := e.call(t, http.MethodPost, path, nil); code != http.StatusOK {
		t.Fatalf("the call got %d, want 200", code)
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatal(err)
		}
		requested := got.GetAnnotations()[sourcev1.ReconcileRequestAnnotation] != ""
		if want := o.GetName() != "other"; requested != want {
			t.Errorf("%s %s: reconcile requested %v, want %v", o.GetKind(), o.GetName(), requested, want)
		}
	}
}
