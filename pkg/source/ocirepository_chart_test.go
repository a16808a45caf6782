package source

import (
	"strings"
	"testing"

	"sluice.dev/sluice/pkg/source/git"
)

func TestOCIChart(t *testing.T) {
	digest := "sha256:0123456789ab" + strings.Repeat("f", 52)
	chartYAML := func(version string) []byte {
		return []byte("apiVersion: v2\nname: greeter\nversion: " + version + "\n")
	}
	tests := []struct {
		name     string
		revision string
		files    map[string][]byte
		want     string
		err      string
	}{
		{
			name:     "a packaged chart in its top folder gets the digest as build metadata",
			revision: "1.0.0@" + digest,
			files:    map[string][]byte{"greeter/Chart.yaml": chartYAML("1.0.0"), "greeter/templates/cm.yaml": []byte("kind: ConfigMap")},
			want:     "1.0.0+0123456789ab",
		},
		{
			name:     "a chart at the root of an extracted layer loads too",
			revision: "1.0.0@" + digest,
			files:    map[string][]byte{"Chart.yaml": chartYAML("1.0.0")},
			want:     "1.0.0+0123456789ab",
		},
		{
			name:     "Helm's _ in a tag stands for +",
			revision: "1.0.0_build.1@" + digest,
			files:    map[string][]byte{"greeter/Chart.yaml": chartYAML("1.0.0+build.1")},
			want:     "1.0.0+0123456789ab",
		},
		{
			name:     "a digest-only revision needs no tag",
			revision: digest,
			files:    map[string][]byte{"greeter/Chart.yaml": chartYAML("2.0.0")},
			want:     "2.0.0+0123456789ab",
		},
		{
			name:     "a tag that is not the chart's version is refused",
			revision: "latest@" + digest,
			files:    map[string][]byte{"greeter/Chart.yaml": chartYAML("1.0.0")},
			err:      "the tag latest is not the version 1.0.0 of chart greeter",
		},
		{
			name:     "manifests are no chart",
			revision: "1.0.0@" + digest,
			files:    map[string][]byte{"deploy.yaml": []byte("kind: Deployment")},
			err:      "not a Helm chart",
		},
		{
			name:     "two charts are not one",
			revision: "1.0.0@" + digest,
			files:    map[string][]byte{"a/Chart.yaml": chartYAML("1.0.0"), "b/Chart.yaml": chartYAML("1.0.0")},
			err:      "several charts (a, b)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OCIChart(&git.Artifact{Revision: tt.revision, Digest: "sha256:content", Files: tt.files})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Revision != tt.want || got.Chart.Metadata.Version != tt.want || got.Digest != "sha256:content" {
				t.Fatalf("got revision %s, chart version %s, digest %s; want %s", got.Revision, got.Chart.Metadata.Version, got.Digest, tt.want)
			}
		})
	}
}
