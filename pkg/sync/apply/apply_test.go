package apply

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxcd/pkg/ssa"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

// objects parses YAML documents, with NS replaced by ns.
func objects(t *testing.T, ns string, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(strings.ReplaceAll(d, "NS", ns)), &u.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

const (
	namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n"
	settings  = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: NS}\ndata: {mode: fast}\n"
	extra     = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: NS}\ndata: {a: b}\n"
	kept      = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: NS, annotations: {kustomize.toolkit.fluxcd.io/prune: disabled}}\ndata: {a: b}\n"
)

func actions(cs *ssa.ChangeSet) map[string]string {
	out := map[string]string{}
	for _, e := range cs.Entries {
		out[e.Subject] = string(e.Action)
	}
	return out
}

func TestApplyCreatesCorrectsDriftAndThenChangesNothing(t *testing.T) {
	t.Parallel()
	ns, owner := "apply", client.ObjectKey{Namespace: "flux-system", Name: "apps"}
	a := New(cp.Client, cp.Client)
	res, err := a.Apply(t.Context(), objects(t, ns, settings, namespace), Options{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res.Changes); got["Namespace/apply"] != "created" || got["ConfigMap/apply/settings"] != "created" {
		t.Fatalf("first apply %v", got)
	}
	if len(res.Inventory) != 2 || res.Inventory[0].ID != "_apply__Namespace" || res.Inventory[1].ID != "apply_settings__ConfigMap" {
		t.Fatalf("inventory %v", res.Inventory)
	}

	// Someone edits the ConfigMap by hand: the next apply puts it back.
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels[OwnerGroup+"/name"] != "apps" || cm.Labels[OwnerGroup+"/namespace"] != "flux-system" {
		t.Fatalf("ownership labels %v", cm.Labels)
	}
	cm.Data["mode"] = "slow"
	if err := cp.Client.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	res, err = a.Apply(t.Context(), objects(t, ns, settings, namespace), Options{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res.Changes); got["ConfigMap/apply/settings"] != "configured" {
		t.Fatalf("drift apply %v", got)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil || cm.Data["mode"] != "fast" {
		t.Fatalf("drift not corrected: %v %v", cm.Data, err)
	}
	res, err = a.Apply(t.Context(), objects(t, ns, settings, namespace), Options{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res.Changes); got["ConfigMap/apply/settings"] != "unchanged" || got["Namespace/apply"] != "unchanged" {
		t.Fatalf("a repeated apply changed %v", got)
	}
}

func TestPruneDeletesWhatLeftTheSourceButWhatOptsOut(t *testing.T) {
	t.Parallel()
	ns, owner := "prune", client.ObjectKey{Namespace: "flux-system", Name: "apps"}
	a := New(cp.Client, cp.Client)
	first, err := a.Apply(t.Context(), objects(t, ns, namespace, settings, extra, kept), Options{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Apply(t.Context(), objects(t, ns, namespace, settings), Options{Owner: owner, Prune: true, Previous: first.Inventory})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res.Pruned); got["ConfigMap/prune/extra"] != "deleted" {
		t.Fatalf("pruned %v", got)
	}

	for name, wantGone := range map[string]bool{"extra": true, "kept": false, "settings": false} {
		err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		if gone := apierrors.IsNotFound(err); gone != wantGone {
			t.Errorf("ConfigMap %s gone=%v, want %v (%v)", name, gone, wantGone, err)
		}
	}

	// An object marked reconcile: disabled in the cluster is not
	// pruned either, as in Flux.
	first, err = a.Apply(t.Context(), objects(t, ns, namespace, settings, extra), Options{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	live := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "extra"}, live); err != nil {
		t.Fatal(err)
	}
	live.Annotations = map[string]string{ReconcileAnnotation: ReconcileDisabled}
	if err := cp.Client.Update(t.Context(), live); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(t.Context(), objects(t, ns, namespace, settings), Options{Owner: owner, Prune: true, Previous: first.Inventory}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "extra"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("an object whose reconcile is disabled was pruned: %v", err)
	}
}

func TestABadObjectIsNamedAndNothingIsApplied(t *testing.T) {
	t.Parallel()
	ns, owner := "bad", client.ObjectKey{Namespace: "flux-system", Name: "apps"}
	a := New(cp.Client, cp.Client)
	if _, err := a.Apply(t.Context(), objects(t, ns, namespace, settings), Options{Owner: owner}); err != nil {
		t.Fatal(err)
	}
	changed := strings.ReplaceAll(settings, "fast", "faster")
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: NS}\n"
	_, err := a.Apply(t.Context(), objects(t, ns, namespace, changed, bad), Options{Owner: owner})
	if err == nil || !strings.Contains(err.Error(), "ConfigMap/bad/Bad_Name") || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("error %v, want one naming the object and the field", err)
	}
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil || cm.Data["mode"] != "fast" {
		t.Fatalf("a failed apply changed what was applied before: %v %v", cm.Data, err)
	}
}
