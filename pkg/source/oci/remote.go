package oci

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Metadata is what an artifact records about its files, in its
// manifest's annotations.
type Metadata struct {
	// Source is where the files came from (SourceAnnotation).
	Source string
	// Revision is which version of them (RevisionAnnotation).
	Revision string
	// Created is when the artifact was made (CreatedAnnotation); zero
	// means now.
	Created time.Time
}

// Image is the artifact `flux push artifact` makes of a packed layer: an
// OCI manifest with Flux's config media type, the layer as its one
// ContentMediaType layer, and meta in the annotations.
func Image(layer []byte, meta Metadata) (v1.Image, error) {
	created := meta.Created
	if created.IsZero() {
		created = time.Now()
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(layer, ContentMediaType)})
	if err != nil {
		return nil, fmt.Errorf("add the layer: %w", err)
	}
	annotations := map[string]string{CreatedAnnotation: created.UTC().Format(time.RFC3339)}
	if meta.Source != "" {
		annotations[SourceAnnotation] = meta.Source
	}
	if meta.Revision != "" {
		annotations[RevisionAnnotation] = meta.Revision
	}
	annotated, ok := mutate.Annotations(img, annotations).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("annotate the artifact: got no image")
	}
	return annotated, nil
}

// Push writes layer (as Pack makes it) with meta to url,
// oci://<registry>/<path>:<tag>, and returns the manifest's digest.
func Push(ctx context.Context, r Remote, url string, layer []byte, meta Metadata) (string, error) {
	ref, err := ParseReference(url, r.Insecure)
	if err != nil {
		return "", err
	}
	img, err := Image(layer, meta)
	if err != nil {
		return "", err
	}
	opts, done := r.options(ctx)
	defer done()
	if err := remote.Write(ref, img, opts...); err != nil {
		return "", classify("push "+url, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", url, err)
	}
	return digest.String(), nil
}

// Tag gives the artifact at url (oci://<registry>/<path>:<tag> or
// @<digest>) the tag tag too, and returns its manifest's digest.
func Tag(ctx context.Context, r Remote, url, tag string) (string, error) {
	ref, err := ParseReference(url, r.Insecure)
	if err != nil {
		return "", err
	}
	target, err := name.NewTag(ref.Context().Name()+":"+tag, r.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("%w: tag %q: %w", ErrInvalid, tag, err)
	}
	opts, done := r.options(ctx)
	defer done()
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return "", classify("get "+url, err)
	}
	if err := remote.Tag(target, desc, opts...); err != nil {
		return "", classify(fmt.Sprintf("tag %s as %s", url, tag), err)
	}
	return desc.Digest.String(), nil
}

// Ref selects an artifact, as an OCIRepository's spec.ref: Digest wins
// over SemVer, and SemVer over Tag; with none set, the tag is latest.
type Ref struct {
	Tag string
	// SemVer is a Masterminds/semver range over the tags.
	SemVer string
	// SemVerFilter is a regular expression a tag must match for SemVer.
	SemVerFilter string
	// Digest is sha256:<hex> of the manifest.
	Digest string
}

// FetchOptions say which artifact to fetch and how.
type FetchOptions struct {
	// URL is the repository, oci://<registry>/<path>, with no tag.
	URL string
	Ref Ref
	// MediaType selects the first layer of that media type; empty
	// selects the first layer.
	MediaType string
	// Copy keeps the layer's files as they are; otherwise the ignore
	// rules of Filter apply (the extract operation).
	Copy bool
	// Ignore replaces the default exclusions of an extracted layer.
	Ignore *string
	Remote Remote
	// LastRevision is the revision fetched before: when the reference
	// still resolves to it, Fetch returns ErrUnchanged without pulling.
	LastRevision string
	// MaxSize bounds the unpacked layer; 0 means DefaultMaxSize.
	MaxSize int64
	// Verify, when set, is called with the reference pinned to the
	// manifest digest, and the revision, once the reference is resolved
	// and before anything is pulled or LastRevision is compared: an
	// error it returns is Fetch's, as it is.
	Verify func(ctx context.Context, ref name.Digest, revision string) error
}

// Artifact is a fetched artifact.
type Artifact struct {
	// Revision is Flux's: <tag>@sha256:<manifest digest>, or
	// sha256:<manifest digest> when a digest was asked for.
	Revision string
	// Digest is of the content: the layer's digest when copied, that of
	// the kept files (see Digest) when extracted.
	Digest string
	// Annotations are the manifest's.
	Annotations map[string]string
	// Files maps slash-separated paths to contents.
	Files map[string][]byte
}

// Fetch resolves o.Ref in o.URL and, unless it is at o.LastRevision,
// pulls the artifact and returns the files of its selected layer.
func Fetch(ctx context.Context, o FetchOptions) (*Artifact, error) {
	repo, err := ParseRepository(o.URL, o.Remote.Insecure)
	if err != nil {
		return nil, err
	}
	opts, done := o.Remote.options(ctx)
	defer done()
	ref, err := resolve(repo, o.Ref, opts)
	if err != nil {
		return nil, err
	}
	revision, pinned, err := revisionOf(ref, opts)
	if err != nil {
		return nil, err
	}
	if o.Verify != nil {
		if err := o.Verify(ctx, pinned, revision); err != nil {
			return nil, err
		}
	}
	if revision == o.LastRevision {
		return nil, ErrUnchanged
	}
	// By digest: a tag moved between the two calls gives the content of
	// the revision reported, not of the newer one.
	img, err := remote.Image(pinned, opts...)
	if err != nil {
		return nil, classify("pull "+ref.Name(), err)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, classify("read the manifest of "+ref.Name(), err)
	}
	layer, err := selectLayer(img, o.MediaType)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.Name(), err)
	}
	blob, err := layer.Compressed()
	if err != nil {
		return nil, classify("pull the layer of "+ref.Name(), err)
	}
	defer func() { _ = blob.Close() }()
	files, err := Unpack(blob, o.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.Name(), err)
	}
	a := &Artifact{Revision: revision, Annotations: maps.Clone(manifest.Annotations), Files: files}
	if o.Copy {
		d, err := layer.Digest()
		if err != nil {
			return nil, fmt.Errorf("%s: digest of the layer: %w", ref.Name(), err)
		}
		a.Digest = d.String()
	} else {
		a.Files = Filter(files, o.Ignore)
		a.Digest = Digest(a.Files)
	}
	return a, nil
}

// resolve turns ref into a tag or digest of repo, listing the tags for a
// semver range.
func resolve(repo name.Repository, ref Ref, opts []remote.Option) (name.Reference, error) {
	switch {
	case ref.Digest != "":
		return repo.Digest(ref.Digest), nil
	case ref.SemVer != "":
		tags, err := remote.List(repo, opts...)
		if err != nil {
			return nil, classify("list the tags of "+repo.Name(), err)
		}
		tag, err := LatestTag(tags, ref.SemVer, ref.SemVerFilter)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", repo.Name(), err)
		}
		return repo.Tag(tag), nil
	case ref.Tag != "":
		return repo.Tag(ref.Tag), nil
	}
	return repo.Tag(name.DefaultTag), nil
}

// revisionOf asks the registry for the manifest digest ref names, with a
// HEAD request, and returns Flux's revision and ref pinned to the digest.
func revisionOf(ref name.Reference, opts []remote.Option) (string, name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		if _, err := v1.NewHash(d.DigestStr()); err != nil {
			return "", name.Digest{}, fmt.Errorf("%w: digest %q: %w", ErrInvalid, d.DigestStr(), err)
		}
		return d.DigestStr(), d, nil
	}
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return "", name.Digest{}, classify("resolve "+ref.Name(), err)
	}
	pinned := ref.Context().Digest(desc.Digest.String())
	return ref.Identifier() + "@" + desc.Digest.String(), pinned, nil
}

// selectLayer is the first layer of mediaType, or the first layer when
// mediaType is empty.
func selectLayer(img v1.Image, mediaType string) (v1.Layer, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%w: read the layers: %w", ErrLayer, err)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("%w: the artifact has no layer", ErrLayer)
	}
	if mediaType == "" {
		return layers[0], nil
	}
	var seen []string
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("%w: media type of layer %d: %w", ErrLayer, i, err)
		}
		if string(mt) == mediaType {
			return l, nil
		}
		seen = append(seen, string(mt))
	}
	return nil, fmt.Errorf("%w: no layer has media type %q (it has %s)", ErrLayer, mediaType, strings.Join(seen, ", "))
}

// LatestTag returns the highest tag that is a version in semverRange,
// among those filter (a regular expression; empty keeps all) matches.
// As in Flux, a tag is a version when it is a full semantic version,
// with an optional leading v; other tags are skipped.
func LatestTag(tags []string, semverRange, filter string) (string, error) {
	constraint, err := semver.NewConstraint(semverRange)
	if err != nil {
		return "", fmt.Errorf("%w: semver range %q: %w", ErrInvalid, semverRange, err)
	}
	var re *regexp.Regexp
	if filter != "" {
		if re, err = regexp.Compile(filter); err != nil {
			return "", fmt.Errorf("%w: semver filter %q: %w", ErrInvalid, filter, err)
		}
	}
	var versions []*semver.Version
	for _, tag := range tags {
		if re != nil && !re.MatchString(tag) {
			continue
		}
		if _, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v")); err != nil {
			continue
		}
		v, err := semver.NewVersion(tag)
		if err != nil || !constraint.Check(v) {
			continue
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("%w semver %q among %d tags", ErrNoMatch, semverRange, len(tags))
	}
	// Stable, so that 1.0.0 and v1.0.0 always give the same one.
	sort.SliceStable(versions, func(i, j int) bool { return versions[i].GreaterThan(versions[j]) })
	return versions[0].Original(), nil
}
