package cli_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/kustomize"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

func TestInstall(t *testing.T) {
	t.Run("--export prints the namespace, the 17 CRDs, the RBAC and the operator", func(t *testing.T) {
		r := run(t, "install", "--export").mustSucceed(t)
		objs, err := manifests.SplitYAML(r.out)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
		}
		want := map[string]int{"Namespace": 1, "CustomResourceDefinition": 17, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 2}
		for kind, n := range want {
			if kinds[kind] != n {
				t.Errorf("got %d %s, want %d; all: %v", kinds[kind], kind, n, kinds)
			}
		}
		deploy := manifests.Select(objs, "Deployment")[0]
		if deploy.GetNamespace() != "sluice-system" || deploy.GetLabels()["app.kubernetes.io/part-of"] != "sluice" {
			t.Errorf("the operator Deployment is %s/%s with labels %v, want the kustomization's namespace and labels", deploy.GetNamespace(), deploy.GetName(), deploy.GetLabels())
		}
	})

	t.Run("the export is what kustomize builds from the folder", func(t *testing.T) {
		r := run(t, "install", "--export").mustSucceed(t)
		exported, err := manifests.SplitYAML(r.out)
		if err != nil {
			t.Fatal(err)
		}
		built, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
		if err != nil {
			t.Fatal(err)
		}
		names := func(objs []*unstructured.Unstructured) []string {
			var out []string
			for _, o := range objs {
				out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
			}
			return out
		}
		if got, want := names(exported), names(built); !slices.Equal(got, want) {
			t.Errorf("got objects %q, want %q", got, want)
		}
	})

	t.Run("install applies the CRDs, which are Established, and again changes nothing", func(t *testing.T) {
		r := run(t, "install").mustSucceed(t)
		if !strings.Contains(r.out, "CustomResourceDefinition/canaries.sluice.dev ") || !strings.Contains(r.out, "Deployment/sluice-system/sluice created\n") {
			t.Errorf("the output does not list the CRDs and the created operator:\n%s", r.out)
		}
		var crds apiextensionsv1.CustomResourceDefinitionList
		if err := cp.Client.List(t.Context(), &crds); err != nil {
			t.Fatal(err)
		}
		var sluice int
		for _, crd := range crds.Items {
			if !strings.HasSuffix(crd.Spec.Group, "sluice.dev") {
				continue
			}
			sluice++
			if !crdEstablished(&crd) {
				t.Errorf("CRD %s is not Established: %+v", crd.Name, crd.Status.Conditions)
			}
			if crd.Labels["app.kubernetes.io/part-of"] != "sluice" {
				t.Errorf("CRD %s has labels %v, want the install's", crd.Name, crd.Labels)
			}
		}
		if sluice != 17 {
			t.Errorf("got %d Sluice CRDs, want 17", sluice)
		}
		deploy := &appsv1.Deployment{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "sluice-system", Name: "sluice"}, deploy); err != nil {
			t.Fatal(err)
		}
		if deploy.ManagedFields[0].Manager != cli.FieldManager {
			t.Errorf("the Deployment is managed by %s, want %s", deploy.ManagedFields[0].Manager, cli.FieldManager)
		}

		r = run(t, "install").mustSucceed(t)
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		for _, line := range lines {
			if !strings.HasSuffix(line, " unchanged") {
				t.Errorf("the second install changed %q", line)
			}
		}
		objs, err := kustomize.Build()
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != len(objs) {
			t.Errorf("the second install listed %d objects, want %d:\n%s", len(lines), len(objs), r.out)
		}
	})
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
