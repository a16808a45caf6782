package cli

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// The files bootstrap writes in <path>/<namespace>/, named as Flux's
// gotk-components.yaml, gotk-sync.yaml and kustomization.yaml are.
const (
	componentsFile    = "sluice-components.yaml"
	syncFile          = "sluice-sync.yaml"
	kustomizationFile = "kustomization.yaml"
)

// installNamespace is the namespace the install manifests (kustomize/)
// put the operator in, and bootstrap's default.
const installNamespace = "sluice-system"

// syncKustomizationInterval is the interval of the sync Kustomization,
// as in Flux's gotk-sync.yaml: the GitRepository's --interval decides how
// soon a commit is seen, and a new artifact triggers the Kustomization.
const syncKustomizationInterval = 10 * time.Minute

// bootstrapLayout is what bootstrap commits and applies: where the sync
// folder is, and the objects of its files.
type bootstrapLayout struct {
	// namespace holds the operator, the sync objects and the Secret; it
	// names them and the folder too, as flux-system does in Flux.
	namespace string
	// path is the cluster's folder in the repository, slash-separated,
	// "" for the root.
	path string
	// url, branch and interval are the GitRepository's.
	url, branch string
	interval    time.Duration
	// secretName is the Secret with the Git credentials; "" when the
	// repository needs none.
	secretName string
}

// dir is the sync folder: <path>/<namespace>.
func (l bootstrapLayout) dir() string {
	return path.Join(l.path, l.namespace)
}

// kustomizationPath is the sync Kustomization's spec.path, written
// ./<path> as flux bootstrap writes it.
func (l bootstrapLayout) kustomizationPath() string {
	return "./" + l.path
}

// components moves the install manifests to the layout's namespace: the
// Namespace object, every namespaced object and the ServiceAccount
// subjects of the role bindings, as kustomize's namespace field would.
// objs are changed in place.
func (l bootstrapLayout) components(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if l.namespace == installNamespace {
		return objs, nil
	}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Namespace" && o.GetName() == installNamespace:
			o.SetName(l.namespace)
		case o.GetNamespace() == installNamespace:
			o.SetNamespace(l.namespace)
		}
		if k := o.GetKind(); k != "RoleBinding" && k != "ClusterRoleBinding" {
			continue
		}
		subjects, _, err := unstructured.NestedSlice(o.Object, "subjects")
		if err != nil {
			return nil, fmt.Errorf("read the subjects of %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["namespace"] == installNamespace {
				m["namespace"] = l.namespace
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
			return nil, fmt.Errorf("set the subjects of %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return objs, nil
}

// syncObjects are the GitRepository that follows the branch and the
// Kustomization that applies the cluster's folder from it, pruning, as
// Flux's gotk-sync.yaml holds them.
func (l bootstrapLayout) syncObjects() ([]*unstructured.Unstructured, error) {
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: l.namespace, Namespace: l.namespace},
		Spec: sourcev1.GitRepositorySpec{
			URL:       l.url,
			Interval:  metav1.Duration{Duration: l.interval},
			Reference: &sourcev1.GitRepositoryRef{Branch: l.branch},
		},
	}
	if l.secretName != "" {
		repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: l.secretName}
	}
	ks := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: l.namespace, Namespace: l.namespace},
		Spec: syncv1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: syncKustomizationInterval},
			Path:      l.kustomizationPath(),
			Prune:     true,
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: l.namespace},
		},
	}
	var out []*unstructured.Unstructured
	for _, obj := range []client.Object{repo, ks} {
		doc, err := document(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: doc})
	}
	return out, nil
}

// files are the three files of the sync folder, by repository path.
func (l bootstrapLayout) files(version string, components, sync []*unstructured.Unstructured) (map[string][]byte, error) {
	comp, err := manifestFile("# Sluice version: "+version+"\n", components)
	if err != nil {
		return nil, err
	}
	syn, err := manifestFile("", sync)
	if err != nil {
		return nil, err
	}
	kus := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + componentsFile + "\n- " + syncFile + "\n"
	return map[string][]byte{
		path.Join(l.dir(), componentsFile):    comp,
		path.Join(l.dir(), syncFile):          syn,
		path.Join(l.dir(), kustomizationFile): []byte(kus),
	}, nil
}

// manifestFile is objs as a multi-document YAML stream under a header
// that says where it comes from. The output is stable: the same objects
// give the same bytes, so that an unchanged file makes no commit.
func manifestFile(header string, objs []*unstructured.Unstructured) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# This manifest was generated by sluicectl bootstrap. DO NOT EDIT.\n")
	b.WriteString(header)
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s as YAML: %w", o.GetKind(), o.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}

// cleanRepoPath checks --path: a relative folder of the repository that
// stays inside it. It returns the path slash-separated, without "./" or
// a trailing slash; "" is the root.
func cleanRepoPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	clean := path.Clean(strings.ReplaceAll(p, "\\", "/"))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("--path %q must be a folder inside the repository, relative to its root", p)
	}
	if clean == "." {
		return "", nil
	}
	if first, _, _ := strings.Cut(clean, "/"); first == ".git" {
		return "", fmt.Errorf("--path %q must not be in .git", p)
	}
	return clean, nil
}
