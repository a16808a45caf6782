package source

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/helm"
)

// OCIChart loads the Helm chart an OCIRepository's artifact holds, as
// Flux's helm-controller does for a chartRef of kind OCIRepository: the
// chart is at the root of the files or in their one top folder, the
// layout of a packaged chart. Its revision is the chart's version with
// the first 12 hex of the manifest digest as build metadata, so that a
// tag pushed again with other content is a new release; the artifact's
// tag, when it has one, must be that version (with Helm's _ for +).
func OCIChart(a *git.Artifact) (*StoredChart, error) {
	dir, err := chartDir(a.Files)
	if err != nil {
		return nil, err
	}
	ch, err := helm.FromFiles(a.Files, dir)
	if err != nil {
		return nil, fmt.Errorf("revision '%s': %w", a.Revision, err)
	}
	tag, digest, ok := strings.Cut(a.Revision, "@")
	if !ok {
		tag, digest = "", a.Revision
	}
	if tag != "" && strings.ReplaceAll(tag, "_", "+") != ch.Metadata.Version {
		return nil, fmt.Errorf("revision '%s': the tag %s is not the version %s of chart %s", a.Revision, tag, ch.Metadata.Version, ch.Name())
	}
	_, hex, _ := strings.Cut(digest, ":")
	if len(hex) < 12 {
		return nil, fmt.Errorf("revision '%s' has no manifest digest", a.Revision)
	}
	revision := withBuildMetadata(ch.Metadata.Version, hex[:12])
	ch.Metadata.Version = revision
	return &StoredChart{Chart: ch, Revision: revision, Digest: a.Digest, OCIDigest: digest}, nil
}

// chartDir is where Chart.yaml is: the root, or the one top folder that
// has it.
func chartDir(files map[string][]byte) (string, error) {
	if _, ok := files["Chart.yaml"]; ok {
		return ".", nil
	}
	var dirs []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if dir, file := path.Split(name); file == "Chart.yaml" && strings.Count(dir, "/") == 1 {
			dirs = append(dirs, strings.TrimSuffix(dir, "/"))
		}
	}
	switch len(dirs) {
	case 0:
		return "", fmt.Errorf("the artifact holds no Chart.yaml at its root or in a top folder: it is not a Helm chart")
	case 1:
		return dirs[0], nil
	}
	return "", fmt.Errorf("the artifact holds several charts (%s), not one", strings.Join(dirs, ", "))
}
