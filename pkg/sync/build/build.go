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

	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
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
	// SubstituteAlways substitutes with no variables too, so that
	// ${name:=default} takes its default (substituteStrategy: Always).
	SubstituteAlways bool
	// IgnoreMissingComponents drops the Components the artifact lacks.
	IgnoreMissingComponents bool
	// BuildMetadata are kustomize's buildMetadata options, such as
	// originAnnotations.
	BuildMetadata []string
	// NamePrefix and NameSuffix are added to the objects' names, and
	// their references, by kustomize.
	NamePrefix, NameSuffix string
	// Labels and Annotations are set on every object's metadata, not on
	// selectors (commonMetadata).
	Labels, Annotations map[string]string
	// Decrypter, when set, decrypts the SOPS-encrypted files generators
	// and patches read, before kustomize runs, and the objects it built,
	// before the substitution (spec.decryption).
	Decrypter Decrypter
}

// Decrypter decrypts what a build reads and makes (pkg/sync/decrypt).
type Decrypter interface {
	// Files decrypts, in fs, the files the kustomization in dir and
	// those it refers to hand to generators and patches; root is the
	// artifact's folder, which no path leaves.
	Files(fs filesys.FileSystem, root, dir string) error
	// Resource decrypts a built object in place.
	Resource(res *resource.Resource) error
	// RedactError blanks out, in err's message, the values decrypted so
	// far, keeping what err wraps.
	RedactError(err error) error
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

// Build runs the build over files (artifact paths to contents). With a
// Decrypter, no decrypted value reaches its error's message.
func Build(files map[string][]byte, opts Options) ([]*unstructured.Unstructured, error) {
	objs, err := run(files, opts)
	if err != nil && opts.Decrypter != nil {
		// kustomize's messages may quote what it read, such as a line
		// of a decrypted env file.
		return nil, opts.Decrypter.RedactError(err)
	}
	return objs, err
}

func run(files map[string][]byte, opts Options) ([]*unstructured.Unstructured, error) {
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
	components := opts.Components
	if opts.IgnoreMissingComponents {
		components = nil
		for _, c := range opts.Components {
			if fs.Exists(path.Join(root, c)) {
				components = append(components, c)
			}
		}
	}
	// Generators read their files as kustomize runs, so those are
	// decrypted first, as Flux does on disk.
	if d := opts.Decrypter; d != nil {
		for _, dir := range append([]string{"."}, components...) {
			if err := d.Files(fs, artifactDir, path.Join(root, dir)); err != nil {
				return nil, err
			}
		}
	}
	overlay := types.Kustomization{
		TypeMeta:      types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources:     []string{".." + root},
		Namespace:     opts.TargetNamespace,
		Patches:       opts.Patches,
		Images:        opts.Images,
		NamePrefix:    opts.NamePrefix,
		NameSuffix:    opts.NameSuffix,
		BuildMetadata: opts.BuildMetadata,
	}
	for _, c := range components {
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
		// Decrypted before the substitution, as in Flux.
		if opts.Decrypter != nil {
			if err := opts.Decrypter.Resource(r); err != nil {
				return nil, err
			}
		}
		// Substitution works on the YAML kustomize wrote, which keeps
		// each scalar's style, so replicas: ${N} becomes a number.
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.CurId(), err)
		}
		if r.GetAnnotations()[SubstituteAnnotation] != SubstituteDisabled && (len(opts.Substitute) > 0 || opts.SubstituteAlways) {
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
		originFromPath(obj, root)
		out = append(out, obj)
	}
	// commonMetadata goes on each object's own metadata after the
	// substitution, as in Flux, and not through kustomize, whose
	// commonAnnotations reach pod templates and would roll workloads.
	ssautil.SetCommonMetadata(out, opts.Labels, opts.Annotations)
	return out, nil
}

// originAnnotation is where kustomize's originAnnotations build metadata
// says which file an object came from.
const originAnnotation = "config.kubernetes.io/origin"

// originFromPath makes an origin annotation's path relative to spec.path,
// as Flux's is: kustomize writes it relative to the overlay, which reaches
// the artifact through "..".
func originFromPath(obj *unstructured.Unstructured, root string) {
	ann := obj.GetAnnotations()
	origin, ok := ann[originAnnotation]
	if !ok {
		return
	}
	ann[originAnnotation] = strings.ReplaceAll(origin, "path: .."+root+"/", "path: ")
	obj.SetAnnotations(ann)
}

// hasKustomization tells whether dir holds a kustomization file.
func hasKustomization(fs filesys.FileSystem, dir string) bool {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if p := path.Join(dir, name); fs.Exists(p) && !fs.IsDir(p) {
			return true
		}
	}
	return false
}

// generateKustomization writes a kustomization.yaml listing the manifests
// of a folder that has none, as Flux does for plain manifests: a
// sub-folder with its own kustomization file is listed as one resource
// and not looked into, so that its kustomization, not its files, decides
// what it holds (flux bootstrap's flux-system folder is one).
func generateKustomization(fs filesys.FileSystem, root string) error {
	if hasKustomization(fs, root) {
		return nil
	}
	var resources []string
	err := fs.Walk(root, func(p string, info iofs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && p != root && hasKustomization(fs, p) {
			resources = append(resources, strings.TrimPrefix(strings.TrimPrefix(p, root), "/"))
			return iofs.SkipDir
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
