// Package kustomize holds Sluice's install manifests: the kustomization
// that `kubectl apply -k kustomize/` applies, embedded so that `sluicectl
// install` renders the same objects without a checkout.
package kustomize

import (
	"embed"
	"fmt"
	iofs "io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// manifests are the kustomization and every file it lists. The patterns
// name the folders' YAML files only, so that this Go file stays out.
//
//go:embed kustomization.yaml namespace.yaml crds/*.yaml rbac/*.yaml manager/*.yaml
var manifests embed.FS

// Build renders the manifests as `kustomize build kustomize/` does, in
// memory.
func Build() ([]*unstructured.Unstructured, error) {
	fs := filesys.MakeFsInMemory()
	err := iofs.WalkDir(manifests, ".", func(name string, d iofs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := manifests.ReadFile(name)
		if err != nil {
			return err
		}
		return fs.WriteFile("/"+name, data)
	})
	if err != nil {
		return nil, fmt.Errorf("copy the embedded manifests: %w", err)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/")
	if err != nil {
		return nil, fmt.Errorf("kustomize build of the embedded manifests: %w", err)
	}
	objs := make([]*unstructured.Unstructured, 0, resources.Size())
	for _, r := range resources.Resources() {
		// Through JSON, so that numbers are the int64 and float64 that
		// unstructured objects hold.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("decode %s: %w", r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
