// Package fluxapi reads Flux's own API: the CRDs and the spec documents that
// Flux's controllers ship in their Go modules, at the versions of one Flux
// release. The Flux conformance tests hold Sluice to them, so the list of
// Flux's fields and the examples applied come from Flux, not from a copy
// written here.
package fluxapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/controlplane"
)

// Release is the Flux release whose APIs Sluice follows. Its controllers'
// versions are those of flux2 v2.9.5's manifests/crds/kustomization.yaml.
// notification-controller v1.9.4 is not served by the module proxy; v1.9.3
// has the same Receiver API (notification-controller/api v1.9.4's
// receiver_types.go matches the CRD of v1.9.3).
const Release = "v2.9.5"

// controller is one of Flux's controllers: its module, the folder of its
// CRDs and of its spec documents, and the kinds Sluice serves from it.
type controller struct {
	module  string
	docs    string
	kinds   map[string]string // kind → its spec document
	version string
}

var controllers = []controller{
	{module: "github.com/fluxcd/source-controller@v1.9.5", docs: "docs/spec/v1", version: "v1", kinds: map[string]string{
		"GitRepository":  "gitrepositories.md",
		"HelmRepository": "helmrepositories.md",
		"HelmChart":      "helmcharts.md",
		"Bucket":         "buckets.md",
		"OCIRepository":  "ocirepositories.md",
	}},
	{module: "github.com/fluxcd/kustomize-controller@v1.9.5", docs: "docs/spec/v1", version: "v1", kinds: map[string]string{"Kustomization": "kustomizations.md"}},
	{module: "github.com/fluxcd/helm-controller@v1.6.4", docs: "docs/spec/v2", version: "v2", kinds: map[string]string{"HelmRelease": "helmreleases.md"}},
	{module: "github.com/fluxcd/notification-controller@v1.9.3", docs: "docs/spec/v1", version: "v1", kinds: map[string]string{"Receiver": "receivers.md"}},
}

// Kind is one of Flux's kinds at the version Sluice serves.
type Kind struct {
	Name    string
	Group   string // Flux's
	Version string
	// Schema is the version's openAPIV3Schema.
	Schema *apiextensionsv1.JSONSchemaProps
	// Doc is the path of the kind's spec document in the module cache.
	Doc string
	// CRD is the path of the kind's CRD file in the module cache.
	CRD string
}

// Kinds downloads Flux's controllers (once, into the Go module cache) and
// returns the kinds Sluice serves, sorted by name. They are read once per
// process; the caller gets its own slice.
func Kinds() ([]Kind, error) {
	kinds, err := readKinds()
	return slices.Clone(kinds), err
}

// readKinds reads the kinds once: a test binary asks in TestMain and in
// each test.
var readKinds = sync.OnceValues(func() ([]Kind, error) {
	var kinds []Kind
	for _, c := range controllers {
		dir, err := controlplane.DownloadModule(c.module)
		if err != nil {
			return nil, err
		}
		files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			crd, err := readCRD(f)
			if err != nil {
				return nil, err
			}
			doc, ok := c.kinds[crd.Spec.Names.Kind]
			if !ok {
				continue
			}
			schema := schemaOf(crd, c.version)
			if schema == nil {
				return nil, fmt.Errorf("%s: no version %s", f, c.version)
			}
			kinds = append(kinds, Kind{Name: crd.Spec.Names.Kind, Group: crd.Spec.Group, Version: c.version, Schema: schema, Doc: filepath.Join(dir, c.docs, doc), CRD: f})
		}
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Name < kinds[j].Name })
	want := 0
	for _, c := range controllers {
		want += len(c.kinds)
	}
	if len(kinds) != want {
		return nil, fmt.Errorf("found %d of Flux's kinds, want %d", len(kinds), want)
	}
	return kinds, nil
})

// CRDFiles are the CRD files of the kinds, to install Flux's own API
// beside Sluice's: what Flux's API server refuses is no manifest to hold
// Sluice to.
func CRDFiles() ([]string, error) {
	kinds, err := Kinds()
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(kinds))
	for _, k := range kinds {
		files = append(files, k.CRD)
	}
	return files, nil
}

// readCRD reads one CRD file.
func readCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		return nil, fmt.Errorf("read CRD %s: %w", path, err)
	}
	return crd, nil
}

// schemaOf is the openAPIV3Schema of one version of a CRD, or nil.
func schemaOf(crd *apiextensionsv1.CustomResourceDefinition, version string) *apiextensionsv1.JSONSchemaProps {
	for _, v := range crd.Spec.Versions {
		if v.Name == version && v.Schema != nil {
			return v.Schema.OpenAPIV3Schema
		}
	}
	return nil
}

// SluiceSchemas reads Sluice's CRDs from dir and returns the schema of
// each kind at the given version, keyed "Kind/version".
func SluiceSchemas(dir string) (map[string]*apiextensionsv1.JSONSchemaProps, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	schemas := map[string]*apiextensionsv1.JSONSchemaProps{}
	for _, f := range files {
		crd, err := readCRD(f)
		if err != nil {
			return nil, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema != nil {
				schemas[crd.Spec.Names.Kind+"/"+v.Name] = v.Schema.OpenAPIV3Schema
			}
		}
	}
	return schemas, nil
}

// Fields lists the field paths of a schema below spec and status, as
// `spec.chart.spec.sourceRef.kind`, with `[]` after a list of objects. A
// map, a free-form value and a list of scalars are one field each, and so
// are the status conditions, which are metav1.Condition everywhere.
func Fields(schema *apiextensionsv1.JSONSchemaProps) []string {
	var paths []string
	for _, top := range []string{"spec", "status"} {
		if s, ok := schema.Properties[top]; ok {
			walk(&s, top, &paths)
		}
	}
	sort.Strings(paths)
	return paths
}

func walk(s *apiextensionsv1.JSONSchemaProps, path string, paths *[]string) {
	switch {
	case path == "status.conditions":
		*paths = append(*paths, path)
	case len(s.Properties) > 0:
		for name, p := range s.Properties {
			walk(&p, path+"."+name, paths)
		}
	case s.Type == "array" && s.Items != nil && s.Items.Schema != nil && len(s.Items.Schema.Properties) > 0:
		walk(s.Items.Schema, path+"[]", paths)
	default:
		*paths = append(*paths, path)
	}
}

// Lookup finds the schema of a field path as Fields spells it.
func Lookup(schema *apiextensionsv1.JSONSchemaProps, path string) (*apiextensionsv1.JSONSchemaProps, bool) {
	s := schema
	for _, part := range strings.Split(path, ".") {
		list := strings.HasSuffix(part, "[]")
		p, ok := s.Properties[strings.TrimSuffix(part, "[]")]
		if !ok {
			return nil, false
		}
		s = &p
		if list {
			if s.Items == nil || s.Items.Schema == nil {
				return nil, false
			}
			s = s.Items.Schema
		}
	}
	return s, true
}

// Example is one manifest from a spec document.
type Example struct {
	// Where is the document and line of the YAML block.
	Where  string
	Object *unstructured.Unstructured
}

// Examples are the manifests of the kind's spec document that are whole
// objects of that kind: every fenced YAML block, split at `---`, whose
// apiVersion and kind are the kind's. Fragments are left out.
func (k Kind) Examples() ([]Example, error) {
	f, err := os.Open(k.Doc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []Example
		block   bytes.Buffer
		inBlock bool
		start   int
	)
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := scanner.Text()
		trimmed := strings.TrimSpace(text)
		switch {
		case !inBlock && strings.HasPrefix(trimmed, "```yaml"):
			inBlock, start = true, line
			block.Reset()
		case inBlock && trimmed == "```":
			inBlock = false
			objs, err := decodeAll(block.Bytes())
			if err != nil {
				// A block that is not YAML (a template, an excerpt with
				// ellipses) is prose, not a manifest.
				continue
			}
			for _, o := range objs {
				if o.GetKind() == k.Name && o.GetAPIVersion() == k.Group+"/"+k.Version {
					out = append(out, Example{Where: fmt.Sprintf("%s:%d", filepath.Base(k.Doc), start), Object: o})
				}
			}
		case inBlock:
			block.WriteString(text + "\n")
		}
	}
	return out, scanner.Err()
}

// decodeAll decodes a multi-document YAML stream.
func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// DecodeFile reads the objects of a YAML file.
func DecodeFile(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := decodeAll(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return objs, nil
}

// ToSluice changes an object's API group from Flux's to Sluice's, as
// syncv1.SluiceGroup maps them, and nothing else. It reports false for an
// object of no Flux group, which it leaves as it is.
func ToSluice(o *unstructured.Unstructured) bool {
	group, version, ok := strings.Cut(o.GetAPIVersion(), "/")
	if !ok {
		return false
	}
	to := syncv1.SluiceGroup(group)
	if to == group {
		return false
	}
	o.SetAPIVersion(to + "/" + version)
	return true
}

// Used lists the field paths an object sets below spec, spelt as Fields
// spells them: the walk follows the schema, so a map or a free-form value
// counts as one field however many keys it has. A field the schema does not
// know is listed as it is, so that a caller sees it.
func Used(schema *apiextensionsv1.JSONSchemaProps, obj map[string]any) []string {
	seen := map[string]bool{}
	var visit func(s *apiextensionsv1.JSONSchemaProps, v any, path string)
	visit = func(s *apiextensionsv1.JSONSchemaProps, v any, path string) {
		listOfObjects := s != nil && s.Type == "array" && s.Items != nil && s.Items.Schema != nil && len(s.Items.Schema.Properties) > 0
		if s == nil || len(s.Properties) == 0 && !listOfObjects {
			seen[path] = true
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				child, ok := s.Properties[k]
				if !ok {
					seen[path+"."+k] = true
					continue
				}
				visit(&child, c, path+"."+k)
			}
		case []any:
			for _, c := range t {
				visit(s.Items.Schema, c, path+"[]")
			}
		default:
			seen[path] = true
		}
	}
	if spec, ok := obj["spec"]; ok {
		s := schema.Properties["spec"]
		visit(&s, spec, "spec")
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
