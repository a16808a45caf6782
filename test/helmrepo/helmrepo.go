// Package helmrepo is real Helm chart repositories for tests: an HTTP
// repository serving index.yaml and packaged charts, and an OCI registry
// that charts are pushed to with Helm's own registry client. Both run on
// loopback, optionally behind basic auth (user helm, password s3cret) or
// TLS with a certificate the test can trust through CAPEM. Charts are
// built in memory and packaged with the Helm SDK, so what the servers
// hold is exactly what `helm package` and `helm push` would produce.
package helmrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// The credentials WithBasicAuth demands.
const (
	Username = "helm"
	Password = "s3cret"
)

// modTime stamps every file of a chart NewChart builds, so that packaging
// the same chart twice gives the same bytes (and digest); Helm's Save
// would otherwise use the current time.
var modTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// NewChart builds an apiVersion v2 application chart in memory. The keys
// of templates are file names under templates/, e.g. "configmap.yaml".
// It panics if values cannot be written as YAML, which only a test's own
// mistake can cause.
func NewChart(name, version string, templates map[string]string, values map[string]any) *chart.Chart {
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application"},
		Values:   values,
		ModTime:  modTime,
	}
	for _, file := range slices.Sorted(maps.Keys(templates)) {
		ch.Templates = append(ch.Templates, &common.File{Name: "templates/" + file, ModTime: modTime, Data: []byte(templates[file])})
	}
	// Helm's Save writes values.yaml from the raw files, not from Values.
	data, err := yaml.Marshal(values)
	if err != nil {
		panic(fmt.Sprintf("values of chart %s: %v", name, err))
	}
	ch.Raw = []*common.File{{Name: chartutil.ValuesfileName, ModTime: modTime, Data: data}}
	return ch
}

// Package returns ch as a chart archive (.tgz), as `helm package` makes it.
func Package(t testing.TB, ch *chart.Chart) []byte {
	t.Helper()
	file, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatalf("package chart %s: %v", ch.Name(), err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Digest is the digest of a chart archive as Sluice reports it:
// sha256:<hex>.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Option changes how a repository is served.
type Option func(*config)

type config struct {
	basicAuth bool
	tls       bool
}

// WithBasicAuth makes the server refuse requests without the credentials
// Username and Password.
func WithBasicAuth() Option { return func(c *config) { c.basicAuth = true } }

// WithTLS serves HTTPS with a self-signed certificate for 127.0.0.1; the
// repository's CAPEM holds it.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// start serves h on loopback until the test ends, behind basic auth when
// asked, and returns the server and its certificate as PEM (nil without
// TLS).
func start(t testing.TB, c config, h http.Handler) (*httptest.Server, []byte) {
	if c.basicAuth {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, _ := r.BasicAuth()
			if user != Username || pass != Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="helmrepo"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	if !c.tls {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv, nil
	}
	srv := httptest.NewUnstartedServer(h)
	// A client that does not trust the certificate is a case tests make
	// on purpose; the server need not log each refused handshake.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// HTTPRepo is a classic Helm repository: index.yaml at the root and the
// archives under charts/, referenced from the index by relative URLs.
type HTTPRepo struct {
	// URL is the repository URL, without a trailing slash.
	URL string
	// CAPEM is the server's certificate, PEM-encoded, when serving TLS.
	CAPEM []byte

	mu           sync.Mutex
	charts       map[string][]byte
	entries      map[string]*repo.ChartVersion
	index        []byte
	indexFetches int
	chartFetches int
}

// NewHTTP starts an empty repository until the test ends.
func NewHTTP(t testing.TB, opts ...Option) *HTTPRepo {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	r := &HTTPRepo{charts: map[string][]byte{}, entries: map[string]*repo.ChartVersion{}}
	r.reindex(t)
	srv, ca := start(t, c, http.HandlerFunc(r.serve))
	r.URL, r.CAPEM = srv.URL, ca
	return r
}

func (r *HTTPRepo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch file, isChart := strings.CutPrefix(req.URL.Path, "/charts/"); {
	case req.URL.Path == "/index.yaml":
		r.indexFetches++
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = w.Write(r.index)
	case isChart && r.charts[file] != nil:
		r.chartFetches++
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(r.charts[file])
	default:
		http.NotFound(w, req)
	}
}

// Add packages ch, stores it as charts/<name>-<version>.tgz (replacing a
// chart of the same name and version) and regenerates index.yaml. It
// returns the archive's digest.
func (r *HTTPRepo) Add(t testing.TB, ch *chart.Chart) string {
	t.Helper()
	data := Package(t, ch)
	file := fmt.Sprintf("%s-%s.tgz", ch.Name(), ch.Metadata.Version)
	sum := sha256.Sum256(data)
	// A copy, so that the test changing ch later leaves the index alone.
	md := *ch.Metadata
	r.mu.Lock()
	defer r.mu.Unlock()
	r.charts[file] = data
	r.entries[file] = &repo.ChartVersion{Metadata: &md, URLs: []string{"charts/" + file}, Digest: hex.EncodeToString(sum[:]), Created: modTime}
	r.reindex(t)
	return Digest(data)
}

// reindex writes index.yaml from the entries, the way `helm repo index`
// does: one list of versions per chart name, newest first.
func (r *HTTPRepo) reindex(t testing.TB) {
	t.Helper()
	index := repo.NewIndexFile()
	for _, file := range slices.Sorted(maps.Keys(r.entries)) {
		e := r.entries[file]
		index.Entries[e.Name] = append(index.Entries[e.Name], e)
	}
	index.SortEntries()
	data, err := yaml.Marshal(index)
	if err != nil {
		t.Fatalf("write index.yaml: %v", err)
	}
	r.index = data
}

// IndexFetches counts the index.yaml downloads served.
func (r *HTTPRepo) IndexFetches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.indexFetches
}

// ChartFetches counts the chart archive downloads served.
func (r *HTTPRepo) ChartFetches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chartFetches
}

// OCIRepo is an in-process OCI registry holding charts under the
// repository path charts/.
type OCIRepo struct {
	// URL is the charts' base, oci://127.0.0.1:<port>/charts; a chart
	// named app is at <URL>/app.
	URL string
	// CAPEM is the server's certificate, PEM-encoded, when serving TLS.
	CAPEM []byte

	client *helmregistry.Client
	host   string
}

// NewOCI starts an empty registry until the test ends.
func NewOCI(t testing.TB, opts ...Option) *OCIRepo {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	// The registry logs every request to stderr unless told otherwise.
	srv, ca := start(t, c, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	// A credentials file of its own keeps the client away from the
	// user's Helm configuration.
	clientOpts := []helmregistry.ClientOption{
		helmregistry.ClientOptWriter(io.Discard),
		helmregistry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")),
	}
	if c.tls {
		clientOpts = append(clientOpts, helmregistry.ClientOptHTTPClient(srv.Client()))
	} else {
		clientOpts = append(clientOpts, helmregistry.ClientOptPlainHTTP())
	}
	if c.basicAuth {
		clientOpts = append(clientOpts, helmregistry.ClientOptBasicAuth(Username, Password))
	}
	client, err := helmregistry.NewClient(clientOpts...)
	if err != nil {
		t.Fatalf("registry client: %v", err)
	}
	return &OCIRepo{URL: "oci://" + host + "/charts", CAPEM: ca, client: client, host: host}
}

// Push packages ch and pushes it as <URL>/<name>:<version>, as `helm push`
// does. It returns the archive's digest.
func (r *OCIRepo) Push(t testing.TB, ch *chart.Chart) string {
	t.Helper()
	data := Package(t, ch)
	ref := fmt.Sprintf("%s/charts/%s:%s", r.host, ch.Name(), ch.Metadata.Version)
	if _, err := r.client.Push(data, ref); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return Digest(data)
}

// Image is where chart name is, host:port/charts/<name>, as an OCI
// reference names it without its scheme.
func (r *OCIRepo) Image(name string) string { return r.host + "/charts/" + name }

// ManifestDigest is the digest of the OCI manifest of chart name at
// version, what a signature of the chart signs.
func (r *OCIRepo) ManifestDigest(t testing.TB, name, version string) string {
	t.Helper()
	ref := r.Image(name) + ":" + version
	desc, err := r.client.Resolve(ref)
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	return desc.Digest.String()
}
