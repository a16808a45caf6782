// Package oci reads and writes OCI artifacts the way Flux does: its
// `flux push artifact` layout (one tar+gzip content layer, Flux's config
// media type, the source and revision as OpenContainers annotations),
// Helm charts stored as OCI, and an OCIRepository's choice of tag,
// semver range or digest, layer and ignore rules. Registries are reached
// through go-containerregistry.
//
// It is a leaf: the OCIRepository controller and sluicectl's push, pull
// and tag commands share it, and it imports no controller.
//
// Errors are classified for the caller's conditions: errors.Is matches
// ErrInvalid, ErrAuth, ErrNotFound, ErrNoMatch, ErrLayer or ErrUnchanged.
package oci

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Media types of Flux's artifacts and of Helm charts stored as OCI.
const (
	// ConfigMediaType is the config of an artifact `flux push artifact`
	// makes.
	ConfigMediaType = "application/vnd.cncf.flux.config.v1+json"
	// ContentMediaType is its one layer: a tar+gzip of the files.
	ContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
	// HelmConfigMediaType is the config of a chart `helm push` stored.
	HelmConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	// HelmChartMediaType is the layer holding the packaged chart (.tgz).
	HelmChartMediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// The OpenContainers annotations Flux writes on an artifact's manifest.
const (
	// SourceAnnotation is where the files came from, e.g. a Git URL.
	SourceAnnotation = "org.opencontainers.image.source"
	// RevisionAnnotation is which version of them, e.g. main@sha1:<hash>.
	RevisionAnnotation = "org.opencontainers.image.revision"
	// CreatedAnnotation is when the artifact was made, in RFC 3339.
	CreatedAnnotation = "org.opencontainers.image.created"
)

// Scheme starts every artifact URL.
const Scheme = "oci://"

// userAgent is sent with every request, so that registry operators can
// tell Sluice's calls apart.
const userAgent = "sluice-oci"

// The classes of errors, matched with errors.Is.
var (
	// ErrInvalid: a URL, reference or option cannot be used.
	ErrInvalid = errors.New("invalid")
	// ErrAuth: the registry refused the credentials (401, 403).
	ErrAuth = errors.New("authentication failed")
	// ErrNotFound: the registry does not know the repository, tag or
	// digest (404, NAME_UNKNOWN, MANIFEST_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrNoMatch: no tag is a version in the semver range.
	ErrNoMatch = errors.New("no tag matches")
	// ErrLayer: the artifact has no layer to select, or the layer is not
	// a tar+gzip that can be unpacked within the size limit.
	ErrLayer = errors.New("unusable layer")
	// ErrUnchanged: the reference still resolves to the last revision;
	// nothing was pulled.
	ErrUnchanged = errors.New("the revision has not changed")
)

// Remote says how to reach a registry.
type Remote struct {
	// Insecure allows plain HTTP. Loopback and private addresses get it
	// without asking, as in go-containerregistry.
	Insecure bool
	// Auth is used when set; otherwise Keychain; otherwise the access is
	// anonymous.
	Auth     authn.Authenticator
	Keychain authn.Keychain
	// TLS is the client TLS configuration; nil is Go's defaults.
	TLS *tls.Config
	// Proxy, when set, is the HTTP(S) proxy all requests go through.
	Proxy *url.URL
}

// options are the go-containerregistry options of one operation. done
// releases the connections of a transport made for it.
func (r Remote) options(ctx context.Context) (opts []remote.Option, done func()) {
	opts = []remote.Option{remote.WithContext(ctx), remote.WithUserAgent(userAgent)}
	switch {
	case r.Auth != nil:
		opts = append(opts, remote.WithAuth(r.Auth))
	case r.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(r.Keychain))
	}
	if r.TLS == nil && r.Proxy == nil {
		return opts, func() {}
	}
	tr, done := r.Transport()
	return append(opts, remote.WithTransport(tr)), done
}

// Options are the go-containerregistry options of one operation, for a
// library that talks to the registry itself, such as a signature
// verifier. done releases the connections of a transport made for it.
func (r Remote) Options(ctx context.Context) (opts []remote.Option, done func()) {
	return r.options(ctx)
}

// Transport is an HTTP transport with r's TLS configuration and proxy,
// for a client other than go-containerregistry's. done closes its idle
// connections.
func (r Remote) Transport() (tr *http.Transport, done func()) {
	// A transport of its own, since the shared one trusts the system
	// roots only and takes its proxy from the environment; its idle
	// connections are closed when done, so that repeated fetches do not
	// pile them up.
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		base = http.DefaultTransport.(*http.Transport)
	}
	tr = base.Clone()
	if r.TLS != nil {
		tr.TLSClientConfig = r.TLS
	}
	if r.Proxy != nil {
		tr.Proxy = http.ProxyURL(r.Proxy)
	}
	return tr, tr.CloseIdleConnections
}

func (r Remote) nameOptions() []name.Option {
	if r.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ParseRepository reads oci://<registry>/<path>, which has no tag or
// digest: the repository an OCIRepository's spec.url names.
func ParseRepository(url string, insecure bool) (name.Repository, error) {
	rest, ok := strings.CutPrefix(url, Scheme)
	if !ok {
		return name.Repository{}, fmt.Errorf("%w: %q must start with %s", ErrInvalid, url, Scheme)
	}
	if strings.Contains(rest, "@") || strings.Contains(rest[strings.LastIndex(rest, "/")+1:], ":") {
		return name.Repository{}, fmt.Errorf("%w: %q must not have a tag or digest", ErrInvalid, url)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(rest, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: %q: %w", ErrInvalid, url, err)
	}
	return repo, nil
}

// ParseReference reads oci://<registry>/<path>:<tag> or
// oci://<registry>/<path>@<digest>: the tag or digest must be given.
func ParseReference(url string, insecure bool) (name.Reference, error) {
	rest, ok := strings.CutPrefix(url, Scheme)
	if !ok {
		return nil, fmt.Errorf("%w: %q must start with %s", ErrInvalid, url, Scheme)
	}
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(rest, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q needs a tag or digest, oci://<registry>/<path>:<tag>: %w", ErrInvalid, url, err)
	}
	return ref, nil
}

// classify adds the class of a registry error: ErrAuth or ErrNotFound
// from the status code or the registry's error codes, and leaves other
// errors (a refused connection, a TLS failure) as they are.
func classify(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w: %w", what, ErrAuth, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%s: %w: %w", what, ErrAuth, err)
			case transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode:
				return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
			}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
