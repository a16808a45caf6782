package helm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"

	"sluice.dev/sluice/test/helmrepo"
)

const (
	appChartYAML = "apiVersion: v2\nname: app\nversion: 1.0.0\n"
	depChartYAML = appChartYAML + "dependencies:\n- name: dep\n  version: 0.1.0\n"
)

func names(files []*common.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

func TestFromFilesLoadsAChartFromAnArtifact(t *testing.T) {
	t.Parallel()
	depArchive := helmrepo.Package(t, helmrepo.NewChart("dep", "0.1.0", map[string]string{"service.yaml": "kind: Service\n"}, nil))
	tests := []struct {
		name      string
		files     map[string]string
		dir       string
		templates []string
		others    []string
		deps      []string
		values    string
	}{
		{
			name: "a chart in a directory loads with its templates and values, and nothing from outside it",
			files: map[string]string{
				"charts/app/Chart.yaml": appChartYAML, "charts/app/values.yaml": "replicas: 2\n",
				"charts/app/templates/configmap.yaml": "kind: ConfigMap\n", "charts/app/README.md": "# app\n",
				"charts/other/Chart.yaml": "apiVersion: v2\nname: other\nversion: 9.0.0\n", "deploy/app.yaml": "kind: Deployment\n",
			},
			dir: "charts/app", templates: []string{"templates/configmap.yaml"}, others: []string{"README.md"}, values: "map[replicas:2]",
		},
		{
			name:  "a chart at the root of the artifact loads",
			files: map[string]string{"Chart.yaml": appChartYAML, "templates/configmap.yaml": "kind: ConfigMap\n"},
			dir:   "", templates: []string{"templates/configmap.yaml"}, values: "map[]",
		},
		{
			name:  "a path with ./ and a trailing slash names the same directory",
			files: map[string]string{"charts/app/Chart.yaml": appChartYAML, "charts/app/templates/configmap.yaml": "kind: ConfigMap\n"},
			dir:   "./charts/app/", templates: []string{"templates/configmap.yaml"}, values: "map[]",
		},
		{
			name: "a dependency vendored as a directory becomes a subchart",
			files: map[string]string{
				"app/Chart.yaml": depChartYAML, "app/templates/configmap.yaml": "kind: ConfigMap\n",
				"app/charts/dep/Chart.yaml": "apiVersion: v2\nname: dep\nversion: 0.1.0\n", "app/charts/dep/templates/service.yaml": "kind: Service\n",
			},
			dir: "app", templates: []string{"templates/configmap.yaml"}, deps: []string{"dep"}, values: "map[]",
		},
		{
			name: "a dependency vendored as an archive becomes a subchart",
			files: map[string]string{
				"app/Chart.yaml": depChartYAML, "app/templates/configmap.yaml": "kind: ConfigMap\n",
				"app/charts/dep-0.1.0.tgz": string(depArchive),
			},
			dir: "app", templates: []string{"templates/configmap.yaml"}, deps: []string{"dep"}, values: "map[]",
		},
		{
			name: ".helmignore and Helm's default rule leave files out",
			files: map[string]string{
				"app/Chart.yaml": appChartYAML, "app/.helmignore": "# docs\n*.md\nsecret/\n",
				"app/README.md": "# app\n", "app/LICENSE": "MIT\n", "app/secret/key": "k\n",
				"app/templates/configmap.yaml": "kind: ConfigMap\n", "app/templates/.scratch.yaml": "kind: Secret\n",
			},
			dir: "app", templates: []string{"templates/configmap.yaml"}, others: []string{".helmignore", "LICENSE"}, values: "map[]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for name, content := range tt.files {
				files[name] = []byte(content)
			}
			ch, err := FromFiles(files, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Name() != "app" || ch.Metadata.Version != "1.0.0" {
				t.Fatalf("chart %s-%s, want app-1.0.0", ch.Name(), ch.Metadata.Version)
			}
			if got := names(ch.Templates); !slices.Equal(got, tt.templates) {
				t.Fatalf("templates %v, want %v", got, tt.templates)
			}
			if got := names(ch.Files); !slices.Equal(got, tt.others) {
				t.Fatalf("other files %v, want %v", got, tt.others)
			}
			var deps []string
			for _, d := range ch.Dependencies() {
				deps = append(deps, d.Name())
				if got := names(d.Templates); !slices.Equal(got, []string{"templates/service.yaml"}) {
					t.Fatalf("subchart %s templates %v, want its service.yaml", d.Name(), got)
				}
			}
			if !slices.Equal(deps, tt.deps) {
				t.Fatalf("subcharts %v, want %v", deps, tt.deps)
			}
			if got := fmt.Sprint(ch.Values); got != tt.values {
				t.Fatalf("values %s, want %s", got, tt.values)
			}
		})
	}
}

func TestFromFilesReportsABrokenChart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		dir      string
		notFound bool
		want     string
	}{
		{"a directory without Chart.yaml is not found, naming the path", map[string]string{"charts/app/values.yaml": "a: 1\n", "Chart.yaml": appChartYAML}, "charts/app", true, "charts/app/Chart.yaml is missing"},
		{"a dependency missing from charts/ is named", map[string]string{"app/Chart.yaml": depChartYAML}, "app", false, `dependency "dep" is not vendored under app/charts/`},
		{"a Chart.yaml without a version is refused", map[string]string{"app/Chart.yaml": "apiVersion: v2\nname: app\n"}, "app", false, "version is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for name, content := range tt.files {
				files[name] = []byte(content)
			}
			_, err := FromFiles(files, tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrNotFound) != tt.notFound {
				t.Fatalf("error %v, want one saying %q (not found: %t)", err, tt.want, tt.notFound)
			}
		})
	}
}
