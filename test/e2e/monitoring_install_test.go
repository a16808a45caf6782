package e2e_test

import (
	"bytes"
	"maps"
	"os"
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

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// dashboardFiles are the copies of the Grafana dashboard: the chart's,
// which its ConfigMap reads with .Files.Get, and kustomize's, which its
// configMapGenerator reads (kustomize loads no file outside its folder).
func dashboardFiles() []string {
	return []string{
		filepath.Join(chartPath(), "dashboards", "sluice.json"),
		filepath.Join(controlplane.RepoRoot(), "kustomize", "monitoring", "sluice.json"),
	}
}

func TestMonitoringManifests(t *testing.T) {
	const chartNamespace = "sluice-monitoring-helm"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNamespace}}); err != nil {
		t.Fatal(err)
	}
	dashboard, err := os.ReadFile(dashboardFiles()[0])
	if err != nil {
		t.Fatal(err)
	}

	t.Run("each switch adds its objects to the chart and the defaults add none", func(t *testing.T) {
		for _, tc := range []struct {
			values map[string]any
			adds   map[string]int
		}{
			{values: nil, adds: nil},
			{values: map[string]any{"serviceMonitor": map[string]any{"enabled": true}}, adds: map[string]int{"ServiceMonitor": 1}},
			{values: map[string]any{"podMonitor": map[string]any{"enabled": true}}, adds: map[string]int{"PodMonitor": 1}},
			{values: map[string]any{"podDisruptionBudget": map[string]any{"enabled": true}}, adds: map[string]int{"PodDisruptionBudget": 1}},
			{values: map[string]any{"grafanaDashboard": map[string]any{"enabled": true}}, adds: map[string]int{"ConfigMap": 1}},
		} {
			want := maps.Clone(installKinds)
			maps.Copy(want, tc.adds)
			if got := kindsOf(helmTemplate(t, chartNamespace, tc.values)); !reflect.DeepEqual(got, want) {
				t.Errorf("values %v: kinds %v, want %v", tc.values, got, want)
			}
		}
	})

	t.Run("the ServiceMonitor scrapes the metrics Service's port with the values given", func(t *testing.T) {
		relabel := map[string]any{"action": "replace", "targetLabel": "cluster", "replacement": "prod"}
		objs := helmTemplate(t, chartNamespace, map[string]any{"serviceMonitor": map[string]any{
			"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"},
			"interval": "15s", "scrapeTimeout": "10s", "relabelings": []any{relabel},
		}})
		sm := find(objs, "ServiceMonitor")
		if sm.GetNamespace() != chartNamespace || sm.GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("ServiceMonitor %s/%s labels %v", sm.GetNamespace(), sm.GetName(), sm.GetLabels())
		}
		endpoint := only(t, sm, "spec", "endpoints")
		for field, want := range map[string]any{"port": "http-metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s", "honorLabels": true} {
			if endpoint[field] != want {
				t.Errorf("endpoint %s is %v, want %v", field, endpoint[field], want)
			}
		}
		if got := endpoint["relabelings"]; !reflect.DeepEqual(got, []any{relabel}) {
			t.Errorf("relabelings %v", got)
		}
		selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var scraped []string
		for _, svc := range manifests.Select(objs, "Service") {
			if labelsMatch(selector, svc.GetLabels()) && slices.Contains(servicePortNames(svc), "http-metrics") {
				scraped = append(scraped, svc.GetName())
			}
		}
		if !slices.Equal(scraped, []string{"sluice-metrics"}) {
			t.Errorf("the ServiceMonitor scrapes the Services %v, want sluice-metrics alone", scraped)
		}
	})

	t.Run("the PodMonitor scrapes the operator pods' metrics port", func(t *testing.T) {
		objs := helmTemplate(t, chartNamespace, map[string]any{"podMonitor": map[string]any{"enabled": true, "interval": "20s"}})
		pm := find(objs, "PodMonitor")
		endpoint := only(t, pm, "spec", "podMetricsEndpoints")
		if endpoint["port"] != "http-metrics" || endpoint["interval"] != "20s" || endpoint["honorLabels"] != true {
			t.Errorf("endpoint %v", endpoint)
		}
		selector, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
		d := find(objs, "Deployment")
		podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
		if !labelsMatch(selector, podLabels) {
			t.Errorf("the PodMonitor selects %v, which the operator's pods (%v) lack", selector, podLabels)
		}
		if !slices.Contains(containerPortNames(t, d), "http-metrics") {
			t.Errorf("the operator's container has no http-metrics port")
		}
	})

	t.Run("the chart refuses monitor values that cannot work, saying why", func(t *testing.T) {
		for _, tc := range []struct {
			values map[string]any
			want   string
		}{
			{values: map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "podMonitor": map[string]any{"enabled": true}}, want: "exclude each other"},
			{values: map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "metrics": map[string]any{"service": map[string]any{"enabled": false}}}, want: "needs metrics.service.enabled"},
			{values: map[string]any{"serviceMonitor": map[string]any{"interval": "often"}}, want: "interval"},
			{values: map[string]any{"podDisruptionBudget": map[string]any{"maxUnavailable": "half"}}, want: "maxUnavailable"},
		} {
			_, err := manifests.HelmTemplate(chartPath(), "sluice", chartNamespace, "v"+controlplane.KubernetesVersion, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %v: error %v, want one saying %q", tc.values, err, tc.want)
			}
		}
	})

	t.Run("the PodDisruptionBudget keeps all but one operator pod by default, or minAvailable when set", func(t *testing.T) {
		for _, tc := range []struct {
			pdb  map[string]any
			want map[string]any
		}{
			{pdb: map[string]any{"enabled": true}, want: map[string]any{"maxUnavailable": float64(1)}},
			{pdb: map[string]any{"enabled": true, "maxUnavailable": "50%"}, want: map[string]any{"maxUnavailable": "50%"}},
			{pdb: map[string]any{"enabled": true, "minAvailable": 1}, want: map[string]any{"minAvailable": float64(1)}},
		} {
			objs := helmTemplate(t, chartNamespace, map[string]any{"replicaCount": 2, "podDisruptionBudget": tc.pdb})
			pdb := find(objs, "PodDisruptionBudget")
			spec, _, _ := unstructured.NestedMap(pdb.Object, "spec")
			selector, _, _ := unstructured.NestedStringMap(spec, "selector", "matchLabels")
			delete(spec, "selector")
			if !reflect.DeepEqual(spec, tc.want) {
				t.Errorf("values %v: spec %v, want %v", tc.pdb, spec, tc.want)
			}
			podLabels, _, _ := unstructured.NestedStringMap(find(objs, "Deployment").Object, "spec", "template", "metadata", "labels")
			if len(selector) == 0 || !labelsMatch(selector, podLabels) {
				t.Errorf("the PodDisruptionBudget selects %v, not the operator's pods (%v)", selector, podLabels)
			}
			apply(t, []*unstructured.Unstructured{pdb}, client.DryRunAll)
		}
	})

	t.Run("the dashboard ConfigMap carries the dashboard file byte for byte, with the sidecar's label", func(t *testing.T) {
		objs := helmTemplate(t, chartNamespace, map[string]any{"grafanaDashboard": map[string]any{
			"enabled": true, "namespace": "grafana", "annotations": map[string]any{"grafana_folder": "Sluice"},
		}})
		cm := find(objs, "ConfigMap")
		if cm.GetNamespace() != "grafana" || cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Sluice" {
			t.Errorf("ConfigMap %s/%s labels %v annotations %v", cm.GetNamespace(), cm.GetName(), cm.GetLabels(), cm.GetAnnotations())
		}
		if got, _, _ := unstructured.NestedString(cm.Object, "data", "sluice.json"); got != string(dashboard) {
			t.Errorf("the ConfigMap's sluice.json differs from the chart's dashboards/sluice.json (%d bytes, want %d)", len(got), len(dashboard))
		}
		cm.SetNamespace(chartNamespace)
		apply(t, []*unstructured.Unstructured{cm}, client.DryRunAll)
	})

	t.Run("the chart's and kustomize's dashboard files are identical", func(t *testing.T) {
		for _, path := range dashboardFiles()[1:] {
			other, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(other, dashboard) {
				t.Errorf("%s differs from %s: copy it over", path, dashboardFiles()[0])
			}
		}
	})

	t.Run("kustomize/monitoring renders a ServiceMonitor on the install's metrics Service and the same dashboard", func(t *testing.T) {
		objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize", "monitoring"))
		if err != nil {
			t.Fatal(err)
		}
		if got := kindsOf(objs); !reflect.DeepEqual(got, map[string]int{"ServiceMonitor": 1, "ConfigMap": 1}) {
			t.Fatalf("kinds %v, want a ServiceMonitor and a ConfigMap", got)
		}
		sm := find(objs, "ServiceMonitor")
		if endpoint := only(t, sm, "spec", "endpoints"); endpoint["port"] != "http-metrics" || endpoint["honorLabels"] != true {
			t.Errorf("endpoint %v", endpoint)
		}
		selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var scraped []string
		for _, svc := range manifests.Select(kustomizeBuild(t), "Service") {
			if labelsMatch(selector, svc.GetLabels()) && slices.Contains(servicePortNames(svc), "http-metrics") && svc.GetNamespace() == sm.GetNamespace() {
				scraped = append(scraped, svc.GetName())
			}
		}
		if !slices.Equal(scraped, []string{"sluice-metrics"}) {
			t.Errorf("the ServiceMonitor scrapes the Services %v, want sluice-metrics alone", scraped)
		}
		cm := find(objs, "ConfigMap")
		if got, _, _ := unstructured.NestedString(cm.Object, "data", "sluice.json"); got != string(dashboard) || cm.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s labels %v: its sluice.json is not the chart's dashboard", cm.GetName(), cm.GetLabels())
		}
		if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
		apply(t, []*unstructured.Unstructured{cm}, client.DryRunAll)
	})

	t.Run("kustomize/pdb renders a PodDisruptionBudget over the install's operator pods", func(t *testing.T) {
		objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize", "pdb"))
		if err != nil {
			t.Fatal(err)
		}
		if got := kindsOf(objs); !reflect.DeepEqual(got, map[string]int{"PodDisruptionBudget": 1}) {
			t.Fatalf("kinds %v, want one PodDisruptionBudget", got)
		}
		pdb := find(objs, "PodDisruptionBudget")
		selector, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
		podLabels, _, _ := unstructured.NestedStringMap(find(kustomizeBuild(t), "Deployment").Object, "spec", "template", "metadata", "labels")
		if len(selector) == 0 || !labelsMatch(selector, podLabels) {
			t.Errorf("the PodDisruptionBudget selects %v, not the operator's pods (%v)", selector, podLabels)
		}
		if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
		apply(t, objs, client.DryRunAll)
	})

	t.Run("the chart lints clean with every monitoring switch on", func(t *testing.T) {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = chartNamespace
		result := lint.Run([]string{chartPath()}, map[string]any{
			"serviceMonitor":      map[string]any{"enabled": true},
			"grafanaDashboard":    map[string]any{"enabled": true},
			"podDisruptionBudget": map[string]any{"enabled": true},
		})
		if len(result.Errors) > 0 {
			t.Fatalf("lint: %v", result.Errors)
		}
	})
}

// only is the single entry of the list at fields of obj, failing the test
// when there is not exactly one.
func only(t *testing.T, obj *unstructured.Unstructured, fields ...string) map[string]any {
	t.Helper()
	list, _, _ := unstructured.NestedSlice(obj.Object, fields...)
	if len(list) != 1 {
		t.Fatalf("%s %s has %d entries at %v, want 1", obj.GetKind(), obj.GetName(), len(list), fields)
	}
	return list[0].(map[string]any)
}

// labelsMatch says whether labels hold every pair of selector.
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func servicePortNames(svc *unstructured.Unstructured) []string {
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var names []string
	for _, p := range ports {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	return names
}

func containerPortNames(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatalf("Deployment %s has no containers", d.GetName())
	}
	ports, _ := containers[0].(map[string]any)["ports"].([]any)
	var names []string
	for _, p := range ports {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	return names
}
