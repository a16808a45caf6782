package monitoring

import (
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// operatorNamespace is where the tests install Sluice's manifests.
const operatorNamespace = "sluice-system"

// chartMonitor renders the chart in operatorNamespace with values and
// returns its object of kind.
func chartMonitor(t *testing.T, values map[string]any, kind string) *unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.HelmTemplate(filepath.Join(controlplane.RepoRoot(), "charts", "sluice"), "sluice", operatorNamespace,
		"v"+controlplane.KubernetesVersion, values)
	if err != nil {
		t.Fatal(err)
	}
	found := manifests.Select(objs, kind)
	if len(found) != 1 {
		t.Fatalf("values %v render %d %ss, want 1", values, len(found), kind)
	}
	return found[0]
}

func TestTheMonitorsPassThePrometheusOperatorsSchema(t *testing.T) {
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	kustomized, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize", "monitoring"))
	if err != nil {
		t.Fatal(err)
	}
	relabelings := []any{map[string]any{"action": "replace", "targetLabel": "cluster", "replacement": "prod"}}
	knobs := map[string]any{
		"enabled": true, "interval": "15s", "scrapeTimeout": "10s", "labels": map[string]any{"release": "kube-prometheus-stack"},
		"relabelings": relabelings, "metricRelabelings": []any{map[string]any{"action": "drop", "sourceLabels": []any{"__name__"}, "regex": "go_gc_.*"}},
	}
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
	}{
		{name: "the chart's default ServiceMonitor", obj: chartMonitor(t, map[string]any{"serviceMonitor": map[string]any{"enabled": true}}, "ServiceMonitor")},
		{name: "the chart's ServiceMonitor with every knob set", obj: chartMonitor(t, map[string]any{"serviceMonitor": knobs}, "ServiceMonitor")},
		{name: "the chart's default PodMonitor", obj: chartMonitor(t, map[string]any{"podMonitor": map[string]any{"enabled": true}}, "PodMonitor")},
		{name: "the chart's PodMonitor with every knob set", obj: chartMonitor(t, map[string]any{"podMonitor": knobs}, "PodMonitor")},
		{name: "kustomize/monitoring's ServiceMonitor", obj: manifests.Select(kustomized, "ServiceMonitor")[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A dry-run create with strict field validation: the CRD's
			// schema judges every field, and refuses one it does not know
			// rather than dropping it.
			if err := cp.Client.Create(t.Context(), tc.obj.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("%s %s: %v", tc.obj.GetKind(), tc.obj.GetName(), err)
			}
		})
	}

	t.Run("a misspelt field is refused, so the check above has teeth", func(t *testing.T) {
		obj := chartMonitor(t, map[string]any{"serviceMonitor": map[string]any{"enabled": true}}, "ServiceMonitor")
		endpoints, _, _ := unstructured.NestedSlice(obj.Object, "spec", "endpoints")
		endpoints[0].(map[string]any)["honourLabels"] = true
		if err := unstructured.SetNestedSlice(obj.Object, endpoints, "spec", "endpoints"); err != nil {
			t.Fatal(err)
		}
		if err := cp.Client.Create(t.Context(), obj, client.DryRunAll, client.FieldValidation("Strict")); err == nil {
			t.Fatal("a ServiceMonitor with honourLabels passed")
		}
	})
}
