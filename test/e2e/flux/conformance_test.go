package flux

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/fluxapi"
)

// tablePath is the field table, relative to the repository's root.
const tablePath = "docs/flux-fields.md"

// refusedAnnotation names, on a manifest of test/fixtures/flux/refused,
// the field the API server must name when it refuses the manifest.
const refusedAnnotation = "test.sluice.dev/refused-field"

// fixture is the folder of manifests written in Flux's groups.
func fixture(name string) string {
	return filepath.Join(controlplane.RepoRoot(), "test", "fixtures", "flux", name)
}

// flux is what the tests share: Flux's kinds, Sluice's schemas and the table.
type flux struct {
	kinds  []fluxapi.Kind
	sluice map[string]*apiextensionsv1.JSONSchemaProps
	rows   map[string][]row // by kind
}

func load(t *testing.T) *flux {
	t.Helper()
	kinds, err := fluxapi.Kinds()
	if err != nil {
		t.Fatalf("read Flux's APIs: %v", err)
	}
	schemas, err := fluxapi.SluiceSchemas(controlplane.SluiceCRDs())
	if err != nil {
		t.Fatalf("read Sluice's CRDs: %v", err)
	}
	rows, err := readTable(filepath.Join(controlplane.RepoRoot(), tablePath))
	if p := os.Getenv("SLUICE_FLUX_TABLE"); p != "" {
		// A draft of the table, while it is written.
		rows, err = readTable(p)
	}
	if err != nil {
		t.Fatalf("read the field table: %v", err)
	}
	f := &flux{kinds: kinds, sluice: map[string]*apiextensionsv1.JSONSchemaProps{}, rows: map[string][]row{}}
	for _, k := range kinds {
		s, ok := schemas[k.Name+"/"+k.Version]
		if !ok {
			t.Fatalf("Sluice serves no %s %s", k.Name, k.Version)
		}
		f.sluice[k.Name] = s
	}
	for _, r := range rows {
		f.rows[r.kind] = append(f.rows[r.kind], r)
	}
	return f
}

// TestTheFieldTableNamesEveryFieldOfFluxsAPIsOnce reads Flux's CRDs and
// checks that the table has one row for each of their fields, and no row
// for a field Flux does not have; that a row's support is one of the
// five, with a reason where the field does nothing, is refused or is not
// written; that what the table calls supported is in Sluice's CRDs; and
// that every test a row names exists.
func TestTheFieldTableNamesEveryFieldOfFluxsAPIsOnce(t *testing.T) {
	f := load(t)
	tests := testNames(t)
	total := map[string]int{}
	for _, k := range f.kinds {
		want := fluxapi.Fields(k.Schema)
		got := map[string]row{}
		for _, r := range f.rows[k.Name] {
			if _, dup := got[r.path]; dup {
				t.Errorf("%s:%d: %s %s has two rows", tablePath, r.line, k.Name, r.path)
			}
			got[r.path] = r
		}
		for _, p := range want {
			if _, ok := got[p]; !ok {
				t.Errorf("%s has no row for %s %s", tablePath, k.Name, p)
			}
		}
		for _, r := range f.rows[k.Name] {
			if !slices.Contains(want, r.path) {
				t.Errorf("%s:%d: Flux's %s has no field %s", tablePath, r.line, k.Name, r.path)
				continue
			}
			total[r.support]++
			status := strings.HasPrefix(r.path, "status.")
			switch {
			case !status && !slices.Contains([]string{Supported, NoEffect, Refused}, r.support),
				status && !slices.Contains([]string{Written, NotWritten}, r.support):
				t.Errorf("%s:%d: %s %s: support %q is not one of supported, no effect, refused (spec) or written, not written (status)", tablePath, r.line, k.Name, r.path, r.support)
				continue
			}
			if slices.Contains([]string{NoEffect, Refused, NotWritten}, r.support) && r.notes == "" {
				t.Errorf("%s:%d: %s %s is %q without a reason", tablePath, r.line, k.Name, r.path, r.support)
			}
			if r.support != NotWritten {
				if _, ok := fluxapi.Lookup(f.sluice[k.Name], r.path); !ok {
					t.Errorf("%s:%d: %s %s is %q, but Sluice's CRD has no such field", tablePath, r.line, k.Name, r.path, r.support)
				}
				if fluxField, ok := fluxapi.Lookup(k.Schema, r.path); ok && r.support == Supported {
					checkEnum(t, k.Name, r, fluxField, f.sluice[k.Name])
				}
				if len(r.tests) == 0 {
					t.Errorf("%s:%d: %s %s is %q and names no test", tablePath, r.line, k.Name, r.path, r.support)
				}
			}
			for _, name := range r.tests {
				if !tests[name] {
					t.Errorf("%s:%d: %s %s names %s, which is no test in the repository", tablePath, r.line, k.Name, r.path, name)
				}
			}
		}
	}
	t.Logf("Flux %s: %v", fluxapi.Release, total)
}

// checkEnum fails a supported field whose Flux enum has a value Sluice's
// lacks, unless the row's notes name the value, saying why.
func checkEnum(t *testing.T, kind string, r row, fluxField, sluiceSchema *apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	sluiceField, ok := fluxapi.Lookup(sluiceSchema, r.path)
	if !ok || len(fluxField.Enum) == 0 || len(sluiceField.Enum) == 0 {
		return
	}
	have := map[string]bool{}
	for _, v := range sluiceField.Enum {
		have[string(v.Raw)] = true
	}
	for _, v := range fluxField.Enum {
		value := strings.Trim(string(v.Raw), `"`)
		if !have[string(v.Raw)] && !strings.Contains(r.notes, "`"+value+"`") {
			t.Errorf("%s:%d: %s %s: Flux allows %s, Sluice does not, and the notes do not say why", tablePath, r.line, kind, r.path, value)
		}
	}
}

// TestFluxsDocumentedExamplesAreAcceptedWithOnlyTheGroupChanged applies,
// as a server-side dry run with strict field validation, every manifest of
// the kinds' spec documents in Flux's own modules, with only the API group
// changed. Each is accepted, unless it uses a field the table says is
// refused, and then the refusal names that field.
func TestFluxsDocumentedExamplesAreAcceptedWithOnlyTheGroupChanged(t *testing.T) {
	f := load(t)
	ctx := context.Background()
	accepted, refused, fragments := 0, 0, 0
	for _, k := range f.kinds {
		examples := fluxExamples(t)[k.Name]
		if len(examples) == 0 {
			t.Errorf("%s has no example of %s", k.Doc, k.Name)
		}
		for _, ex := range examples {
			// A spec of only "# ...omitted for brevity" is a fragment,
			// though Flux's CRDs, which do not require a spec, take it.
			if spec, _, _ := unstructured.NestedMap(ex.Object.Object, "spec"); len(spec) == 0 || !ex.fluxAccepts {
				fragments++
				continue
			}
			used := fluxapi.Used(k.Schema, ex.Object.Object)
			want := append(f.refusedIn(k.Name, used), f.refusedValuesIn(k.Name, ex.Object.Object)...)
			err := f.dryRun(ctx, t, ex.Object)
			switch {
			case err == nil && len(want) == 0:
				accepted++
			case err == nil:
				t.Errorf("%s (%s %s): accepted, but it uses %v, which the table says are refused", ex.Where, k.Name, ex.Object.GetName(), want)
			case len(want) == 0:
				t.Errorf("%s (%s %s): refused: %v", ex.Where, k.Name, ex.Object.GetName(), err)
			case !namesOneOf(err, want):
				t.Errorf("%s (%s %s): refused without naming %v: %v", ex.Where, k.Name, ex.Object.GetName(), want, err)
			default:
				refused++
			}
		}
	}
	t.Logf("Flux %s's documented examples: %d accepted, %d refused for a field the table refuses; %d fragments that Flux's own CRDs refuse too", fluxapi.Release, accepted, refused, fragments)
	if accepted < 40 {
		t.Errorf("only %d examples were whole manifests: the documents or their parsing changed", accepted)
	}
}

// TestManifestsUsingEverySupportedFieldAreAcceptedWithOnlyTheGroupChanged
// applies the manifests of test/fixtures/flux/conformance, written in
// Flux's groups, with only the group changed and strict validation. Between
// them and Flux's examples, they set every field the table supports or
// accepts; nothing is refused and nothing is dropped.
func TestManifestsUsingEverySupportedFieldAreAcceptedWithOnlyTheGroupChanged(t *testing.T) {
	f := load(t)
	ctx := context.Background()
	used := map[string]map[string]bool{}
	mark := func(kind string, paths []string) {
		if used[kind] == nil {
			used[kind] = map[string]bool{}
		}
		for _, p := range paths {
			used[kind][p] = true
		}
	}
	for _, k := range f.kinds {
		for _, ex := range fluxExamples(t)[k.Name] {
			if !ex.fluxAccepts {
				continue
			}
			if paths := fluxapi.Used(k.Schema, ex.Object.Object); len(f.refusedIn(k.Name, paths)) == 0 {
				mark(k.Name, paths)
			}
		}
	}
	for _, obj := range f.manifests(t, "conformance") {
		k := f.kind(obj.GetKind())
		paths := fluxapi.Used(k.Schema, obj.Object)
		name := obj.GetKind() + " " + obj.GetName()
		for _, p := range paths {
			if _, ok := fluxapi.Lookup(k.Schema, p); !ok {
				t.Errorf("%s sets %s, which Flux's %s does not have", name, p, k.Name)
			}
		}
		if err := f.apply(ctx, t, obj); err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		mark(k.Name, paths)
		// Strict validation refuses an unknown field; this also catches a
		// field the API server would keep quiet about, such as one a
		// CEL transition rule clears.
		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(obj.GroupVersionKind())
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), stored); err != nil {
			t.Fatalf("read back %s: %v", name, err)
		}
		for _, p := range paths {
			if !slices.Contains(fluxapi.Used(k.Schema, stored.Object), p) {
				t.Errorf("%s: %s was dropped", name, p)
			}
		}
	}
	for _, k := range f.kinds {
		for _, r := range f.rows[k.Name] {
			if (r.support == Supported || r.support == NoEffect) && strings.HasPrefix(r.path, "spec.") && !used[k.Name][r.path] {
				t.Errorf("%s %s is %q, but no manifest sets it", k.Name, r.path, r.support)
			}
		}
	}
}

// TestFieldsTheTableRefusesAreRefusedByName applies the manifests of
// test/fixtures/flux/refused. Each is refused, naming the field in its
// test.sluice.dev/refused-field annotation (a refused value of a
// supported field, too), and between them they use every field the table
// refuses.
func TestFieldsTheTableRefusesAreRefusedByName(t *testing.T) {
	f := load(t)
	ctx := context.Background()
	covered := map[string]bool{}
	for _, obj := range f.manifests(t, "refused") {
		name := obj.GetKind() + " " + obj.GetName()
		field := obj.GetAnnotations()[refusedAnnotation]
		if field == "" {
			t.Errorf("%s has no %s annotation", name, refusedAnnotation)
			continue
		}
		err := f.dryRun(ctx, t, obj)
		switch {
		case err == nil:
			t.Errorf("%s: accepted, want %s refused", name, field)
		case !names(err, field):
			t.Errorf("%s: refused without naming %s: %v", name, field, err)
		}
		for _, p := range f.refusedIn(obj.GetKind(), fluxapi.Used(f.kind(obj.GetKind()).Schema, obj.Object)) {
			covered[obj.GetKind()+" "+p] = true
		}
	}
	for _, k := range f.kinds {
		for _, r := range f.rows[k.Name] {
			if r.support == Refused && !covered[k.Name+" "+r.path] {
				t.Errorf("%s %s is refused, but no manifest in %s shows it", k.Name, r.path, fixture("refused"))
			}
		}
	}
}

// refusedValue matches a row's notes that list values refused by a
// field that is itself supported: "Refused values: `gcp`, `azure`.", or
// only when another field is not set: "Refused values without
// `spec.secretRef`: `aws`."
var refusedValue = regexp.MustCompile("Refused values?(?: without `([^`]+)`)?: ((?:`[^`]+`(?:, | and | or )?)+)")

// refusedValuesIn lists the supported fields of kind whose value in obj
// the table's notes say is refused.
func (f *flux) refusedValuesIn(kind string, obj map[string]any) []string {
	var out []string
	for _, r := range f.rows[kind] {
		if strings.Contains(r.path, "[]") {
			continue
		}
		v, found, _ := unstructured.NestedFieldNoCopy(obj, strings.Split(r.path, ".")...)
		if !found {
			continue
		}
		for _, m := range refusedValue.FindAllStringSubmatch(r.notes, -1) {
			if m[1] != "" {
				if _, set, _ := unstructured.NestedFieldNoCopy(obj, strings.Split(m[1], ".")...); set {
					continue
				}
			}
			if strings.Contains(m[2], fmt.Sprintf("`%v`", v)) {
				out = append(out, r.path)
				break
			}
		}
	}
	return out
}

// refusedIn lists the paths of used that the table refuses.
func (f *flux) refusedIn(kind string, used []string) []string {
	var out []string
	for _, r := range f.rows[kind] {
		if r.support == Refused && slices.ContainsFunc(used, func(p string) bool { return p == r.path || strings.HasPrefix(p, r.path+".") }) {
			out = append(out, r.path)
		}
	}
	return out
}

func (f *flux) kind(name string) fluxapi.Kind {
	for _, k := range f.kinds {
		if k.Name == name {
			return k
		}
	}
	return fluxapi.Kind{}
}

// manifests reads the objects of one fixture folder, in Flux's groups,
// and changes their group.
func (f *flux) manifests(t *testing.T, folder string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixture(folder), "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", fixture(folder), err)
	}
	var out []*unstructured.Unstructured
	for _, file := range files {
		objs, err := fluxapi.DecodeFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if f.kind(o.GetKind()).Name == "" {
				t.Fatalf("%s: %s is not one of Flux's kinds that Sluice serves", file, o.GetKind())
			}
			if !fluxapi.ToSluice(o.DeepCopy()) {
				t.Fatalf("%s: %s %s is not in a Flux group: %s", file, o.GetKind(), o.GetName(), o.GetAPIVersion())
			}
			out = append(out, o)
		}
	}
	return out
}

// dryRun creates a copy of obj, in Sluice's group, as a server-side dry run.
func (f *flux) dryRun(ctx context.Context, t *testing.T, obj *unstructured.Unstructured) error {
	o := f.prepare(ctx, t, obj)
	return cp.Client.Create(ctx, o, client.DryRunAll)
}

// example is one manifest of Flux's spec documents, without its status,
// which is the controller's, not the user's.
type example struct {
	fluxapi.Example
	// fluxAccepts is set when Flux's own CRDs take it, as a server-side
	// dry run: one they refuse, such as a fragment of a document, holds
	// Sluice to nothing.
	fluxAccepts bool
}

// fluxExamples are the examples of each kind, read and put to Flux's CRDs
// once for the tests that use them. A test must not change them.
var fluxExamples = func() func(t *testing.T) map[string][]example {
	var (
		once   sync.Once
		byKind map[string][]example
		err    error
	)
	return func(t *testing.T) map[string][]example {
		t.Helper()
		once.Do(func() { byKind, err = readExamples(context.Background()) })
		if err != nil {
			t.Fatal(err)
		}
		return byKind
	}
}()

func readExamples(ctx context.Context) (map[string][]example, error) {
	kinds, err := fluxapi.Kinds()
	if err != nil {
		return nil, fmt.Errorf("read Flux's APIs: %w", err)
	}
	out := map[string][]example{}
	for _, k := range kinds {
		examples, err := k.Examples()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k.Doc, err)
		}
		for _, ex := range examples {
			unstructured.RemoveNestedField(ex.Object.Object, "status")
			accepted, err := dryRunAsFlux(ctx, ex.Object)
			if err != nil {
				return nil, err
			}
			out[k.Name] = append(out[k.Name], example{Example: ex, fluxAccepts: accepted})
		}
	}
	return out, nil
}

// dryRunAsFlux creates obj, in Flux's group, as a server-side dry run
// against Flux's own CRDs, and tells whether they take it.
func dryRunAsFlux(ctx context.Context, obj *unstructured.Unstructured) (bool, error) {
	o := obj.DeepCopy()
	if o.GetNamespace() == "" {
		o.SetNamespace("default")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetNamespace()}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return cp.Client.Create(ctx, o, client.DryRunAll) == nil, nil
}

// apply server-side applies a copy of obj, in Sluice's group.
func (f *flux) apply(ctx context.Context, t *testing.T, obj *unstructured.Unstructured) error {
	o := f.prepare(ctx, t, obj)
	//nolint:staticcheck // client.Apply with an unstructured object is the server-side apply we want; the typed ApplyConfiguration form needs generated types.
	err := cp.Client.Patch(ctx, o, client.Apply, client.FieldOwner("flux-conformance"), client.ForceOwnership)
	if err == nil {
		obj.SetAPIVersion(o.GetAPIVersion())
		obj.SetNamespace(o.GetNamespace())
	}
	return err
}

// prepare copies obj into Sluice's group and into a namespace that exists.
func (f *flux) prepare(ctx context.Context, t *testing.T, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	o := obj.DeepCopy()
	if !fluxapi.ToSluice(o) {
		t.Fatalf("%s %s: %s is not a Flux group", o.GetKind(), o.GetName(), o.GetAPIVersion())
	}
	if o.GetNamespace() == "" {
		o.SetNamespace("default")
	}
	ensureNamespace(ctx, t, o.GetNamespace())
	return o
}

// ensureNamespace creates a namespace unless it exists.
func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// namesOneOf reports whether an API error names one of the fields; the
// API server spells a list item with its index, as spec.include[0].toPath.
func namesOneOf(err error, fields []string) bool {
	return slices.ContainsFunc(fields, func(p string) bool { return names(err, p) })
}

// names reports whether an API error names the field, or the object
// that holds it below spec: a rule on spec.verify refuses
// spec.verify.provider too.
func names(err error, field string) bool {
	parts := strings.Split(field, ".")
	for n := len(parts); n >= 2; n-- {
		pattern := strings.ReplaceAll(regexp.QuoteMeta(strings.Join(parts[:n], ".")), `\[\]`, `(\[\d+\])?`)
		if regexp.MustCompile(pattern + `\b`).MatchString(err.Error()) {
			return true
		}
	}
	return false
}

// testNames are the names of the repository's test functions.
func testNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	root := controlplane.RepoRoot()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range file.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				names[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the tests: %v", err)
	}
	return names
}
