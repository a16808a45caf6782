package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The credentials a registry started withBasicAuth demands.
const (
	user     = "scanner"
	password = "s3cret"
)

// testRegistry is go-containerregistry's in-process registry on
// loopback, optionally behind basic auth or TLS.
type testRegistry struct {
	host    string // 127.0.0.1:<port>
	caPEM   []byte // the server's certificate with TLS
	push    []remote.Option
	tagList atomic.Int32 // GET .../tags/list requests served
}

type serveOption func(*serveConfig)

type serveConfig struct {
	pageSize   int
	basicAuth  bool
	tls        bool
	clientCAs  *x509.CertPool // with tls: demand a client certificate signed by these
	clientCert tls.Certificate
}

// withBasicAuth answers 401 with a Basic challenge unless the request
// carries user and password, as a registry such as Harbor or
// distribution with htpasswd does.
func withBasicAuth() serveOption { return func(c *serveConfig) { c.basicAuth = true } }

// withPages makes the registry answer tag lists n tags at a time at
// most, whatever the client asks for, with a Link header to the next
// page, as distribution and the big registries do. The in-process
// registry honours n and last but sends no Link header, so a client
// reading only its first page would see no difference without this.
func withPages(n int) serveOption { return func(c *serveConfig) { c.pageSize = n } }

// withTLS serves HTTPS with httptest's self-signed certificate.
func withTLS() serveOption { return func(c *serveConfig) { c.tls = true } }

// withClientCert serves HTTPS and demands a client certificate signed by
// the CA of cert, which pushes use.
func withClientCert(pool *x509.CertPool, cert tls.Certificate) serveOption {
	return func(c *serveConfig) { c.tls, c.clientCAs, c.clientCert = true, pool, cert }
}

func newRegistry(t *testing.T, opts ...serveOption) *testRegistry {
	t.Helper()
	var c serveConfig
	for _, o := range opts {
		o(&c)
	}
	r := &testRegistry{}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if c.basicAuth {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, req)
		})
		r.push = append(r.push, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	}
	next := h
	h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/tags/list") {
			next.ServeHTTP(w, req)
			return
		}
		r.tagList.Add(1)
		if c.pageSize == 0 {
			next.ServeHTTP(w, req)
			return
		}
		servePage(w, req, next, c.pageSize)
	})

	srv := httptest.NewUnstartedServer(h)
	// Refused handshakes are what some tests are about; no need to log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if c.tls {
		if c.clientCAs != nil {
			srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: c.clientCAs}
		}
		srv.StartTLS()
		r.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if c.clientCAs != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{c.clientCert}
		}
		r.push = append(r.push, remote.WithTransport(tr))
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	return r
}

// servePage answers a tag list request with the page after the query's
// last, of at most pageSize tags, and a Link to the next page if there is
// one. It pages the full list itself: the in-process registry returns
// every tag again when last is its final tag.
func servePage(w http.ResponseWriter, req *http.Request, inner http.Handler, pageSize int) {
	query := req.URL.Query()
	all := req.Clone(req.Context())
	all.URL.RawQuery = ""
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, all)
	if rec.Code != http.StatusOK {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	slices.Sort(list.Tags)
	if last := query.Get("last"); last != "" {
		i, _ := slices.BinarySearch(list.Tags, last)
		for i < len(list.Tags) && list.Tags[i] <= last {
			i++
		}
		list.Tags = list.Tags[i:]
	}
	n := pageSize
	if asked, err := strconv.Atoi(query.Get("n")); err == nil && asked > 0 && asked < n {
		n = asked
	}
	if len(list.Tags) > n {
		list.Tags = list.Tags[:n]
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {list.Tags[n-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// pushImage writes one random image to repo under each tag and returns
// its digest.
func (r *testRegistry) pushImage(t *testing.T, repo string, tags ...string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, tag := range tags {
		ref, err := name.NewTag(r.host + "/" + repo + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		// The first push uploads the blobs; later tags only need the
		// manifest.
		if i == 0 {
			err = remote.Write(ref, img, r.push...)
		} else {
			err = remote.Tag(ref, img, r.push...)
		}
		if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.String()
}

func dockerConfigJSON(t *testing.T, auths map[string]map[string]string) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestScanListsTheTagsTheExclusionsKeep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		push       []string
		exclusions []string
		pageSize   int
		want       []string
		minPages   int32
	}{
		{name: "all tags of one page are listed",
			push: []string{"v1.0.0", "v1.1.0", "latest"},
			want: []string{"latest", "v1.0.0", "v1.1.0"}, minPages: 1},
		{name: "every page is followed when the registry pages the tags",
			push:     []string{"1", "2", "3", "4", "5", "6", "7"},
			pageSize: 2,
			want:     []string{"1", "2", "3", "4", "5", "6", "7"}, minPages: 4},
		{name: "a last page that is full ends the listing",
			push:     []string{"1", "2", "3", "4", "5", "6"},
			pageSize: 3,
			want:     []string{"1", "2", "3", "4", "5", "6"}, minPages: 2},
		{name: "cosign signature tags are dropped by default",
			push: []string{"v1", "v2", "sha256-0123abcd.sig", "sha256-0123abcd.att"},
			want: []string{"sha256-0123abcd.att", "v1", "v2"}, minPages: 1},
		{name: "custom exclusions replace the default",
			push:       []string{"v1", "v2", "dev-1", "sha256-0123abcd.sig"},
			exclusions: []string{`^dev-`, `^v1$`},
			want:       []string{"sha256-0123abcd.sig", "v2"}, minPages: 1},
		{name: "an empty exclusion list keeps every tag",
			push:       []string{"v1", "sha256-0123abcd.sig"},
			exclusions: []string{},
			want:       []string{"sha256-0123abcd.sig", "v1"}, minPages: 1},
		{name: "exclusions apply to tags of every page",
			push:     []string{"a", "b.sig", "c", "d.sig", "e"},
			pageSize: 2,
			want:     []string{"a", "c", "e"}, minPages: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t, withPages(tt.pageSize))
			reg.pushImage(t, "org/app", tt.push...)
			got, err := Scan(t.Context(), Options{Image: reg.host + "/org/app", Exclusions: tt.exclusions})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Tags, tt.want) {
				t.Errorf("tags %q, want %q", got.Tags, tt.want)
			}
			if want := reg.host + "/org/app"; got.CanonicalName != want {
				t.Errorf("canonical name %q, want %q", got.CanonicalName, want)
			}
			if pages := reg.tagList.Load(); pages < tt.minPages {
				t.Errorf("%d tag list requests, want at least %d", pages, tt.minPages)
			}
		})
	}
}

func TestScanUsesTheDockerConfigCredentials(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, withBasicAuth())
	reg.pushImage(t, "app", "v1")
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	tests := []struct {
		name    string
		config  []byte
		wantErr error // nil: the scan succeeds
		inMsg   string
	}{
		{"username and password under the bare host work",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {"username": user, "password": password}}), nil, ""},
		{"auth, base64 of user:password, works",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {"auth": basic}}), nil, ""},
		{"a key with a scheme and a path matches the host",
			dockerConfigJSON(t, map[string]map[string]string{"http://" + reg.host + "/v2/": {"auth": basic}}), nil, ""},
		{"the entry of this host is used among others",
			dockerConfigJSON(t, map[string]map[string]string{"ghcr.io": {"username": "x", "password": "y"}, reg.host: {"auth": basic}}), nil, ""},
		{"a wrong password is refused",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {"username": user, "password": "wrong"}}), ErrAuth, "401"},
		{"no credentials at all are refused", nil, ErrAuth, "401"},
		{"a config without this host is an authentication error naming the hosts it has",
			dockerConfigJSON(t, map[string]map[string]string{"ghcr.io": {"username": "x", "password": "y"}}), ErrAuth, `no credentials for ` + reg.host + ` (it has "ghcr.io")`},
		{"an entry without credentials is an authentication error",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {}}), ErrAuth, "holds no credentials"},
		{"auth that is not base64 is an authentication error",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {"auth": "!!!"}}), ErrAuth, "not base64"},
		{"auth without a colon is an authentication error",
			dockerConfigJSON(t, map[string]map[string]string{reg.host: {"auth": base64.StdEncoding.EncodeToString([]byte("nocolon"))}}), ErrAuth, "user:password"},
		{"a config that is not JSON is an authentication error", []byte("{not json"), ErrAuth, ".dockerconfigjson"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Scan(t.Context(), Options{Image: reg.host + "/app", DockerConfigJSON: tt.config})
			if tt.wantErr == nil {
				if err != nil || !slices.Equal(got.Tags, []string{"v1"}) {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("error %v, want %v saying %q", err, tt.wantErr, tt.inMsg)
			}
			for _, other := range []error{ErrNotFound, ErrUnreachable, ErrInvalid} {
				if errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
			}
		})
	}
}

func TestDockerConfigKeysMatchTheRegistryAsDockerDoes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		image string
		key   string
		match bool
	}{
		{"Docker Hub's legacy URL matches a short image name", "nginx", "https://index.docker.io/v1/", true},
		{"docker.io matches Docker Hub", "library/nginx", "docker.io", true},
		{"registry-1.docker.io matches Docker Hub", "docker.io/org/app", "registry-1.docker.io", true},
		{"index.docker.io matches Docker Hub", "index.docker.io/org/app", "index.docker.io", true},
		{"a bare host matches", "ghcr.io/org/app", "ghcr.io", true},
		{"a host with a scheme matches", "ghcr.io/org/app", "https://ghcr.io", true},
		{"hosts are matched without regard to case", "ghcr.io/org/app", "GHCR.IO", true},
		{"a host with port and path matches", "127.0.0.1:5000/app", "http://127.0.0.1:5000/v2/", true},
		{"another port does not match", "127.0.0.1:5000/app", "127.0.0.1:5001", false},
		{"the host without its port does not match", "127.0.0.1:5000/app", "127.0.0.1", false},
		{"another host does not match", "ghcr.io/org/app", "quay.io", false},
		{"Docker Hub does not match another registry", "ghcr.io/org/app", "https://index.docker.io/v1/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, err := name.NewRepository(tt.image)
			if err != nil {
				t.Fatal(err)
			}
			o := Options{DockerConfigJSON: dockerConfigJSON(t, map[string]map[string]string{tt.key: {"username": "u", "password": "p"}})}
			auth, err := o.authenticator(repo.Registry)
			if !tt.match {
				if err == nil {
					t.Fatalf("key %q matched %s", tt.key, repo.RegistryStr())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := auth.Authorization()
			if err != nil || cfg.Username != "u" || cfg.Password != "p" {
				t.Fatalf("got %+v, %v", cfg, err)
			}
		})
	}
}

func TestScanOverTLS(t *testing.T) {
	t.Parallel()
	otherCA, clientCert, clientKey, pool, cert := clientCertificate(t)
	plain := newRegistry(t, withTLS())
	plain.pushImage(t, "app", "v1")
	mutual := newRegistry(t, withClientCert(pool, cert))
	mutual.pushImage(t, "app", "v1")
	tests := []struct {
		name    string
		opts    Options
		wantErr error
		inMsg   string
	}{
		{"the registry's CA in ca.crt makes its certificate trusted",
			Options{Image: plain.host + "/app", CACert: plain.caPEM}, nil, ""},
		{"without ca.crt the certificate is not trusted and the registry is unreachable",
			Options{Image: plain.host + "/app"}, ErrUnreachable, "certificate"},
		{"another CA does not make the certificate trusted",
			Options{Image: plain.host + "/app", CACert: otherCA}, ErrUnreachable, "certificate"},
		{"tls.crt and tls.key answer a registry that demands a client certificate",
			Options{Image: mutual.host + "/app", CACert: mutual.caPEM, ClientCert: clientCert, ClientKey: clientKey}, nil, ""},
		{"without a client certificate such a registry is unreachable",
			Options{Image: mutual.host + "/app", CACert: mutual.caPEM}, ErrUnreachable, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Scan(t.Context(), tt.opts)
			if tt.wantErr == nil {
				if err != nil || !slices.Equal(got.Tags, []string{"v1"}) {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("error %v, want %v saying %q", err, tt.wantErr, tt.inMsg)
			}
		})
	}
}

func TestScanClassifiesWhatWentWrong(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	reg.pushImage(t, "org/app", "v1")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedHost := closed.Addr().String()
	closed.Close()

	// A registry that accepts the connection and never answers.
	hang := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(hang) })

	// A gateway whose registry is down.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)

	tests := []struct {
		name    string
		image   string
		timeout time.Duration
		want    error
		inMsg   string
	}{
		{"an unknown repository is not found", reg.host + "/org/other", 0, ErrNotFound, "NAME_UNKNOWN"},
		{"a closed port is unreachable", closedHost + "/app", 0, ErrUnreachable, "connection refused"},
		{"a registry that does not answer in time is unreachable", strings.TrimPrefix(silent.URL, "http://") + "/app", 300 * time.Millisecond, ErrUnreachable, "deadline"},
		{"a 503 from a gateway is unreachable", strings.TrimPrefix(down.URL, "http://") + "/app", 0, ErrUnreachable, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := Scan(ctx, Options{Image: tt.image})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("error %v, want %v saying %q", err, tt.want, tt.inMsg)
			}
			if !strings.Contains(err.Error(), "list tags of ") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

// TestClassifyTellsTheErrorsApart covers errors the tests cannot cause
// on loopback, such as a name that does not resolve (a real lookup would
// leave the machine).
func TestClassifyTellsTheErrorsApart(t *testing.T) {
	t.Parallel()
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "ghcr.io", Path: "/v2/org/app/tags/list"}}
	registryErr := func(status int, code transport.ErrorCode) error {
		e := &transport.Error{StatusCode: status, Request: req}
		if code != "" {
			e.Errors = []transport.Diagnostic{{Code: code, Message: "m"}}
		}
		return e
	}
	lookup := &url.Error{Op: "Get", URL: "https://ghcr.example/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "ghcr.example", IsNotFound: true}}}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"401 is an authentication failure", registryErr(http.StatusUnauthorized, transport.UnauthorizedErrorCode), ErrAuth},
		{"403 is an authentication failure", registryErr(http.StatusForbidden, transport.DeniedErrorCode), ErrAuth},
		{"DENIED with another status is an authentication failure", registryErr(http.StatusBadRequest, transport.DeniedErrorCode), ErrAuth},
		{"404 is not found", registryErr(http.StatusNotFound, ""), ErrNotFound},
		{"NAME_UNKNOWN with another status is not found", registryErr(http.StatusBadRequest, transport.NameUnknownErrorCode), ErrNotFound},
		{"MANIFEST_UNKNOWN is not found", registryErr(http.StatusNotFound, transport.ManifestUnknownErrorCode), ErrNotFound},
		{"502 is unreachable", registryErr(http.StatusBadGateway, ""), ErrUnreachable},
		{"504 is unreachable", registryErr(http.StatusGatewayTimeout, ""), ErrUnreachable},
		{"a name that does not resolve is unreachable", lookup, ErrUnreachable},
		{"an unknown certificate authority is unreachable", &url.Error{Op: "Get", URL: "https://ghcr.example/v2/", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, ErrUnreachable},
		{"a deadline is unreachable", fmt.Errorf("ping: %w", context.DeadlineExceeded), ErrUnreachable},
		{"a connection cut short is unreachable", &url.Error{Op: "Get", URL: "https://ghcr.example/v2/", Err: io.ErrUnexpectedEOF}, ErrUnreachable},
		{"500 is none of them", registryErr(http.StatusInternalServerError, transport.UnknownErrorCode), nil},
		{"429 is none of them", registryErr(http.StatusTooManyRequests, transport.TooManyRequestsErrorCode), nil},
		{"a cancelled context is none of them", context.Canceled, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// classify returns the class itself, never a wrapped one.
			if got := classify(tt.err); got != tt.want { //nolint:errorlint // comparing the sentinel classify returns
				t.Fatalf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestDigestReturnsTheDigestOfTheTaggedManifest(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, withBasicAuth())
	first := reg.pushImage(t, "app", "v1", "stable")
	second := reg.pushImage(t, "app", "v2")
	creds := dockerConfigJSON(t, map[string]map[string]string{reg.host: {"username": user, "password": password}})
	tests := []struct {
		name    string
		tag     string
		creds   []byte
		want    string
		wantErr error
	}{
		{"a tag gives its image's digest", "v1", creds, first, nil},
		{"two tags of one image give the same digest", "stable", creds, first, nil},
		{"another image gives another digest", "v2", creds, second, nil},
		{"an unknown tag is not found", "v3", creds, "", ErrNotFound},
		{"no credentials are refused", "v1", nil, "", ErrAuth},
		{"a tag with a character tags cannot hold is invalid", "v1/x", creds, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Digest(t.Context(), Options{Image: reg.host + "/app", DockerConfigJSON: tt.creds}, tt.tag)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCanonicalNamesSpellTheRegistryOut(t *testing.T) {
	t.Parallel()
	tests := []struct{ image, want string }{
		{"nginx", "index.docker.io/library/nginx"},
		{"docker.io/library/nginx", "index.docker.io/library/nginx"},
		{"org/app", "index.docker.io/org/app"},
		{"ghcr.io/org/app", "ghcr.io/org/app"},
		{"127.0.0.1:5000/org/app", "127.0.0.1:5000/org/app"},
		{"localhost:5000/a/b/c", "localhost:5000/a/b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			p, err := Options{Image: tt.image}.parse()
			if err != nil || p.repo.Name() != tt.want {
				t.Fatalf("got %q, %v; want %q", p.repo.Name(), err, tt.want)
			}
		})
	}
}

func TestValidateNamesTheFieldAtFault(t *testing.T) {
	t.Parallel()
	_, clientCert, clientKey, _, _ := clientCertificate(t)
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the message; none: valid
	}{
		{"a registry image is valid", Options{Image: "127.0.0.1:5000/org/app"}, nil},
		{"a Docker Hub short name is valid", Options{Image: "nginx"}, nil},
		{"a client certificate is valid", Options{Image: "ghcr.io/a/b", ClientCert: clientCert, ClientKey: clientKey}, nil},
		{"an empty image", Options{}, []string{"spec.image", "empty"}},
		{"an image with a scheme", Options{Image: "https://ghcr.io/org/app"}, []string{"spec.image", `remove "https://"`}},
		{"an image with a tag", Options{Image: "ghcr.io/org/app:v1"}, []string{"spec.image", `remove ":v1"`}},
		{"a registry port is not a tag", Options{Image: "127.0.0.1:5000/app:latest"}, []string{"spec.image", `remove ":latest"`}},
		{"an image with a digest", Options{Image: "ghcr.io/org/app@sha256:abc"}, []string{"spec.image", `remove "@sha256:abc"`}},
		{"an image with upper case", Options{Image: "ghcr.io/Org/App"}, []string{"spec.image", "invalid image name"}},
		{"a bad exclusion is named by its index", Options{Image: "nginx", Exclusions: []string{"ok", "(["}}, []string{"spec.exclusionList[1]", `"(["`}},
		{"a ca.crt that is not PEM", Options{Image: "nginx", CACert: []byte("nope")}, []string{"certSecretRef", "ca.crt"}},
		{"tls.crt without tls.key", Options{Image: "nginx", ClientCert: clientCert}, []string{"certSecretRef", "tls.key"}},
		{"tls.key that does not fit tls.crt", Options{Image: "nginx", ClientCert: clientCert, ClientKey: []byte("x")}, []string{"certSecretRef", "tls.crt and tls.key"}},
		{"every problem at once", Options{Image: "a:b", Exclusions: []string{"("}}, []string{"spec.image", "spec.exclusionList[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.opts)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			// Scan refuses the same options before reaching any registry.
			if _, serr := Scan(t.Context(), tt.opts); !errors.Is(serr, ErrInvalid) {
				t.Errorf("Scan: %v, want ErrInvalid", serr)
			}
		})
	}
}

func TestDefaultExclusionsCannotBeChangedByACaller(t *testing.T) {
	t.Parallel()
	got := DefaultExclusions()
	got[0] = "changed"
	_ = append(got, "more")
	if again := DefaultExclusions(); !slices.Equal(again, []string{`^.*\.sig$`}) {
		t.Fatalf("DefaultExclusions() = %q after a caller changed its result", again)
	}
}

// clientCertificate makes a CA and a client certificate it signs. It
// returns the CA as PEM, the client certificate and key as PEM, a pool
// with the CA for the server, and the pair for pushing.
func clientCertificate(t *testing.T) (caPEM, certPEM, keyPEM []byte, pool *x509.CertPool, pair tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "scanner"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caPEM, certPEM, keyPEM, pool, pair
}
