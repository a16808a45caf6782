package decrypt

import (
	"path"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// maxFileSize bounds a file to decrypt, as Flux's 5 MiB does.
const maxFileSize = 5 << 20

// Files decrypts in place, in fs, the sops files that the kustomization in
// dir hands to its secretGenerators, configMapGenerators and patches, and
// does the same for the kustomizations of the folders its resources and
// components name. Files that are not sops files are left as they are.
//
// Paths are kept under root, the artifact's folder in fs, and are named
// relative to it: what lies outside is left alone, for kustomize to
// refuse.
func (d *Decryptor) Files(fs filesys.FileSystem, root, dir string) error {
	return d.folder(fs, path.Clean(root), path.Clean(dir), map[string]bool{})
}

func (d *Decryptor) folder(fs filesys.FileSystem, root, dir string, seen map[string]bool) error {
	if seen[dir] || !within(root, dir) || !fs.IsDir(dir) {
		return nil
	}
	seen[dir] = true
	kus := readKustomization(fs, dir)
	if kus == nil {
		return nil
	}
	var generators []types.GeneratorArgs
	for _, g := range kus.SecretGenerator {
		generators = append(generators, g.GeneratorArgs)
	}
	for _, g := range kus.ConfigMapGenerator {
		generators = append(generators, g.GeneratorArgs)
	}
	for _, g := range generators {
		for _, src := range g.FileSources {
			// [key=]path; the key's name decides the format, as in Flux.
			key, file, ok := strings.Cut(src, "=")
			if !ok {
				file = key
			}
			if err := d.file(fs, root, path.Join(dir, file), formatOf(key)); err != nil {
				return err
			}
		}
		for _, env := range g.EnvSources {
			f := formatOf(env)
			if f == formats.Binary {
				// An env file of any name is read as dotenv.
				f = formats.Dotenv
			}
			if err := d.file(fs, root, path.Join(dir, env), f); err != nil {
				return err
			}
		}
	}
	// As in Flux, the patches of the deprecated patchesStrategicMerge and
	// patchesJson6902 fields are not decrypted.
	for _, p := range kus.Patches {
		if p.Path == "" {
			continue
		}
		if err := d.file(fs, root, path.Join(dir, p.Path), formatOf(p.Path)); err != nil {
			return err
		}
	}
	for _, r := range append(kus.Resources, kus.Components...) {
		if path.IsAbs(r) {
			continue
		}
		if err := d.folder(fs, root, path.Join(dir, r), seen); err != nil {
			return err
		}
	}
	return nil
}

// readKustomization reads the kustomization file of dir, or nil when it
// has none or kustomize could not read it either (kustomize then says
// why).
func readKustomization(fs filesys.FileSystem, dir string) *types.Kustomization {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := path.Join(dir, name)
		if !fs.Exists(p) || fs.IsDir(p) {
			continue
		}
		data, err := fs.ReadFile(p)
		if err != nil {
			return nil
		}
		kus := &types.Kustomization{}
		if err := yaml.Unmarshal(data, kus); err != nil {
			return nil
		}
		// Folds the deprecated fields (env, bases) into the current ones.
		kus.FixKustomization()
		return kus
	}
	return nil
}

// file decrypts the sops file at p in place.
func (d *Decryptor) file(fs filesys.FileSystem, root, p string, f formats.Format) error {
	p = path.Clean(p)
	if !within(root, p) || !fs.Exists(p) || fs.IsDir(p) {
		return nil
	}
	data, err := fs.ReadFile(p)
	if err != nil {
		return failed("decrypt %s: %w", rel(root, p), err)
	}
	if !encrypted(data, f) {
		return nil
	}
	if len(data) > maxFileSize {
		return failed("decrypt %s: %d bytes, over the limit of %d", rel(root, p), len(data), maxFileSize)
	}
	plain, err := d.decrypt(data, f, f)
	if err != nil {
		return failed("decrypt %s: %w", rel(root, p), err)
	}
	if err := fs.WriteFile(p, plain); err != nil {
		return failed("decrypt %s: write it back: %w", rel(root, p), err)
	}
	return nil
}

// within says whether p is root or under it.
func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// rel is p as a path of the artifact.
func rel(root, p string) string {
	if r := strings.TrimPrefix(p, root+"/"); r != p {
		return r
	}
	return p
}
