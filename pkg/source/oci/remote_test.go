package oci_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/test/filetree"
	"sluice.dev/sluice/test/imageregistry"
)

func TestLatestTag(t *testing.T) {
	tests := []struct {
		name   string
		tags   []string
		rng    string
		filter string
		want   string
		err    error
	}{
		{name: "the highest version in the range wins", tags: []string{"1.0.0", "1.2.0", "1.10.0", "2.0.0"}, rng: "^1.0", want: "1.10.0"},
		{name: "a leading v is a version too, and is kept", tags: []string{"v1.0.0", "v1.1.0"}, rng: ">=1.0.0", want: "v1.1.0"},
		{name: "tags that are not full versions are skipped", tags: []string{"latest", "1.3", "main-abc123", "1.2.0"}, rng: ">=1.0.0", want: "1.2.0"},
		{name: "a prerelease counts only when the range names one", tags: []string{"1.0.0", "1.1.0-rc.1"}, rng: ">=1.0.0", want: "1.0.0"},
		{name: "a range with a prerelease takes prereleases", tags: []string{"1.0.0", "1.1.0-rc.1"}, rng: ">=1.1.0-0", want: "1.1.0-rc.1"},
		{name: "the filter narrows the tags first", tags: []string{"1.0.0-dev", "1.0.0-prod", "1.1.0-dev"}, rng: ">=1.0.0-0", filter: "-prod$", want: "1.0.0-prod"},
		{name: "no version in the range is ErrNoMatch", tags: []string{"1.0.0", "latest"}, rng: "^2.0", err: oci.ErrNoMatch},
		{name: "a range that does not parse is ErrInvalid", tags: []string{"1.0.0"}, rng: "newest", err: oci.ErrInvalid},
		{name: "a filter that does not compile is ErrInvalid", tags: []string{"1.0.0"}, rng: "*", filter: "([", err: oci.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oci.LatestTag(tt.tags, tt.rng, tt.filter)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// push packs files and pushes them as repository:tag, as `sluicectl push
// artifact` does, and returns the manifest digest.
func push(t *testing.T, reg *imageregistry.Registry, repository, tag string, files map[string]string, meta oci.Metadata) string {
	t.Helper()
	layer, err := oci.Pack(filetree.Write(t, files), nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := oci.Push(t.Context(), remoteOf(reg), "oci://"+reg.Image(repository)+":"+tag, layer, meta)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func remoteOf(reg *imageregistry.Registry) oci.Remote {
	r := oci.Remote{}
	if reg.Auth != nil {
		r.Auth = reg.Auth
	}
	return r
}

// chartImage is a Helm chart as `helm push` stores it: the Helm config,
// the chart layer and a provenance layer after it.
func chartImage(t *testing.T, chartLayer []byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, oci.HelmConfigMediaType)
	img, err := mutate.Append(img,
		mutate.Addendum{Layer: static.NewLayer([]byte("provenance"), "application/vnd.cncf.helm.chart.provenance.v1.prov")},
		mutate.Addendum{Layer: static.NewLayer(chartLayer, oci.HelmChartMediaType)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFetch(t *testing.T) {
	reg := imageregistry.New(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	meta := oci.Metadata{Source: "https://github.com/org/fleet", Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", Created: created}
	d100 := push(t, reg, "app", "1.0.0", map[string]string{"deploy.yaml": "v: 1.0.0", ".github/ci.yaml": "ci"}, meta)
	push(t, reg, "app", "1.1.0", map[string]string{"deploy.yaml": "v: 1.1.0"}, meta)
	push(t, reg, "app", "2.0.0", map[string]string{"deploy.yaml": "v: 2.0.0"}, meta)
	d200 := push(t, reg, "app", "latest", map[string]string{"deploy.yaml": "v: 2.0.0"}, meta)
	chart, err := oci.Pack(filetree.Write(t, map[string]string{"podinfo/Chart.yaml": "name: podinfo\nversion: 6.0.0\n", "podinfo/.github/x": "kept by copy"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.Write(t, "charts/podinfo", "6.0.0", chartImage(t, chart))
	url := "oci://" + reg.Image("app")

	tests := []struct {
		name  string
		opts  oci.FetchOptions
		check func(t *testing.T, a *oci.Artifact)
		err   error
	}{
		{
			name: "no ref pulls latest, and the revision is tag@digest",
			opts: oci.FetchOptions{URL: url},
			check: func(t *testing.T, a *oci.Artifact) {
				if a.Revision != "latest@"+d200 || string(a.Files["deploy.yaml"]) != "v: 2.0.0" {
					t.Errorf("got %s with %q", a.Revision, a.Files)
				}
			},
		},
		{
			name: "a semver range pulls the highest matching tag",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{SemVer: "^1.0"}},
			check: func(t *testing.T, a *oci.Artifact) {
				if !strings.HasPrefix(a.Revision, "1.1.0@sha256:") || string(a.Files["deploy.yaml"]) != "v: 1.1.0" {
					t.Errorf("got %s with %q", a.Revision, a.Files)
				}
			},
		},
		{
			name: "a digest wins over a tag, and is the whole revision",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{Tag: "2.0.0", Digest: d100}},
			check: func(t *testing.T, a *oci.Artifact) {
				if a.Revision != d100 || string(a.Files["deploy.yaml"]) != "v: 1.0.0" {
					t.Errorf("got %s with %q", a.Revision, a.Files)
				}
			},
		},
		{
			name: "extracting applies the default exclusions, and the annotations come along",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{Tag: "1.0.0"}},
			check: func(t *testing.T, a *oci.Artifact) {
				if got := slices.Sorted(maps.Keys(a.Files)); !slices.Equal(got, []string{"deploy.yaml"}) {
					t.Errorf("got files %q", got)
				}
				if a.Annotations[oci.SourceAnnotation] != meta.Source || a.Annotations[oci.RevisionAnnotation] != meta.Revision || a.Annotations[oci.CreatedAnnotation] != "2025-01-02T03:04:05Z" {
					t.Errorf("got annotations %v", a.Annotations)
				}
				if a.Digest != oci.Digest(a.Files) {
					t.Errorf("digest %s is not of the files", a.Digest)
				}
			},
		},
		{
			name: "a chart layer is selected by media type and copied as it is",
			opts: oci.FetchOptions{URL: "oci://" + reg.Image("charts/podinfo"), Ref: oci.Ref{Tag: "6.0.0"}, MediaType: oci.HelmChartMediaType, Copy: true},
			check: func(t *testing.T, a *oci.Artifact) {
				if got := slices.Sorted(maps.Keys(a.Files)); !slices.Equal(got, []string{"podinfo/.github/x", "podinfo/Chart.yaml"}) {
					t.Errorf("got files %q", got)
				}
				if !strings.HasPrefix(a.Digest, "sha256:") || a.Digest == oci.Digest(a.Files) {
					t.Errorf("digest %s is not the layer's", a.Digest)
				}
			},
		},
		{
			name: "the first layer of a chart is its provenance, which is no tar+gzip",
			opts: oci.FetchOptions{URL: "oci://" + reg.Image("charts/podinfo"), Ref: oci.Ref{Tag: "6.0.0"}},
			err:  oci.ErrLayer,
		},
		{
			name: "a media type no layer has is ErrLayer",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{Tag: "1.0.0"}, MediaType: "application/vnd.example.unknown"},
			err:  oci.ErrLayer,
		},
		{
			name: "a missing tag is ErrNotFound",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{Tag: "9.9.9"}},
			err:  oci.ErrNotFound,
		},
		{
			name: "a range no tag matches is ErrNoMatch",
			opts: oci.FetchOptions{URL: url, Ref: oci.Ref{SemVer: "^3.0"}},
			err:  oci.ErrNoMatch,
		},
		{
			name: "the revision fetched before is ErrUnchanged",
			opts: oci.FetchOptions{URL: url, LastRevision: "latest@" + d200},
			err:  oci.ErrUnchanged,
		},
		{
			name: "a URL with a tag is ErrInvalid",
			opts: oci.FetchOptions{URL: url + ":1.0.0"},
			err:  oci.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := oci.Fetch(t.Context(), tt.opts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, a)
		})
	}
}

func TestFetchWithCredentials(t *testing.T) {
	reg := imageregistry.New(t, imageregistry.WithBasicAuth())
	push(t, reg, "app", "1.0.0", map[string]string{"deploy.yaml": "x"}, oci.Metadata{})
	url := "oci://" + reg.Image("app")
	tests := []struct {
		name string
		auth authn.Authenticator
		err  error
	}{
		{"the right credentials pull", reg.Auth, nil},
		{"wrong credentials are ErrAuth", &authn.Basic{Username: imageregistry.Username, Password: "wrong"}, oci.ErrAuth},
		{"no credentials are ErrAuth", nil, oci.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oci.Fetch(t.Context(), oci.FetchOptions{URL: url, Ref: oci.Ref{Tag: "1.0.0"}, Remote: oci.Remote{Auth: tt.auth}})
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestAPushedArtifactHasFluxsLayoutAndCanBeTagged(t *testing.T) {
	reg := imageregistry.New(t)
	digest := push(t, reg, "app", "1.0.0", map[string]string{"deploy.yaml": "x"}, oci.Metadata{Source: "src", Revision: "rev"})
	tagged, err := oci.Tag(t.Context(), oci.Remote{}, "oci://"+reg.Image("app")+":1.0.0", "stable")
	if err != nil {
		t.Fatal(err)
	}
	if tagged != digest {
		t.Fatalf("tagged %s, pushed %s", tagged, digest)
	}
	a, err := oci.Fetch(t.Context(), oci.FetchOptions{URL: "oci://" + reg.Image("app"), Ref: oci.Ref{Tag: "stable"}, MediaType: oci.ContentMediaType})
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision != "stable@"+digest || a.Annotations[oci.RevisionAnnotation] != "rev" {
		t.Fatalf("got %s with %v", a.Revision, a.Annotations)
	}
	img, err := oci.Image([]byte("layer"), oci.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != oci.ConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != oci.ContentMediaType {
		t.Fatalf("manifest %+v is not Flux's layout", m)
	}
}

func TestParseReferenceNeedsATagOrDigest(t *testing.T) {
	for _, url := range []string{"oci://ghcr.io/org/app", "ghcr.io/org/app:1.0.0", "https://ghcr.io/org/app:1.0.0"} {
		if _, err := oci.ParseReference(url, false); !errors.Is(err, oci.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", url, err)
		}
	}
	if ref, err := oci.ParseReference("oci://ghcr.io/org/app:1.0.0", false); err != nil || ref.Identifier() != "1.0.0" {
		t.Errorf("got %v, %v", ref, err)
	}
}
