package validation

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/test/controlplane"
)

// semverRules returns, by CRD file, the regular expressions of the rules
// that refuse semver ranges that do not parse.
func semverRules(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controlplane.SluiceCRDs(), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	matches := regexp.MustCompile(`matches\('([^']*)'\)`)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil || crd.Kind != "CustomResourceDefinition" {
			continue
		}
		var walk func(s *apiextensionsv1.JSONSchemaProps)
		walk = func(s *apiextensionsv1.JSONSchemaProps) {
			for _, v := range s.XValidations {
				if m := matches.FindStringSubmatch(v.Rule); m != nil && strings.Contains(v.Message, "semver range") {
					out[filepath.Base(file)] = append(out[filepath.Base(file)], m[1])
				}
			}
			for _, p := range s.Properties {
				walk(&p)
			}
			if s.Items != nil && s.Items.Schema != nil {
				walk(s.Items.Schema)
			}
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
				walk(v.Schema.OpenAPIV3Schema)
			}
		}
	}
	return out
}

// TestTheSemverRangeRuleAgreesWithTheSemverLibrary checks that the CRDs'
// rule on semver ranges (GitRepository and OCIRepository spec.ref.semver,
// HelmChart spec.version, HelmRelease spec.chart.spec.version, ImagePolicy
// spec.policy.semver.range) is one expression, and that it takes exactly
// the ranges that Masterminds/semver, which Flux and Sluice read them
// with, parses: the rule must never refuse a range that works.
func TestTheSemverRangeRuleAgreesWithTheSemverLibrary(t *testing.T) {
	rules := semverRules(t)
	want := []string{
		"image.sluice.dev_imagepolicies.yaml", "source.sluice.dev_gitrepositories.yaml", "source.sluice.dev_helmcharts.yaml",
		"source.sluice.dev_ocirepositories.yaml", "sync.sluice.dev_helmreleases.yaml",
	}
	var files []string
	var expr string
	for file, res := range rules {
		files = append(files, file)
		for _, re := range res {
			if expr == "" {
				expr = re
			}
			if re != expr {
				t.Errorf("%s has another semver rule:\n%s\nwant\n%s", file, re, expr)
			}
		}
	}
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Fatalf("semver rules in %v, want %v", files, want)
	}
	// The rule is a CEL string with no escapes; CEL's matches is RE2, as
	// Go's regexp is.
	re := regexp.MustCompile(expr)
	ranges := []string{
		// Flux's and Masterminds' documented forms.
		"*", "6.x", "6.X", "6.5.*", "5.0.x", "1.2.3", "v1.2.3", "=1.2.3", "!=4.1", ">=6.0.0", ">= 6.0.0", "=> 1.0", "=< 2.0",
		">1.0.0 <2.0.0", ">=1.0.0, <2.0.0", ">= 1.2, < 3.0.0 || >= 4.2.3", ">=1.2 <3.0.0 || >=4.2.3", "~1.2.3", "~1", "~>1.2",
		"^1.2.3", "^1.x", "^0.2.3-beta.1", "1.2 - 1.4.5", "1 - 2", ">=1.0.0-0", ">=6.0.0-rc.1", "2.0.0-rc.1", "1.2.3+build.1",
		"1.2.3-alpha.1+build.5", " >=1.0.0 ", "<=1.0", "<1", "1.x || 2.x", "^1.2 || ^2.0",
		// Mistakes.
		"", "latest", "stable", "main", ">= one", "6.x || ", "|| 6.x", "1.x.y", "1.0.0 <> 2.0.0", ">>1", "1..2", "1,,2",
		"v", "x.y.z", "1.2.3 -", "=", "> ", "1.0.0 2.0.0 -",
	}
	for _, r := range ranges {
		_, err := semver.NewConstraint(r)
		if ok := re.MatchString(r); ok != (err == nil) {
			t.Errorf("%q: the rule says %v, the semver library %v", r, ok, err)
		}
	}
}
