package e2e_test

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func chartPath() string {
	return filepath.Join(controlplane.RepoRoot(), "charts", "sluice")
}

// helmTemplate renders the chart for the test API server's version, as a
// real install would discover it.
func helmTemplate(t *testing.T, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	server, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.HelmTemplate(chartPath(), "sluice", namespace, server.GitVersion, values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func apply(t *testing.T, objs []*unstructured.Unstructured, opts ...client.ApplyOption) {
	t.Helper()
	if err := manifests.Apply(t.Context(), cp.Client, objs, opts...); err != nil {
		t.Fatal(err)
	}
}

func kindsOf(objs []*unstructured.Unstructured) map[string]int {
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	return kinds
}

func find(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	if found := manifests.Select(objs, kind); len(found) > 0 {
		return found[0]
	}
	return nil
}
