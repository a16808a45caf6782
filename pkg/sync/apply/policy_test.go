package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa/jsondiff"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestFluxsPerObjectPoliciesAndIgnoreRulesDecideWhatTheApplyChanges
// applies a ConfigMap, lets someone else change it, and applies the
// source again, under each of Flux's ssa and force annotations and
// spec.ignore rules.
func TestFluxsPerObjectPoliciesAndIgnoreRulesDecideWhatTheApplyChanges(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: NS, annotations: {ANNOTATIONS}}\nIMMUTABLE\ndata: {mode: MODE}\n"
	manifest := func(annotations, mode string, immutable bool) string {
		imm := ""
		if immutable {
			imm = "immutable: true"
		}
		return strings.NewReplacer("ANNOTATIONS", annotations, "MODE", mode, "IMMUTABLE", imm).Replace(cm)
	}
	// edit changes the ConfigMap as another field manager would, adding
	// a key and changing one: by an update, as `kubectl edit` does, or by
	// a server-side apply, as `kubectl apply --server-side` or another
	// controller does.
	edit := func(ctx context.Context, t *testing.T, ns, manager string, serverSide bool) {
		t.Helper()
		if serverSide {
			cm := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": "app", "namespace": ns},
				"data":     map[string]any{"mode": "by-hand", "added": "by-hand"},
			}}
			//nolint:staticcheck // an unstructured server-side apply, as kubectl sends it.
			if err := cp.Client.Patch(ctx, cm, client.Apply, client.FieldOwner(manager), client.ForceOwnership); err != nil {
				t.Fatal(err)
			}
			return
		}
		live := &corev1.ConfigMap{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live); err != nil {
			t.Fatal(err)
		}
		live.Data["mode"], live.Data["added"] = "by-hand", "by-hand"
		if err := cp.Client.Update(ctx, live, client.FieldOwner(manager)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name        string
		annotations string
		ignore      []jsondiff.IgnoreRule
		immutable   bool
		// manager edits the ConfigMap between the applies, by a
		// server-side apply when serverSide is set; "" is kubectl's update.
		manager    string
		serverSide bool
		// second is the mode the source says on the second apply.
		second string
		// wantMode and wantAdded are the data after the second apply; an
		// empty wantMode means the ConfigMap must not exist.
		wantMode, wantAdded string
	}{
		{name: "by default the source wins and kubectl's edits are undone", second: "fast", wantMode: "fast"},
		{name: "a kubectl server-side apply is taken back too", manager: "kubectl", serverSide: true, second: "fast", wantMode: "fast"},
		{name: "another manager's server-side apply keeps what the source does not set, and loses what it does", manager: "hpa-controller", serverSide: true, second: "fast", wantMode: "fast", wantAdded: "by-hand"},
		{name: "an ignore rule leaves a path another manager applied to it", manager: "hpa-controller", serverSide: true, ignore: []jsondiff.IgnoreRule{{Paths: []string{"/data/mode"}}}, second: "faster", wantMode: "by-hand", wantAdded: "by-hand"},
		{name: "ssa Merge keeps what another manager added but puts back what the source sets", annotations: "kustomize.toolkit.fluxcd.io/ssa: Merge", second: "fast", wantMode: "fast", wantAdded: "by-hand"},
		{name: "ssa IfNotPresent creates the object and never patches it", annotations: "kustomize.toolkit.fluxcd.io/ssa: IfNotPresent", second: "faster", wantMode: "by-hand", wantAdded: "by-hand"},
		{name: "ssa Ignore never applies the object", annotations: "kustomize.toolkit.fluxcd.io/ssa: Ignore", second: "fast"},
		{name: "an ignore rule keeps the cluster's value of its path", ignore: []jsondiff.IgnoreRule{{Paths: []string{"/data/mode"}, Selector: &jsondiff.Selector{Kind: "ConfigMap", Name: "app"}}}, second: "faster", wantMode: "by-hand"},
		{name: "an ignore rule for other objects changes nothing", ignore: []jsondiff.IgnoreRule{{Paths: []string{"/data/mode"}, Selector: &jsondiff.Selector{Kind: "Secret"}}}, second: "faster", wantMode: "faster"},
		{name: "force enabled recreates an object whose immutable field changed", annotations: "kustomize.toolkit.fluxcd.io/force: enabled", immutable: true, second: "faster", wantMode: "faster"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			ns := "policy-" + string(rune('a'+i))
			owner := client.ObjectKey{Namespace: "flux-system", Name: "apps"}
			a := New(cp.Client, cp.Client)
			opts := Options{Owner: owner, Ignore: tt.ignore}
			if _, err := a.Apply(ctx, objects(t, ns, namespace, manifest(tt.annotations, "fast", tt.immutable)), opts); err != nil {
				t.Fatal(err)
			}
			live := &corev1.ConfigMap{}
			err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)
			if tt.wantMode == "" {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("the ConfigMap was applied: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.immutable {
				manager := tt.manager
				if manager == "" {
					manager = "kubectl"
				}
				edit(ctx, t, ns, manager, tt.serverSide)
			}
			if _, err := a.Apply(ctx, objects(t, ns, namespace, manifest(tt.annotations, tt.second, tt.immutable)), opts); err != nil {
				t.Fatalf("second apply: %v", err)
			}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live); err != nil {
				t.Fatal(err)
			}
			if live.Data["mode"] != tt.wantMode || live.Data["added"] != tt.wantAdded {
				t.Errorf("data %v, want mode %q and added %q", live.Data, tt.wantMode, tt.wantAdded)
			}
		})
	}
}
