package apply

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/runtime/schema"

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

// deployment is a one-replica Deployment; podSpec adds to its pod spec.
func deployment(name, podSpec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers: [{name: app, image: podinfo:1}]
` + podSpec
}

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
	a := New(cp.Client)
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
	a := New(cp.Client)
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
}

func TestABadObjectIsNamedAndNothingIsApplied(t *testing.T) {
	t.Parallel()
	ns, owner := "bad", client.ObjectKey{Namespace: "flux-system", Name: "apps"}
	a := New(cp.Client)
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

func TestWaitReportsHealthByKstatus(t *testing.T) {
	t.Parallel()
	owner := client.ObjectKey{Namespace: "flux-system", Name: "apps"}
	a := New(cp.Client)
	if _, err := a.Apply(t.Context(), objects(t, "healthy", namespace, deployment("app", "")), Options{Owner: owner, Wait: true, Timeout: time.Minute}); err != nil {
		t.Fatalf("a Deployment that rolls out: %v", err)
	}
	_, err := a.Apply(t.Context(), objects(t, "unhealthy", namespace, deployment("stuck", "      nodeSelector: {no-such-node: \"true\"}\n")), Options{Owner: owner, Wait: true, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "health check") || !strings.Contains(err.Error(), "Deployment/unhealthy/stuck") {
		t.Fatalf("error %v, want a failed health check naming the Deployment", err)
	}
	// A health check names an object this apply does not make.
	stuck := object.ObjMetadata{Namespace: "unhealthy", Name: "stuck", GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}}
	_, err = a.Apply(t.Context(), objects(t, "checked", namespace), Options{Owner: owner, HealthChecks: []object.ObjMetadata{stuck}, Timeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "Deployment/unhealthy/stuck") {
		t.Fatalf("error %v, want a failed health check naming the checked Deployment", err)
	}
}
