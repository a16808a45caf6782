// Package build turns a source artifact into the objects a Kustomization
// applies, as Flux's kustomize-controller builds them: kustomize in
// memory over the artifact's files at spec.path (with a kustomization.yaml
// generated when the folder has none), the Kustomization's own
// targetNamespace, patches, images and components on top, and then the
// postBuild variable substitution. It reads no cluster and writes no disk.
package build

import (
	"fmt"
	iofs "io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Options are the build fields of a Kustomization.
type Options struct {
	// Path is the folder in the artifact, slash-separated; empty is the
	// root.
	Path string
	// TargetNamespace sets the namespace of every namespaced object.
	TargetNamespace string
	// Patches are strategic merge or JSON 6902 patches, each with an
	// optional target selector.
	Patches []types.Patch
	// Images override image names, tags and digests.
	Images []types.Image
	// Components are kustomize components, relative to Path.
	Components []string
	// Substitute holds the postBuild variables: ${name} and
	// ${name:=default} in the built objects are replaced.
	Substitute map[string]string
}

// SubstituteAnnotation set to SubstituteDisabled keeps an object out of
// the variable substitution, as in Flux.
const (
	SubstituteAnnotation = "kustomize.toolkit.fluxcd.io/substitute"
	SubstituteDisabled   = "disabled"
)

// The artifact is written under artifactDir, and the Kustomization's own
// fields are layered over the user's kustomization in overlayDir, beside
// it: kustomize refuses an overlay inside the tree it builds, which a
// spec.path of the artifact's root would make it.
const (
	artifactDir = "/artifact"
	overlayDir  = "/.sluice-overlay"
)

// Build runs the build over files (artifact paths to contents).
func Build(files map[string][]byte, opts Options) ([]*unstructured.Unstructured, error) {
	fs := filesys.MakeFsInMemory()
	for name, data := range files {
		p := path.Join(artifactDir, path.Clean("/"+name))
		if err := fs.MkdirAll(path.Dir(p)); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if err := fs.WriteFile(p, data); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	root := path.Join(artifactDir, path.Clean("/"+opts.Path))
	if !fs.IsDir(root) {
		return nil, fmt.Errorf("spec.path %q: no such folder in the artifact", opts.Path)
	}
	if err := generateKustomization(fs, root); err != nil {
		return nil, err
	}
	overlay := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: []string{".." + root},
		Namespace: opts.TargetNamespace,
		Patches:   opts.Patches,
		Images:    opts.Images,
	}
	for _, c := range opts.Components {
		overlay.Components = append(overlay.Components, path.Join("..", root, c))
	}
	data, err := yaml.Marshal(overlay)
	if err != nil {
		return nil, fmt.Errorf("write the overlay: %w", err)
	}
	if err := fs.MkdirAll(overlayDir); err != nil {
		return nil, err
	}
	if err := fs.WriteFile(path.Join(overlayDir, "kustomization.yaml"), data); err != nil {
		return nil, err
	}
	kopts := krusty.MakeDefaultOptions()
	resources, err := krusty.MakeKustomizer(kopts).Run(fs, overlayDir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build of %q: %s", opts.Path, strings.NewReplacer(overlayDir, "spec", artifactDir+"/", "/", artifactDir, "/").Replace(err.Error()))
	}
	var out []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		// Substitution works on the YAML kustomize wrote, which keeps
		// each scalar's style, so replicas: ${N} becomes a number.
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.CurId(), err)
		}
		if r.GetAnnotations()[SubstituteAnnotation] != SubstituteDisabled && len(opts.Substitute) > 0 {
			data = substitute(data, opts.Substitute)
		}
		// Through JSON, so that numbers come out as int64, as the API
		// machinery expects of unstructured objects.
		obj := &unstructured.Unstructured{}
		js, err := yaml.YAMLToJSON(data)
		if err == nil {
			err = obj.UnmarshalJSON(js)
		}
		if err != nil {
			return nil, fmt.Errorf("postBuild substitution made %s %s invalid: %w", r.GetKind(), r.GetName(), err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// generateKustomization writes a kustomization.yaml listing the manifests
// of a folder that has none, as Flux does for plain manifests.
func generateKustomization(fs filesys.FileSystem, root string) error {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if fs.Exists(path.Join(root, name)) {
			return nil
		}
	}
	var resources []string
	err := fs.Walk(root, func(p string, info iofs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		ext := path.Ext(p)
		if info.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		resources = append(resources, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list the manifests of %s: %w", root, err)
	}
	sort.Strings(resources)
	data, err := yaml.Marshal(types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: resources,
	})
	if err != nil {
		return err
	}
	return fs.WriteFile(path.Join(root, "kustomization.yaml"), data)
}

// variable is ${name}, ${name:=default} or ${name:-default}.
var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[=-]([^}]*))?\}`)

// substitute replaces the variables in a manifest. An unset variable
// with no default becomes empty, as in Flux's default mode.
func substitute(data []byte, vars map[string]string) []byte {
	return variable.ReplaceAllFunc(data, func(m []byte) []byte {
		parts := variable.FindSubmatch(m)
		if v, ok := vars[string(parts[1])]; ok {
			return []byte(v)
		}
		return parts[2]
	})
}
