// Package imageregistry is a real container registry for tests: the
// go-containerregistry registry on loopback, optionally behind basic auth,
// that tests push real images to.
package imageregistry

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The credentials a registry started WithBasicAuth accepts.
const (
	Username = "pusher"
	Password = "s3cret"
)

// Registry is a running registry.
type Registry struct {
	// Host is host:port, the registry part of an image name.
	Host string
	// Auth is set when the registry wants credentials.
	Auth *authn.Basic
	// CAPEM is the server's certificate, PEM-encoded, when serving TLS.
	CAPEM []byte
	tls   bool
	// referrers serves the OCI 1.1 referrers API.
	referrers bool
	// transport trusts CAPEM, for pushes.
	transport http.RoundTripper
}

// Option configures New.
type Option func(*Registry)

// WithBasicAuth makes the registry refuse calls without Username and
// Password, answering 401 with a Basic challenge, as registries do.
func WithBasicAuth() Option {
	return func(r *Registry) { r.Auth = &authn.Basic{Username: Username, Password: Password} }
}

// WithTLS serves HTTPS with a self-signed certificate for 127.0.0.1;
// CAPEM holds it.
func WithTLS() Option { return func(r *Registry) { r.tls = true } }

// WithReferrers serves the OCI 1.1 referrers API, where signatures are
// found as artifacts whose subject is the image; without it clients
// fall back to the sha256-<digest> tag schema.
func WithReferrers() Option { return func(r *Registry) { r.referrers = true } }

// New starts a registry until the test ends.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r := &Registry{}
	for _, o := range opts {
		o(r)
	}
	// The registry logs every request to stderr unless told otherwise.
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(r.referrers))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.Auth != nil {
			user, pass, _ := req.BasicAuth()
			if user != r.Auth.Username || pass != r.Auth.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		reg.ServeHTTP(w, req)
	}))
	if r.tls {
		// A client that does not trust the certificate is a case tests
		// make on purpose; the server need not log each refused handshake.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		r.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		r.transport = srv.Client().Transport
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	return r
}

// Image is the name of repository in this registry, as an ImageRepository
// names it.
func (r *Registry) Image(repository string) string { return r.Host + "/" + repository }

// Push writes a small random image as repository:tag and returns its
// digest.
func (r *Registry) Push(t testing.TB, repository, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("make an image: %v", err)
	}
	return r.Write(t, repository, tag, img)
}

// Write pushes img as repository:tag and returns its digest.
func (r *Registry) Write(t testing.TB, repository, tag string, img v1.Image) string {
	t.Helper()
	var nameOpts []name.Option
	opts := []remote.Option{}
	if r.tls {
		opts = append(opts, remote.WithTransport(r.transport))
	} else {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", r.Host, repository, tag), nameOpts...)
	if err != nil {
		t.Fatalf("image name: %v", err)
	}
	if r.Auth != nil {
		opts = append(opts, remote.WithAuth(r.Auth))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of %s: %v", ref, err)
	}
	return d.String()
}

// DockerConfigJSON is the .dockerconfigjson of a Secret with this
// registry's credentials, or with user and password when given.
func (r *Registry) DockerConfigJSON(userPassword ...string) []byte {
	user, pass := Username, Password
	if len(userPassword) == 2 {
		user, pass = userPassword[0], userPassword[1]
	}
	return fmt.Appendf(nil, `{"auths":{%q:{"username":%q,"password":%q}}}`, r.Host, user, pass)
}
