package helm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"

	"sluice.dev/sluice/test/helmrepo"
)

// appChart is a chart whose template and values say which version it is.
func appChart(name, version string) *chart.Chart {
	return helmrepo.NewChart(name, version,
		map[string]string{"configmap.yaml": "kind: ConfigMap\nversion: " + version + "\n"},
		map[string]any{"image": "app:" + version})
}

// checkChart fails unless c is the appChart of that version, intact.
func checkChart(t *testing.T, c *Chart, version, digest string) {
	t.Helper()
	if c.Version != version || c.Chart.Metadata.Version != version {
		t.Fatalf("version %s (chart says %s), want %s", c.Version, c.Chart.Metadata.Version, version)
	}
	if c.Digest != digest {
		t.Fatalf("digest %s, want the pushed archive's %s", c.Digest, digest)
	}
	if len(c.Chart.Templates) != 1 || c.Chart.Templates[0].Name != "templates/configmap.yaml" ||
		string(c.Chart.Templates[0].Data) != "kind: ConfigMap\nversion: "+version+"\n" {
		t.Fatalf("templates %v, want configmap.yaml of version %s", c.Chart.Templates, version)
	}
	if c.Chart.Values["image"] != "app:"+version {
		t.Fatalf("values %v, want image app:%s", c.Chart.Values, version)
	}
}

func TestFetchPicksTheHighestVersionInRange(t *testing.T) {
	t.Parallel()
	r := helmrepo.NewHTTP(t)
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0-rc.1"} {
		digests[v] = r.Add(t, appChart("app", v))
	}
	tests := []struct {
		name    string
		version string
		want    string
	}{
		{"an empty range gives the latest stable version", "", "1.1.0"},
		{"a star gives the latest stable version", "*", "1.1.0"},
		{"a patch range stays on its minor", "1.0.x", "1.0.0"},
		{"an exact version gives that version", "1.0.0", "1.0.0"},
		{"a range that names a pre-release admits one", ">=2.0.0-0", "2.0.0-rc.1"},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.Fetch(t.Context(), Options{URL: r.URL, Chart: "app", Version: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, c, tt.want, digests[tt.want])
			if want := r.URL + "/charts/app-" + tt.want + ".tgz"; c.URL != want {
				t.Fatalf("URL %s, want the index's relative URL resolved to %s", c.URL, want)
			}
		})
	}
}

func TestFetchFromOCIPicksTheHighestTagInRange(t *testing.T) {
	t.Parallel()
	r := helmrepo.NewOCI(t)
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.2.0", "2.0.0"} {
		digests[v] = r.Push(t, appChart("app", v))
	}
	digests["1.0.0+build.1"] = r.Push(t, appChart("built", "1.0.0+build.1"))
	tests := []struct {
		name    string
		chart   string
		version string
		want    string
	}{
		{"a caret range gives the highest tag of its major", "app", "^1", "1.2.0"},
		{"an empty range gives the latest tag", "app", "", "2.0.0"},
		{"an exact version gives that tag", "app", "1.0.0", "1.0.0"},
		{"build metadata survives Helm's + to _ in tags", "built", "*", "1.0.0+build.1"},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.Fetch(t.Context(), Options{URL: r.URL, Type: TypeOCI, Chart: tt.chart, Version: tt.version, PlainHTTP: true})
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, c, tt.want, digests[tt.want])
			if want := r.URL + "/" + tt.chart + ":" + tt.want; c.URL != want {
				t.Fatalf("URL %s, want %s", c.URL, want)
			}
		})
	}
}

func TestFetchFailsWithANamedError(t *testing.T) {
	t.Parallel()
	open := helmrepo.NewHTTP(t)
	open.Add(t, appChart("app", "1.0.0"))
	private := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	private.Add(t, appChart("app", "1.0.0"))
	registry := helmrepo.NewOCI(t)
	registry.Push(t, appChart("app", "1.0.0"))
	privateRegistry := helmrepo.NewOCI(t, helmrepo.WithBasicAuth())
	privateRegistry.Push(t, appChart("app", "1.0.0"))
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"a range no version matches is not found", Options{URL: open.URL, Chart: "app", Version: ">=3.0.0"}, ErrNotFound},
		{"a chart the index lacks is not found", Options{URL: open.URL, Chart: "nope"}, ErrNotFound},
		{"a wrong password is an auth failure", Options{URL: private.URL, Chart: "app", Username: helmrepo.Username, Password: "nope"}, ErrAuth},
		{"no credentials is an auth failure", Options{URL: private.URL, Chart: "app"}, ErrAuth},
		{"a range no tag matches is not found in a registry", Options{URL: registry.URL, Type: TypeOCI, PlainHTTP: true, Chart: "app", Version: ">=3.0.0"}, ErrNotFound},
		{"a chart a registry lacks is not found", Options{URL: registry.URL, Type: TypeOCI, PlainHTTP: true, Chart: "nope"}, ErrNotFound},
		{"a wrong password to a registry is an auth failure", Options{URL: privateRegistry.URL, Type: TypeOCI, PlainHTTP: true, Chart: "app", Username: helmrepo.Username, Password: "nope"}, ErrAuth},
		{"no credentials for a registry is an auth failure", Options{URL: privateRegistry.URL, Type: TypeOCI, PlainHTTP: true, Chart: "app"}, ErrAuth},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Fetch(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchSendsCredentialsOnlyWhereTheyBelong(t *testing.T) {
	t.Parallel()
	private := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	digest := private.Add(t, appChart("app", "1.0.0"))
	privateRegistry := helmrepo.NewOCI(t, helmrepo.WithBasicAuth())
	ociDigest := privateRegistry.Push(t, appChart("app", "1.0.0"))
	// An open mirror whose index points at the private repository's
	// archive: another host, which gets the credentials only when they
	// are passed on.
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = fmt.Fprintf(w, "apiVersion: v1\nentries:\n  app:\n  - apiVersion: v2\n    name: app\n    version: 1.0.0\n    urls:\n    - %s/charts/app-1.0.0.tgz\n", private.URL)
	}))
	t.Cleanup(mirror.Close)
	tests := []struct {
		name   string
		opts   Options
		digest string
		want   error
	}{
		{"the right password opens a repository", Options{URL: private.URL, Chart: "app", Username: helmrepo.Username, Password: helmrepo.Password}, digest, nil},
		{"the right password opens a registry", Options{URL: privateRegistry.URL, Type: TypeOCI, PlainHTTP: true, Chart: "app", Username: helmrepo.Username, Password: helmrepo.Password}, ociDigest, nil},
		{"a chart on another host does not get the credentials", Options{URL: mirror.URL, Chart: "app", Username: helmrepo.Username, Password: helmrepo.Password}, "", ErrAuth},
		{"a chart on another host gets passed credentials", Options{URL: mirror.URL, Chart: "app", Username: helmrepo.Username, Password: helmrepo.Password, PassCredentials: true}, digest, nil},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.Fetch(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if err == nil {
				checkChart(t, c, "1.0.0", tt.digest)
			}
		})
	}
}

func TestFetchOverTLSTrustsTheGivenCA(t *testing.T) {
	t.Parallel()
	repo := helmrepo.NewHTTP(t, helmrepo.WithTLS())
	digest := repo.Add(t, appChart("app", "1.0.0"))
	registry := helmrepo.NewOCI(t, helmrepo.WithTLS())
	ociDigest := registry.Push(t, appChart("app", "1.0.0"))
	trusting := func(caPEM []byte) *tls.Config {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			t.Fatalf("no certificate in %q", caPEM)
		}
		return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tests := []struct {
		name   string
		opts   Options
		digest string
	}{
		{"a repository with its CA is trusted", Options{URL: repo.URL, Chart: "app", TLS: trusting(repo.CAPEM)}, digest},
		{"a repository without its CA is not", Options{URL: repo.URL, Chart: "app"}, ""},
		{"a registry with its CA is trusted", Options{URL: registry.URL, Type: TypeOCI, Chart: "app", TLS: trusting(registry.CAPEM)}, ociDigest},
		{"a registry without its CA is not", Options{URL: registry.URL, Type: TypeOCI, Chart: "app"}, ""},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.Fetch(t.Context(), tt.opts)
			if tt.digest == "" {
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Fatalf("error %v, want an unknown certificate authority", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, c, "1.0.0", tt.digest)
		})
	}
}

func TestFetchParsesAnUnchangedIndexOnce(t *testing.T) {
	t.Parallel()
	r := helmrepo.NewHTTP(t)
	digests := map[string]string{"1.0.0": r.Add(t, appChart("app", "1.0.0"))}
	var f Fetcher
	fetch := func(want string) error {
		c, err := f.Fetch(t.Context(), Options{URL: r.URL, Chart: "app"})
		if err != nil {
			return err
		}
		if c.Version != want || c.Digest != digests[want] {
			return fmt.Errorf("version %s with digest %s, want %s with %s", c.Version, c.Digest, want, digests[want])
		}
		return nil
	}
	check := func(step string, indexFetches, parses int) {
		t.Helper()
		if r.IndexFetches() != indexFetches || f.parses.Load() != int64(parses) {
			t.Fatalf("%s: %d index downloads and %d parses, want %d and %d", step, r.IndexFetches(), f.parses.Load(), indexFetches, parses)
		}
	}

	for range 2 {
		if err := fetch("1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	check("two fetches of one index", 2, 1)

	digests["1.1.0"] = r.Add(t, appChart("app", "1.1.0"))
	if err := fetch("1.1.0"); err != nil {
		t.Fatal(err)
	}
	check("a fetch after a new version", 3, 2)

	// Concurrent fetches of a new index wait for one parse instead of
	// each doing their own.
	digests["1.2.0"] = r.Add(t, appChart("app", "1.2.0"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- fetch("1.2.0") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	check("concurrent fetches after another version", 11, 3)
	if r.ChartFetches() != 11 {
		t.Fatalf("%d chart downloads, want one per fetch (11)", r.ChartFetches())
	}
}

func TestFetchRefusesOptionsItCannotServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no chart name", Options{URL: "http://127.0.0.1:1"}, "no chart name"},
		{"a range that does not parse", Options{URL: "http://127.0.0.1:1", Chart: "app", Version: "one"}, `version range "one"`},
		{"an unknown repository type", Options{URL: "http://127.0.0.1:1", Type: "git", Chart: "app"}, `repository type "git"`},
		{"an oci URL without type oci", Options{URL: "oci://127.0.0.1:1/charts", Chart: "app"}, "type oci"},
		{"type oci with an http URL", Options{URL: "http://127.0.0.1:1", Type: TypeOCI, Chart: "app"}, "needs an oci:// URL"},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Fetch(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestFetchGivesUpAfterTheTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts requests and never answers them.
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hanging.Close)
	host := strings.TrimPrefix(hanging.URL, "http://")
	tests := []struct {
		name string
		opts Options
	}{
		{"a repository that does not answer", Options{URL: hanging.URL, Chart: "app"}},
		// Helm's registry client makes its requests without a context.
		{"a registry that does not answer", Options{URL: "oci://" + host + "/charts", Type: TypeOCI, PlainHTTP: true, Chart: "app"}},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Timeout = 100 * time.Millisecond
			start := time.Now()
			_, err := f.Fetch(t.Context(), tt.opts)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want the deadline exceeded", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("gave up after %s, want about the 100ms timeout", took)
			}
		})
	}
}
