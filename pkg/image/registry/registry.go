// Package registry scans an image repository's tags and resolves a tag's
// digest, the way Flux's image-reflector-controller does for an
// ImageRepository: through go-containerregistry, with the credentials of
// a kubernetes.io/dockerconfigjson Secret and the TLS material of a
// certSecretRef Secret.
//
// Errors are classified for the caller's status conditions: errors.Is
// matches ErrAuth, ErrNotFound, ErrUnreachable or ErrInvalid.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The classes of errors Scan and Digest return, matched with errors.Is.
var (
	// ErrAuth: the registry refused the credentials (401, 403), or the
	// docker config holds none usable for the registry. Docker Hub also
	// answers 401 for a repository that does not exist.
	ErrAuth = errors.New("authentication failed")
	// ErrNotFound: the registry does not know the repository or the tag
	// (404, NAME_UNKNOWN, MANIFEST_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: no usable answer came from the registry: the name
	// does not resolve, the connection is refused or times out, the TLS
	// handshake fails (an untrusted certificate included), or a gateway
	// in front of it answers 502, 503 or 504.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrInvalid: the options cannot be used (an image name, an
	// exclusion, the TLS material); Validate returns these.
	ErrInvalid = errors.New("invalid")
)

// defaultExclusion drops cosign signature tags, as Flux's default
// exclusionList does.
const defaultExclusion = `^.*\.sig$`

// DefaultExclusions returns the exclusion list used when
// Options.Exclusions is nil: cosign signature tags (^.*\.sig$). Each call
// returns a new slice, so callers may change it.
func DefaultExclusions() []string { return []string{defaultExclusion} }

// userAgent is sent with every request, so that registry operators can
// tell the scans apart.
const userAgent = "sluice-image-scanner"

// Options says which repository to reach and how.
type Options struct {
	// Image is the repository, without a tag or digest:
	// "127.0.0.1:5000/org/app", "ghcr.io/org/app", or "nginx" for
	// Docker Hub's library/nginx.
	Image string
	// Insecure allows plain HTTP to the registry.
	Insecure bool
	// DockerConfigJSON is a kubernetes.io/dockerconfigjson Secret's
	// .dockerconfigjson: an "auths" map from registry host to
	// username and password, or auth (base64 of user:pass). Empty means
	// anonymous access.
	DockerConfigJSON []byte
	// CACert (ca.crt) is PEM certificates trusted besides the system
	// roots; ClientCert and ClientKey (tls.crt, tls.key) are a client
	// certificate, given together or not at all.
	CACert, ClientCert, ClientKey []byte
	// Exclusions are regular expressions; a tag matching any is
	// dropped. Nil means DefaultExclusions(); an empty, non-nil slice
	// keeps every tag.
	Exclusions []string
}

// Result is what a scan found.
type Result struct {
	// CanonicalName is the repository with its registry spelled out, as
	// Flux reports it: index.docker.io/library/nginx, or
	// 127.0.0.1:5000/org/app.
	CanonicalName string
	// Tags are every tag not excluded, sorted and without duplicates.
	Tags []string
}

// Validate checks the options without reaching the registry. Its errors
// wrap ErrInvalid and name the field: spec.image, spec.exclusionList[i]
// or certSecretRef.
func Validate(o Options) error {
	_, err := o.parse()
	return err
}

// Scan lists every tag of the repository, following the registry's
// pages, and drops the excluded ones.
func Scan(ctx context.Context, o Options) (Result, error) {
	p, err := o.parse()
	if err != nil {
		return Result{}, err
	}
	opts, done, err := o.remoteOptions(ctx, p)
	if err != nil {
		return Result{}, err
	}
	defer done()
	// remote.List follows the registry's Link headers to the last page.
	all, err := remote.List(p.repo, opts...)
	if err != nil {
		return Result{}, wrap(fmt.Sprintf("list tags of %s", p.repo.Name()), err)
	}
	tags := make([]string, 0, len(all))
	for _, tag := range all {
		if !slices.ContainsFunc(p.exclusions, func(re *regexp.Regexp) bool { return re.MatchString(tag) }) {
			tags = append(tags, tag)
		}
	}
	// Sorted and unique, so that the same tags give the same result
	// whatever order the registry's pages came in.
	slices.Sort(tags)
	return Result{CanonicalName: p.repo.Name(), Tags: slices.Compact(tags)}, nil
}

// Digest returns the digest of the manifest image:tag points to (for a
// multi-platform image, the index's), as sha256:<hex>. It asks with a
// HEAD request, which Docker Hub does not count against its pull limit.
func Digest(ctx context.Context, o Options, tag string) (string, error) {
	p, err := o.parse()
	if err != nil {
		return "", err
	}
	ref, err := name.NewTag(p.repo.Name()+":"+tag, p.nameOpts...)
	if err != nil {
		return "", fmt.Errorf("tag %q of %s: %w: %w", tag, p.repo.Name(), ErrInvalid, err)
	}
	opts, done, err := o.remoteOptions(ctx, p)
	if err != nil {
		return "", err
	}
	defer done()
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return "", wrap(fmt.Sprintf("get digest of %s", ref.Name()), err)
	}
	return desc.Digest.String(), nil
}

// parsed is validated options.
type parsed struct {
	repo       name.Repository
	nameOpts   []name.Option
	exclusions []*regexp.Regexp
	tls        *tls.Config // nil: Go's defaults
}

func (o Options) parse() (parsed, error) {
	var (
		p    parsed
		errs []error
	)
	if o.Insecure {
		p.nameOpts = append(p.nameOpts, name.Insecure)
	}
	if repo, err := parseImage(o.Image, p.nameOpts); err != nil {
		errs = append(errs, fmt.Errorf("spec.image: %w", err))
	} else {
		p.repo = repo
	}

	exclusions := o.Exclusions
	if exclusions == nil {
		exclusions = DefaultExclusions()
	}
	for i, expr := range exclusions {
		re, err := regexp.Compile(expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.exclusionList[%d]: invalid regular expression %q: %w", i, expr, err))
			continue
		}
		p.exclusions = append(p.exclusions, re)
	}

	if cfg, err := o.tlsConfig(); err != nil {
		errs = append(errs, fmt.Errorf("certSecretRef: %w", err))
	} else {
		p.tls = cfg
	}
	if err := errors.Join(errs...); err != nil {
		return parsed{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

// parseImage reads a repository name, with Flux's checks first: their
// messages say what to remove, where the parser's would only say which
// character it did not expect.
func parseImage(image string, opts []name.Option) (name.Repository, error) {
	switch {
	case image == "":
		return name.Repository{}, errors.New("must not be empty")
	case strings.Contains(image, "://"):
		scheme, _, _ := strings.Cut(image, "://")
		return name.Repository{}, fmt.Errorf("%q must not start with a URL scheme; remove %q", image, scheme+"://")
	case strings.Contains(image, "@"):
		_, digest, _ := strings.Cut(image, "@")
		return name.Repository{}, fmt.Errorf("%q must not have a digest; remove %q", image, "@"+digest)
	}
	// A colon after the last slash starts a tag; one before it is the
	// registry's port.
	if _, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":"); ok {
		return name.Repository{}, fmt.Errorf("%q must not have a tag; remove %q", image, ":"+tag)
	}
	repo, err := name.NewRepository(image, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid image name %q: %w", image, err)
	}
	return repo, nil
}

// tlsConfig is the TLS client configuration the certSecretRef asks for,
// or nil for Go's defaults. The CA is added to the system roots, as Flux
// does, so that a registry behind a public certificate keeps working when
// a private CA is given too.
func (o Options) tlsConfig() (*tls.Config, error) {
	if len(o.CACert) == 0 && len(o.ClientCert) == 0 && len(o.ClientKey) == 0 {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(o.CACert) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(o.CACert) {
			return nil, errors.New("ca.crt holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	switch {
	case len(o.ClientCert) > 0 && len(o.ClientKey) > 0:
		cert, err := tls.X509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("tls.crt and tls.key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case len(o.ClientCert) > 0:
		return nil, errors.New("tls.crt needs tls.key")
	case len(o.ClientKey) > 0:
		return nil, errors.New("tls.key needs tls.crt")
	}
	return cfg, nil
}

// remoteOptions are the go-containerregistry options for one scan or
// lookup. done releases the connections of a transport made for it.
func (o Options) remoteOptions(ctx context.Context, p parsed) (opts []remote.Option, done func(), err error) {
	auth, err := o.authenticator(p.repo.Registry)
	if err != nil {
		return nil, nil, fmt.Errorf("credentials for %s: %w: %w", p.repo.Name(), ErrAuth, err)
	}
	opts = []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithUserAgent(userAgent)}
	done = func() {}
	if p.tls != nil {
		// A transport of its own, since the shared one trusts only the
		// system roots; its idle connections are closed when done, so
		// that repeated scans do not pile them up.
		base, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			base = http.DefaultTransport.(*http.Transport)
		}
		tr := base.Clone()
		tr.TLSClientConfig = p.tls
		opts = append(opts, remote.WithTransport(tr))
		done = tr.CloseIdleConnections
	}
	return opts, done, nil
}

// dockerConfig is the content of a kubernetes.io/dockerconfigjson
// Secret.
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// authenticator finds the credentials for reg in the docker config, the
// way Docker and Flux match its keys: by host (and port), whether the key
// is a bare host, a URL with a scheme or one with a path, with docker.io,
// registry-1.docker.io and https://index.docker.io/v1/ all meaning Docker
// Hub. A config without an entry for the registry is an error rather than
// a silent fallback to anonymous access: a Secret that names the wrong
// host is a mistake worth seeing.
func (o Options) authenticator(reg name.Registry) (authn.Authenticator, error) {
	if len(o.DockerConfigJSON) == 0 {
		return authn.Anonymous, nil
	}
	var cfg dockerConfig
	if err := json.Unmarshal(o.DockerConfigJSON, &cfg); err != nil {
		return nil, fmt.Errorf("read .dockerconfigjson: %w", err)
	}
	host := strings.ToLower(reg.RegistryStr())
	// Keys in sorted order, an exact key first, so that a config with
	// several spellings of one host always gives the same answer.
	keys := slices.Sorted(maps.Keys(cfg.Auths))
	if i := slices.Index(keys, reg.RegistryStr()); i > 0 {
		keys = append([]string{keys[i]}, slices.Delete(keys, i, i+1)...)
	}
	for _, key := range keys {
		if configHost(key) != host {
			continue
		}
		entry := cfg.Auths[key]
		ac := authn.AuthConfig{Username: entry.Username, Password: entry.Password, IdentityToken: entry.IdentityToken, RegistryToken: entry.RegistryToken}
		if entry.Auth != "" {
			decoded, err := base64.StdEncoding.DecodeString(entry.Auth)
			if err != nil {
				return nil, fmt.Errorf(".dockerconfigjson auths[%q].auth is not base64: %w", key, err)
			}
			user, pass, ok := strings.Cut(string(decoded), ":")
			if !ok {
				return nil, fmt.Errorf(".dockerconfigjson auths[%q].auth is not base64 of user:password", key)
			}
			ac.Username, ac.Password = user, pass
		}
		if ac == (authn.AuthConfig{}) {
			return nil, fmt.Errorf(".dockerconfigjson auths[%q] holds no credentials", key)
		}
		return authn.FromConfig(ac), nil
	}
	return nil, fmt.Errorf(".dockerconfigjson has no credentials for %s (it has %s)", reg.RegistryStr(), strings.Join(quoted(keys), ", "))
}

// configHost is the registry host a docker config key stands for,
// lower-cased: "https://index.docker.io/v1/" and "docker.io" are
// index.docker.io, "http://127.0.0.1:5000" is 127.0.0.1:5000.
func configHost(key string) string {
	raw := key
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Host)
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return name.DefaultRegistry
	}
	return host
}

func quoted(keys []string) []string {
	if len(keys) == 0 {
		return []string{"no entries"}
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q", k)
	}
	return out
}

// wrap adds what was being done and the class of err, if it has one.
func wrap(what string, err error) error {
	if class := classify(err); class != nil {
		return fmt.Errorf("%s: %w: %w", what, class, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// classify tells which of ErrAuth, ErrNotFound and ErrUnreachable err
// is, or nil. The registry's status code decides first, then its error
// codes, then the network error underneath.
func classify(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return ErrAuth
		case http.StatusNotFound:
			return ErrNotFound
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return ErrUnreachable
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return ErrAuth
			case transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode:
				return ErrNotFound
			}
		}
	}
	var (
		netErr    net.Error
		dnsErr    *net.DNSError
		opErr     *net.OpError
		verifyErr *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &dnsErr), errors.As(err, &opErr),
		errors.As(err, &netErr) && netErr.Timeout(),
		errors.As(err, &verifyErr), errors.As(err, &authority), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrUnreachable
	}
	return nil
}

// Authenticator returns the credentials a kubernetes.io/dockerconfigjson
// Secret's .dockerconfigjson holds for reg, matched as Scan matches them.
// Other sources of OCI artifacts use it, so that one Secret means the
// same to all of them.
func Authenticator(dockerConfigJSON []byte, reg name.Registry) (authn.Authenticator, error) {
	return Options{DockerConfigJSON: dockerConfigJSON}.authenticator(reg)
}

// TLSConfig is the client TLS configuration of a certSecretRef Secret's
// ca.crt, tls.crt and tls.key, as Scan uses it, or nil when all three are
// empty.
func TLSConfig(caCert, clientCert, clientKey []byte) (*tls.Config, error) {
	return Options{CACert: caCert, ClientCert: clientCert, ClientKey: clientKey}.tlsConfig()
}
