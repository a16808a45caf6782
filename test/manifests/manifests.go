// Package manifests renders Sluice's install manifests the ways users do
// (kustomize build, helm template) and applies objects with server-side
// apply, for the end-to-end tests and the demo.
package manifests

import (
	"context"
	"fmt"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// FieldOwner is the server-side apply field manager of these helpers.
const FieldOwner = "sluice-installer"

// KustomizeBuild renders a kustomization in memory, as `kustomize build`
// does.
func KustomizeBuild(dir string) ([]*unstructured.Unstructured, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		// Through JSON, so that numbers are the int64 and float64 that
		// unstructured objects hold.
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("decode %s: %w", r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// HelmTemplate renders a chart as `helm template --include-crds` does,
// through the Helm SDK, for a cluster of the given Kubernetes version.
func HelmTemplate(chartDir, release, namespace, kubeVersion string, values map[string]any) ([]*unstructured.Unstructured, error) {
	chart, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	cfg := action.NewConfiguration()
	cfg.Releases = storage.Init(driver.NewMemory())
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = release
	install.Namespace = namespace
	install.Replace = true
	install.IncludeCRDs = true
	if install.KubeVersion, err = common.ParseKubeVersion(kubeVersion); err != nil {
		return nil, fmt.Errorf("parse Kubernetes version %q: %w", kubeVersion, err)
	}
	released, err := install.Run(chart, values)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", chartDir, err)
	}
	rel, ok := released.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("render chart %s: unexpected release type %T", chartDir, released)
	}
	return SplitYAML(rel.Manifest)
}

// SplitYAML decodes a multi-document YAML stream.
func SplitYAML(manifest string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(manifest, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("parse manifest: %w\n%s", err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs, nil
}

// Apply sends objects to the API server with server-side apply, Namespaces
// and CRDs first, as an installer would.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts ...client.ApplyOption) error {
	opts = append([]client.ApplyOption{client.FieldOwner(FieldOwner), client.ForceOwnership}, opts...)
	for _, first := range []bool{true, false} {
		for _, obj := range objs {
			kind := obj.GetKind()
			if (kind == "Namespace" || kind == "CustomResourceDefinition") != first {
				continue
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), opts...); err != nil {
				return fmt.Errorf("apply %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
			}
		}
	}
	return nil
}

// Select returns the objects of the given kinds.
func Select(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		for _, k := range kinds {
			if o.GetKind() == k {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// OperatorRBAC is the RBAC an installation grants the operator, with its
// namespace: what the demo and the tests apply before running the operator
// as its ServiceAccount.
func OperatorRBAC(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	return Select(objs, "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
}

// ServiceAccountUser is the user name and groups the API server gives the
// operator's ServiceAccount, for controlplane.KubeconfigFor.
func ServiceAccountUser(namespace, name string) (string, []string) {
	return "system:serviceaccount:" + namespace + ":" + name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}
