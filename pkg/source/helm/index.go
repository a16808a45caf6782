package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
)

// Index is a classic repository's index.yaml as last downloaded.
type Index struct {
	// Digest is sha256:<hex> of the index as served: it changes when
	// the repository adds, removes or changes a chart version.
	Digest string
	// Charts is the number of chart names the index lists.
	Charts int
}

// Index downloads the index.yaml of a classic repository (TypeDefault)
// and parses it, as a HelmRepository's check does; a parsed index is
// cached for Fetch as Fetch caches its own. An OCI registry has no index:
// asking for one is an error. Refused credentials are ErrAuth.
func (f *Fetcher) Index(ctx context.Context, opts Options) (*Index, error) {
	if opts.Type != TypeDefault && opts.Type != "" {
		return nil, fmt.Errorf("repository type %q has no index, want %s", opts.Type, TypeDefault)
	}
	base, err := url.Parse(opts.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("repository URL %q: want http(s)://", opts.URL)
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
	indexURL := base.JoinPath("index.yaml").String()
	data, err := download(ctx, &http.Client{Transport: transport}, base, indexURL, opts, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("download index %s: %w", indexURL, err)
	}
	index, err := f.index(indexURL, data)
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", indexURL, err)
	}
	sum := sha256.Sum256(data)
	return &Index{Digest: "sha256:" + hex.EncodeToString(sum[:]), Charts: len(index.Entries)}, nil
}
