package apply

import (
	"context"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// TestEachFieldOfAnIgnoreTargetSelectsTheObjectsTheRuleKeeps applies a
// Lease (group coordination.k8s.io, version v1, labelled tier=web,
// annotated owner=sre), lets someone else change its holder, and applies
// the source again under a Kustomization's spec.ignore rule whose target
// sets one field: one that selects the Lease keeps the cluster's holder,
// one that does not lets the source put its own back.
func TestEachFieldOfAnIgnoreTargetSelectsTheObjectsTheRuleKeeps(t *testing.T) {
	const lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: app, namespace: NS, labels: {tier: web}, annotations: {owner: sre}}\nspec: {holderIdentity: HOLDER}\n"
	tests := []struct {
		name   string
		target syncv1.Selector
		// selects says whether the target selects the Lease.
		selects bool
	}{
		{"a group selects the objects of that group", syncv1.Selector{Group: "coordination.k8s.io"}, true},
		{"another group selects nothing", syncv1.Selector{Group: "apps"}, false},
		{"a version selects the objects of that version", syncv1.Selector{Version: "v1"}, true},
		{"another version selects nothing", syncv1.Selector{Version: "v1beta1"}, false},
		{"a namespace selects the objects in it", syncv1.Selector{Namespace: "NS"}, true},
		{"another namespace selects nothing", syncv1.Selector{Namespace: "elsewhere"}, false},
		{"a label selector selects the objects it matches", syncv1.Selector{LabelSelector: "tier in (web,api)"}, true},
		{"a label selector that does not match selects nothing", syncv1.Selector{LabelSelector: "tier=db"}, false},
		{"an annotation selector selects the objects it matches", syncv1.Selector{AnnotationSelector: "owner=sre"}, true},
		{"an annotation selector that does not match selects nothing", syncv1.Selector{AnnotationSelector: "owner=dev"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			ns := "ignore-target-" + string(rune('a'+i))
			target := tt.target
			target.Namespace = strings.ReplaceAll(target.Namespace, "NS", ns)
			ks := &syncv1.Kustomization{
				ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "apps"},
				Spec:       syncv1.KustomizationSpec{Ignore: []syncv1.IgnoreRule{{Paths: []string{"/spec/holderIdentity"}, Target: &target}}},
			}
			opts := ForKustomization(ks)
			a := New(cp.Client, cp.Client)
			manifest := func(holder string) string { return strings.ReplaceAll(lease, "HOLDER", holder) }
			if _, err := a.Apply(ctx, objects(t, ns, namespace, manifest("source")), opts); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKey{Namespace: ns, Name: "app"}
			live := &coordinationv1.Lease{}
			if err := cp.Client.Get(ctx, key, live); err != nil {
				t.Fatal(err)
			}
			byHand := "by-hand"
			live.Spec.HolderIdentity = &byHand
			if err := cp.Client.Update(ctx, live, client.FieldOwner("kubectl")); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Apply(ctx, objects(t, ns, namespace, manifest("source-again")), opts); err != nil {
				t.Fatalf("second apply: %v", err)
			}
			if err := cp.Client.Get(ctx, key, live); err != nil {
				t.Fatal(err)
			}
			want := "source-again"
			if tt.selects {
				want = byHand
			}
			if got := *live.Spec.HolderIdentity; got != want {
				t.Errorf("holderIdentity %q after the second apply, want %q", got, want)
			}
		})
	}
}

// TestSpecForceRecreatesAnObjectWhoseImmutableFieldsChanged applies an
// immutable ConfigMap, then a source that changes its data: without
// spec.force the API server refuses the change, with it the ConfigMap is
// deleted and made again with the new data.
func TestSpecForceRecreatesAnObjectWhoseImmutableFieldsChanged(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: NS}\nimmutable: true\ndata: {mode: MODE}\n"
	tests := []struct {
		name  string
		force bool
	}{
		{"without force the change is refused", false},
		{"with force the object is recreated", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			ns := "force-" + string(rune('a'+i))
			ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "apps"}, Spec: syncv1.KustomizationSpec{Force: tt.force}}
			opts := ForKustomization(ks)
			a := New(cp.Client, cp.Client)
			apply := func(ctx context.Context, mode string) error {
				_, err := a.Apply(ctx, objects(t, ns, namespace, strings.ReplaceAll(cm, "MODE", mode)), opts)
				return err
			}
			if err := apply(ctx, "fast"); err != nil {
				t.Fatal(err)
			}
			first := &corev1.ConfigMap{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, first); err != nil {
				t.Fatal(err)
			}
			err := apply(ctx, "faster")
			if !tt.force {
				if err == nil || !strings.Contains(err.Error(), "immutable") {
					t.Fatalf("error %v, want the API server's refusal of an immutable field", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the forced apply failed: %v", err)
			}
			live := &corev1.ConfigMap{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live); err != nil {
				t.Fatal(err)
			}
			if live.Data["mode"] != "faster" || live.UID == first.UID {
				t.Errorf("data %v and uid %s (first %s), want a new ConfigMap with mode faster", live.Data, live.UID, first.UID)
			}
		})
	}
}
