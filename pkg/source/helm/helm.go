// Package helm fetches Helm charts the way Flux's source-controller does
// for a HelmChart: from a classic repository's index.yaml or from an OCI
// registry, picking the highest version in a semver range, or from the
// files of a Git artifact. Charts are loaded in memory with Helm's own
// loader; nothing here talks to Kubernetes.
package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"sigs.k8s.io/yaml"
)

// The repository types, as in a HelmRepository's spec.type.
const (
	// TypeDefault is a classic repository: index.yaml plus archives over
	// HTTP(S).
	TypeDefault = "default"
	// TypeOCI is an OCI registry; the URL is oci://host/path.
	TypeOCI = "oci"
)

// Flux's default size limits (--helm-index-max-size and
// --helm-chart-max-size): a repository cannot make the controller buffer
// more than this.
const (
	maxIndexSize = 50 << 20
	maxChartSize = 10 << 20
)

// The errors a fetch can fail with, to be matched with errors.Is.
var (
	// ErrAuth: the server refused the credentials (HTTP 401 or 403).
	ErrAuth = errors.New("authentication failed")
	// ErrNotFound: no chart of that name, or no version in the range.
	ErrNotFound = errors.New("chart not found")
	// ErrVerification: Options.Verify refused the chart, or the chart
	// comes from a repository whose charts cannot be verified.
	ErrVerification = errors.New("chart verification failed")
)

// Options say which chart to fetch and from where.
type Options struct {
	// URL is the repository: http(s)://… for TypeDefault, oci://… for
	// TypeOCI.
	URL string
	// Type is TypeDefault (also when empty) or TypeOCI.
	Type  string
	Chart string
	// Version is a Masterminds/semver range; empty or "*" is the latest
	// stable version. Pre-releases match only a range that names one,
	// e.g. ">=2.0.0-0".
	Version string
	// Username and Password are sent as basic auth to the repository's
	// host (for OCI, to the registry's token service as it asks).
	Username, Password string
	// PassCredentials sends them also to chart URLs on other hosts, as
	// Flux's spec.passCredentials does.
	PassCredentials bool
	// TLS configures HTTPS, e.g. with a CA or client certificate from a
	// Secret; nil uses the system roots.
	TLS *tls.Config
	// PlainHTTP reaches an OCI registry over HTTP, as Flux's
	// spec.insecure does.
	PlainHTTP bool
	// Timeout bounds the whole fetch; zero leaves it to ctx.
	Timeout time.Duration
	// Verify, when set, checks the chart's signature before it is pulled:
	// it gets the chart's OCI reference pinned to the manifest digest
	// (host/path/name@sha256:<hex>), which is then what is pulled. Only
	// TypeOCI charts can be verified; with TypeDefault the fetch fails
	// with ErrVerification, as Flux fails it.
	Verify func(ctx context.Context, ref string) error
}

// Chart is a fetched, loaded chart.
type Chart struct {
	Chart *chart.Chart
	// Version is the version picked, as the repository lists it.
	Version string
	// Digest is sha256:<hex> of the chart archive.
	Digest string
	// URL is where the archive came from: an http(s) URL, or an OCI
	// reference oci://host/path/name:tag.
	URL string
	// ManifestDigest is the OCI manifest's digest of a chart from a
	// registry; empty for TypeDefault.
	ManifestDigest string
}

// Fetcher fetches charts and keeps each repository's last parsed index,
// so that an index that has not changed is downloaded but not parsed
// again: large public indexes take longer to parse than to download. The
// zero value is ready to use, and a Fetcher is safe for concurrent use.
type Fetcher struct {
	mu      sync.Mutex
	indexes map[string]*cachedIndex
	// parses counts index parses, for tests.
	parses atomic.Int64
}

// cachedIndex is one repository's last index. Its own lock lets
// concurrent fetches of one repository parse a new index once, without
// holding up other repositories.
type cachedIndex struct {
	mu     sync.Mutex
	digest string
	// index is shared by every fetch that finds the same digest; it is
	// only read after parsing.
	index *repo.IndexFile
}

// Fetch downloads the highest version of opts.Chart in opts.Version's
// range and loads it.
func (f *Fetcher) Fetch(ctx context.Context, opts Options) (*Chart, error) {
	if opts.Chart == "" {
		return nil, errors.New("no chart name")
	}
	constraint, err := parseRange(opts.Version)
	if err != nil {
		return nil, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if opts.TLS != nil {
		transport.TLSClientConfig = opts.TLS.Clone()
	}
	defer transport.CloseIdleConnections()
	switch opts.Type {
	case TypeOCI:
		if !registry.IsOCI(opts.URL) {
			return nil, fmt.Errorf("repository URL %q: type oci needs an oci:// URL", opts.URL)
		}
		return fetchOCI(ctx, transport, opts, constraint)
	case TypeDefault, "":
		if opts.Verify != nil {
			// As Flux: a chart repository's charts have no signatures it
			// can check.
			return nil, fmt.Errorf("%w: signatures can only be verified for charts from an OCI repository (type oci)", ErrVerification)
		}
		return f.fetchHTTP(ctx, &http.Client{Transport: transport}, opts, constraint)
	default:
		return nil, fmt.Errorf("repository type %q: want %s or %s", opts.Type, TypeDefault, TypeOCI)
	}
}

// parseRange reads a version range; empty means any stable version.
func parseRange(r string) (*semver.Constraints, error) {
	if r == "" {
		r = "*"
	}
	c, err := semver.NewConstraint(r)
	if err != nil {
		return nil, fmt.Errorf("version range %q: %w", r, err)
	}
	return c, nil
}

// highest returns the position of the highest version in versions that
// satisfies c, or -1. Versions that are not semver are skipped, as Helm
// does.
func highest(versions []string, c *semver.Constraints) int {
	best := -1
	var bestVersion *semver.Version
	for i, s := range versions {
		v, err := semver.NewVersion(s)
		if err != nil || !c.Check(v) {
			continue
		}
		if bestVersion == nil || v.GreaterThan(bestVersion) {
			best, bestVersion = i, v
		}
	}
	return best
}

func (f *Fetcher) fetchHTTP(ctx context.Context, client *http.Client, opts Options, constraint *semver.Constraints) (*Chart, error) {
	base, err := url.Parse(opts.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("repository URL %q: want http(s)://, or type oci for oci://", opts.URL)
	}
	indexURL := base.JoinPath("index.yaml").String()
	data, err := download(ctx, client, base, indexURL, opts, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("download index %s: %w", indexURL, err)
	}
	index, err := f.index(indexURL, data)
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", indexURL, err)
	}
	var entries repo.ChartVersions
	var versions []string
	// Entries without metadata are dropped, as Helm's index loader does.
	for _, e := range index.Entries[opts.Chart] {
		if e != nil && e.Metadata != nil {
			entries, versions = append(entries, e), append(versions, e.Version)
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no chart %q in %s", ErrNotFound, opts.Chart, indexURL)
	}
	i := highest(versions, constraint)
	if i < 0 {
		return nil, fmt.Errorf("%w: no version of %q in range %q in %s", ErrNotFound, opts.Chart, opts.Version, indexURL)
	}
	entry := entries[i]
	if len(entry.URLs) == 0 {
		return nil, fmt.Errorf("chart %s-%s in %s has no URL", opts.Chart, entry.Version, indexURL)
	}
	// Relative URLs are relative to the repository URL, not to the index.
	chartURL, err := repo.ResolveReferenceURL(opts.URL, entry.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart %s-%s: %w", opts.Chart, entry.Version, err)
	}
	data, err = download(ctx, client, base, chartURL, opts, maxChartSize)
	if err != nil {
		return nil, fmt.Errorf("download chart %s: %w", chartURL, err)
	}
	return load(data, entry.Version, chartURL)
}

// index returns the parsed index whose bytes are data, parsing them only
// when they differ from the last index seen at key.
func (f *Fetcher) index(key string, data []byte) (*repo.IndexFile, error) {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	f.mu.Lock()
	if f.indexes == nil {
		f.indexes = map[string]*cachedIndex{}
	}
	c := f.indexes[key]
	if c == nil {
		c = &cachedIndex{}
		f.indexes[key] = c
	}
	f.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index != nil && c.digest == digest {
		return c.index, nil
	}
	f.parses.Add(1)
	index, err := parseIndex(data)
	if err != nil {
		return nil, err
	}
	c.digest, c.index = digest, index
	return index, nil
}

// parseIndex reads index.yaml (or its JSON form). Helm's own parser is
// not exported; this one checks what Helm's does first (content and
// apiVersion) but tolerates unknown fields, which Helm's strict YAML
// parsing rejects.
func parseIndex(data []byte) (*repo.IndexFile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, repo.ErrEmptyIndexYaml
	}
	var index repo.IndexFile
	if err := yaml.Unmarshal(data, &index); err != nil {
		return nil, err
	}
	if index.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	return &index, nil
}

// download GETs target, with the credentials when it is on the
// repository's host (or PassCredentials is set), as Helm does, so that a
// chart hosted elsewhere does not receive them.
func download(ctx context.Context, client *http.Client, repoURL *url.URL, target string, opts Options, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	sameHost := req.URL.Scheme == repoURL.Scheme && req.URL.Host == repoURL.Host
	if (opts.Username != "" || opts.Password != "") && (sameHost || opts.PassCredentials) {
		req.SetBasicAuth(opts.Username, opts.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrAuth, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// fetchOCI lists the chart's tags, picks one and pulls it with Helm's
// registry client.
func fetchOCI(ctx context.Context, transport http.RoundTripper, opts Options, constraint *semver.Constraints) (*Chart, error) {
	ref := strings.TrimSuffix(strings.TrimPrefix(opts.URL, registry.OCIScheme+"://"), "/") + "/" + opts.Chart
	host, _, _ := strings.Cut(ref, "/")
	httpClient := &http.Client{Transport: contextTransport{ctx: ctx, next: transport}}
	// An authorizer of our own: Helm's default one falls back to the
	// Docker and Helm credential files of whoever runs the controller.
	authorizer := auth.Client{Client: httpClient, Cache: auth.NewCache()}
	if opts.Username != "" || opts.Password != "" {
		authorizer.Credential = auth.StaticCredential(host, auth.Credential{Username: opts.Username, Password: opts.Password})
	}
	clientOpts := []registry.ClientOption{registry.ClientOptHTTPClient(httpClient), registry.ClientOptAuthorizer(authorizer), registry.ClientOptWriter(io.Discard)}
	if opts.PlainHTTP {
		clientOpts = append(clientOpts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	// Tags are semver only, with Helm's _ for + turned back into +.
	tags, err := client.Tags(ref)
	if err != nil {
		return nil, ociError("list tags of "+ref, err)
	}
	i := highest(tags, constraint)
	if i < 0 {
		return nil, fmt.Errorf("%w: no tag of %s in range %q", ErrNotFound, ref, opts.Version)
	}
	tagged := ref + ":" + tags[i]
	// Pinned to the digest, so that what is verified is what is pulled
	// even if the tag moves in between. Resolve takes the tag as the
	// registry holds it, with Helm's _ for +.
	desc, err := client.Resolve(ref + ":" + strings.ReplaceAll(tags[i], "+", "_"))
	if err != nil {
		return nil, ociError("resolve "+tagged, err)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("resolve %s: digest %q: %w", tagged, desc.Digest, err)
	}
	pinned := ref + "@" + desc.Digest.String()
	if opts.Verify != nil {
		if err := opts.Verify(ctx, pinned); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVerification, tagged, err)
		}
	}
	res, err := client.Pull(pinned, registry.PullOptWithChart(true))
	if err != nil {
		return nil, ociError("pull "+tagged, err)
	}
	c, err := load(res.Chart.Data, tags[i], registry.OCIScheme+"://"+tagged)
	if err != nil {
		return nil, err
	}
	c.ManifestDigest = desc.Digest.String()
	return c, nil
}

// contextTransport puts the fetch's context on every request: Helm's
// registry client makes its requests with context.Background(), so
// without this neither cancellation nor Timeout would reach them.
type contextTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t contextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(req.WithContext(t.ctx))
}

// ociError names refusals and missing charts. ORAS reports a registry's
// answer as an ErrorResponse with the status, and a missing manifest as
// errdef.ErrNotFound.
func ociError(op string, err error) error {
	var resp *errcode.ErrorResponse
	hasResp := errors.As(err, &resp)
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound),
		hasResp && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%s: %w: %w", op, ErrAuth, err)
	case errors.Is(err, errdef.ErrNotFound), hasResp && resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w: %w", op, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// load reads a chart archive with Helm's loader, which also checks the
// archive's paths and size.
func load(data []byte, version, source string) (*Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", source, err)
	}
	sum := sha256.Sum256(data)
	return &Chart{Chart: ch, Version: version, Digest: "sha256:" + hex.EncodeToString(sum[:]), URL: source}, nil
}
