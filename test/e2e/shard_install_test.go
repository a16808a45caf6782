package e2e_test

import (
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/sharding"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// operatorArgs are the arguments of a Deployment's first container.
func operatorArgs(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) == 0 {
		t.Fatalf("Deployment %s has no containers: %v", d.GetName(), err)
	}
	return toStrings(containers[0].(map[string]any)["args"])
}

func TestShardManifests(t *testing.T) {
	t.Run("the kustomize shard overlay renders a shard's Deployment that selects its own pods", func(t *testing.T) {
		objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize", "shard"))
		if err != nil {
			t.Fatal(err)
		}
		if got := kindsOf(objs); !reflect.DeepEqual(got, map[string]int{"Deployment": 1}) {
			t.Fatalf("kinds %v, want one Deployment", got)
		}
		d := find(objs, "Deployment")
		if d.GetName() != "sluice-shard1" || d.GetNamespace() != "sluice-system" {
			t.Errorf("Deployment %s/%s, want sluice-system/sluice-shard1", d.GetNamespace(), d.GetName())
		}
		if args := operatorArgs(t, d); !slices.Contains(args, "--shard-key=shard1") || !slices.Contains(args, "--leader-elect=true") {
			t.Errorf("args %v lack --shard-key=shard1 or leader election", args)
		}
		selector, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels")
		podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
		if selector[sharding.KeyLabel] != "shard1" || podLabels[sharding.KeyLabel] != "shard1" {
			t.Errorf("selector %v, pod labels %v: want %s=shard1 in both", selector, podLabels, sharding.KeyLabel)
		}
		// The install's Services select the shard's pods too.
		for _, svc := range manifests.Select(kustomizeBuild(t), "Service") {
			want, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
			for k, v := range want {
				if podLabels[k] != v {
					t.Errorf("Service %s selects %v, which the shard's pods (%v) lack", svc.GetName(), want, podLabels)
				}
			}
		}
		if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
		apply(t, objs, client.DryRunAll)
	})

	t.Run("the chart's shardKey and watchLabelSelector become the operator's flags", func(t *testing.T) {
		const chartNamespace = "sluice-shards-helm"
		if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNamespace}}); err != nil {
			t.Fatal(err)
		}
		for values, want := range map[string]string{
			"shardKey=shard1":                          "--shard-key=shard1",
			"watchLabelSelector=" + sharding.Unsharded: "--watch-label-selector=" + sharding.Unsharded,
		} {
			name, value, _ := strings.Cut(values, "=")
			objs := helmTemplate(t, chartNamespace, map[string]any{name: value})
			args := operatorArgs(t, find(objs, "Deployment"))
			if !slices.Contains(args, want) {
				t.Errorf("%s: args %v lack %s", values, args, want)
			}
			apply(t, objs, client.DryRunAll)
		}
		args := operatorArgs(t, find(helmTemplate(t, chartNamespace, nil), "Deployment"))
		if slices.ContainsFunc(args, func(a string) bool {
			return strings.HasPrefix(a, "--shard-key") || strings.HasPrefix(a, "--watch-label-selector")
		}) {
			t.Errorf("the default values shard the operator: %v", args)
		}
	})

	t.Run("the chart's schema refuses both shardKey and watchLabelSelector, and a shardKey that is no label value", func(t *testing.T) {
		for _, values := range []map[string]any{
			{"shardKey": "shard1", "watchLabelSelector": sharding.Unsharded},
			{"shardKey": "shard 1"},
		} {
			lint := action.NewLint()
			if result := lint.Run([]string{chartPath()}, values); len(result.Errors) == 0 {
				t.Errorf("values %v passed the schema", slices.Collect(maps.Keys(values)))
			}
		}
	})
}
