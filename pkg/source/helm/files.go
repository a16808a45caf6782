package helm

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
)

// utf8BOM is stripped from every file, as Helm's directory loader does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// FromFiles loads the chart in directory dir of a Git artifact's files
// (slash-separated paths to contents), the way `helm package dir` would
// read it from disk: .helmignore applies, and dependencies vendored under
// charts/, as directories or archives, become subcharts. Dependencies are
// not downloaded, so one that Chart.yaml lists but charts/ lacks is an
// error here rather than at install time.
func FromFiles(files map[string][]byte, dir string) (*chart.Chart, error) {
	prefix := strings.Trim(path.Clean("/"+dir), "/")
	if prefix != "" {
		prefix += "/"
	}
	if _, ok := files[prefix+"Chart.yaml"]; !ok {
		return nil, fmt.Errorf("%w: %sChart.yaml is missing", ErrNotFound, prefix)
	}
	rules := ignore.Empty()
	if data, ok := files[prefix+ignore.HelmIgnore]; ok {
		r, err := ignore.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse %s%s: %w", prefix, ignore.HelmIgnore, err)
		}
		rules = r
	}
	rules.AddDefaults()

	var chartFiles []*archive.BufferedFile
	// Sorted, so that the chart's file lists do not depend on map order.
	for _, name := range slices.Sorted(maps.Keys(files)) {
		rel, ok := strings.CutPrefix(name, prefix)
		if !ok || ignored(rules, rel) {
			continue
		}
		chartFiles = append(chartFiles, &archive.BufferedFile{Name: rel, Data: bytes.TrimPrefix(files[name], utf8BOM)})
	}
	ch, err := loader.LoadFiles(chartFiles)
	if err != nil {
		return nil, fmt.Errorf("load chart %sChart.yaml: %w", prefix, err)
	}
	for _, dep := range ch.Metadata.Dependencies {
		if !slices.ContainsFunc(ch.Dependencies(), func(sub *chart.Chart) bool { return sub.Name() == dep.Name }) {
			return nil, fmt.Errorf("chart %s: dependency %q is not vendored under %scharts/", ch.Name(), dep.Name, prefix)
		}
	}
	return ch, nil
}

// ignored applies .helmignore rules as Helm's directory walk does: a file
// is left out when it matches, or when a directory above it does.
func ignored(rules *ignore.Rules, name string) bool {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		if rules.Ignore(strings.Join(parts[:i], "/"), fileInfo{name: parts[i-1], dir: true}) {
			return true
		}
	}
	return rules.Ignore(name, fileInfo{name: parts[len(parts)-1]})
}

// fileInfo is the little of fs.FileInfo that ignore rules look at.
type fileInfo struct {
	name string
	dir  bool
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return 0 }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.dir }
func (f fileInfo) Sys() any           { return nil }

func (f fileInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir
	}
	return 0
}
