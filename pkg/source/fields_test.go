package source

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/s3server"
)

// clock is a reconciler's Now that the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now implements a reconciler's clock.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// tick moves the clock a minute on and returns the new time.
func (c *clock) tick() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Minute)
	return c.now
}

// checkUpdated fails unless the artifact was last updated at want.
func checkUpdated(t *testing.T, what string, a *sourcev1.Artifact, want time.Time) {
	t.Helper()
	if a == nil {
		t.Fatalf("%s: no artifact", what)
	}
	if !a.LastUpdateTime.Time.Equal(want) {
		t.Fatalf("%s: lastUpdateTime %s, want %s", what, a.LastUpdateTime.UTC(), want)
	}
}

// pushContent packs one file with content into an artifact and pushes it
// to url with r, returning the manifest digest.
func pushContent(t *testing.T, r oci.Remote, url, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	layer, err := oci.Pack(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := oci.Push(t.Context(), r, url, layer, oci.Metadata{Source: "https://git.example.com/app", Revision: "main@sha1:" + strings.Repeat("2", 40)})
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// TestAnArtifactsLastUpdateTimeIsWhenItsContentWasFetched fetches each
// kind of source three times, with the clock a minute on each time: once,
// again with nothing changed, and after a change. lastUpdateTime is the
// first fetch's time until the content changes, and a GitRepository's
// included artifacts carry the time their own GitRepository fetched them.
func TestAnArtifactsLastUpdateTimeIsWhenItsContentWasFetched(t *testing.T) {
	t.Run("a GitRepository and the artifacts it includes", func(t *testing.T) {
		t.Parallel()
		const ns = "updated-git"
		libServer, appServer := gitserver.New(t), gitserver.New(t)
		libServer.Commit(map[string]string{"lib.yaml": "lib: 1\n"})
		appServer.Commit(map[string]string{"app.yaml": "app: 1\n"})
		create(t, ns, secret(ns, "git", basicAuth))
		lib := gitRepo(ns, "lib", libServer.URL, nil)
		app := gitRepo(ns, "app", appServer.URL, func(s *sourcev1.GitRepositorySpec) {
			s.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "lib"}}}
		})
		createAll(t, lib, app)
		c := newClock()
		r := &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore(), Now: c.Now}

		libFetched := c.tick()
		gotLib, _ := fetchOnce(t, r, lib)
		checkUpdated(t, "lib", gotLib.Status.Artifact, libFetched)
		appFetched := c.tick()
		got, _ := fetchOnce(t, r, app)
		checkUpdated(t, "app", got.Status.Artifact, appFetched)
		if len(got.Status.IncludedArtifacts) != 1 {
			t.Fatalf("includedArtifacts %+v", got.Status.IncludedArtifacts)
		}
		checkUpdated(t, "app's include", got.Status.IncludedArtifacts[0], libFetched)

		c.tick()
		got, _ = fetchOnce(t, r, app)
		checkUpdated(t, "app unchanged", got.Status.Artifact, appFetched)
		checkUpdated(t, "app's include unchanged", got.Status.IncludedArtifacts[0], libFetched)

		appServer.Commit(map[string]string{"app.yaml": "app: 2\n"})
		appFetched = c.tick()
		got, _ = fetchOnce(t, r, app)
		checkUpdated(t, "app after a commit", got.Status.Artifact, appFetched)
		checkUpdated(t, "app's include after a commit of app", got.Status.IncludedArtifacts[0], libFetched)

		libServer.Commit(map[string]string{"lib.yaml": "lib: 2\n"})
		libFetched = c.tick()
		fetchOnce(t, r, lib)
		appFetched = c.tick()
		got, _ = fetchOnce(t, r, app)
		checkUpdated(t, "app after a commit of its include", got.Status.Artifact, appFetched)
		checkUpdated(t, "app's include after its commit", got.Status.IncludedArtifacts[0], libFetched)
	})

	t.Run("a Bucket", func(t *testing.T) {
		t.Parallel()
		const ns = "updated-bucket"
		s := s3server.New(t)
		s.CreateBucket(t, "manifests")
		s.Put(t, "manifests", "app.yaml", "app: 1\n")
		b := bucket(ns, "app", s, nil)
		create(t, ns, keys(ns), b)
		c := newClock()
		r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore(), Now: c.Now}

		fetched := c.tick()
		checkUpdated(t, "first fetch", reconcileBucket(t, r, b).Status.Artifact, fetched)
		c.tick()
		checkUpdated(t, "nothing changed", reconcileBucket(t, r, b).Status.Artifact, fetched)
		s.Put(t, "manifests", "app.yaml", "app: 2\n")
		fetched = c.tick()
		checkUpdated(t, "an object changed", reconcileBucket(t, r, b).Status.Artifact, fetched)
	})

	t.Run("an OCIRepository, whose digest is that of the files fetched", func(t *testing.T) {
		t.Parallel()
		const ns = "updated-oci"
		reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(reg.Close)
		url := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/manifests/app"
		pushContent(t, oci.Remote{}, url+":latest", "app: 1\n")
		repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
			URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "latest"}, Interval: metav1.Duration{Duration: time.Minute},
		}}
		create(t, ns, repo)
		c := newClock()
		r := &OCIRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore(), Now: c.Now}
		fetch := func() *sourcev1.OCIRepository {
			t.Helper()
			got := reconcileOCI(t, r, repo)
			// status.artifact.digest is the digest of the files in
			// memory, as Flux's is of its tarball.
			stored, ok := r.Store.Get(client.ObjectKeyFromObject(repo))
			if a := got.Status.Artifact; !ok || a == nil || a.Digest != oci.Digest(stored.Files) || !strings.HasPrefix(a.Digest, "sha256:") {
				t.Fatalf("artifact %+v, want the digest of the stored files (Ready %s)", got.Status.Artifact, readyOf(got.Status.Conditions))
			}
			return got
		}

		fetched := c.tick()
		first := fetch()
		checkUpdated(t, "first fetch", first.Status.Artifact, fetched)
		c.tick()
		checkUpdated(t, "nothing changed", fetch().Status.Artifact, fetched)
		pushContent(t, oci.Remote{}, url+":latest", "app: 2\n")
		fetched = c.tick()
		got := fetch()
		checkUpdated(t, "new content under the tag", got.Status.Artifact, fetched)
		if got.Status.Artifact.Digest == first.Status.Artifact.Digest {
			t.Fatalf("new content kept the digest %s", first.Status.Artifact.Digest)
		}
	})

	t.Run("a HelmChart", func(t *testing.T) {
		t.Parallel()
		const ns = "updated-helmchart"
		s := helmrepo.NewHTTP(t)
		s.Add(t, appChart("app", "1.0.0"))
		repo := helmRepository(ns, s.URL)
		hc := helmChart(ns, "app", "app", "1.x", "HelmRepository", "app")
		create(t, ns, repo, hc)
		repos := &HelmRepositoryReconciler{Client: cp.Client, Events: &events{}, Fetcher: &helm.Fetcher{}}
		reconcileHelmRepository(t, repos, repo)
		c := newClock()
		r := newHelmChartReconciler(&events{})
		r.Now = c.Now

		fetched := c.tick()
		got, _ := reconcileHelmChart(t, r, hc)
		checkUpdated(t, "first pull", got.Status.Artifact, fetched)
		c.tick()
		got, _ = reconcileHelmChart(t, r, hc)
		checkUpdated(t, "nothing changed", got.Status.Artifact, fetched)
		s.Add(t, appChart("app", "1.1.0"))
		reconcileHelmRepository(t, repos, repo)
		fetched = c.tick()
		got, _ = reconcileHelmChart(t, r, hc)
		checkUpdated(t, "a new version in range", got.Status.Artifact, fetched)
	})
}

// hangingServer accepts requests and answers none until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return srv
}

// TestAFetchGivesUpAtItsSpecTimeout points each kind of source at a
// server that never answers, with spec.timeout 1s: the reconcile ends
// with Ready=False long before the default 60s.
func TestAFetchGivesUpAtItsSpecTimeout(t *testing.T) {
	timeout := &metav1.Duration{Duration: time.Second}
	tests := []struct {
		name string
		// fetch reconciles the source made for the server at host and
		// returns its conditions.
		fetch func(t *testing.T, ns, url string) []metav1.Condition
	}{
		{"a GitRepository", func(t *testing.T, ns, url string) []metav1.Condition {
			create(t, ns, secret(ns, "git", basicAuth))
			repo := gitRepo(ns, "app", url+"/app.git", func(s *sourcev1.GitRepositorySpec) { s.Timeout = timeout })
			createAll(t, repo)
			got, _ := fetchOnce(t, &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}, repo)
			return got.Status.Conditions
		}},
		{"an OCIRepository", func(t *testing.T, ns, url string) []metav1.Condition {
			repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
				URL: "oci://" + strings.TrimPrefix(url, "http://") + "/app", Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"},
				Interval: metav1.Duration{Duration: time.Minute}, Timeout: timeout,
			}}
			create(t, ns, repo)
			r := &OCIRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
			got := reconcileOCI(t, r, repo)
			return got.Status.Conditions
		}},
		{"a Bucket", func(t *testing.T, ns, url string) []metav1.Condition {
			b := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sourcev1.BucketSpec{
				BucketName: "manifests", Endpoint: strings.TrimPrefix(url, "http://"), Insecure: true,
				SecretRef: &sourcev1.LocalObjectReference{Name: "keys"}, Interval: metav1.Duration{Duration: time.Minute}, Timeout: timeout,
			}}
			create(t, ns, keys(ns), b)
			return reconcileBucket(t, &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}, b).Status.Conditions
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := hangingServer(t)
			start := time.Now()
			conditions := tt.fetch(t, "timeout-"+string(rune('a'+i)), srv.URL)
			took := time.Since(start)
			if ready := meta.FindStatusCondition(conditions, "Ready"); ready == nil || ready.Status != metav1.ConditionFalse {
				t.Fatalf("Ready is %s, want False", readyOf(conditions))
			}
			if took < time.Second || took > 20*time.Second {
				t.Fatalf("the fetch gave up after %s, want about spec.timeout's 1s", took)
			}
		})
	}
}

// TestAnOCIRepositoryUsesPlainHTTPOnlyWhenInsecure serves a registry over
// plain HTTP on 127.0.0.2, an address go-containerregistry does not
// treat as local, so that only spec.insecure lets the pull fall back
// from HTTPS to HTTP.
func TestAnOCIRepositoryUsesPlainHTTPOnlyWhenInsecure(t *testing.T) {
	t.Parallel()
	const ns = "oci-insecure"
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := &http.Server{Handler: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := reg.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("registry: %v", err)
		}
	}()
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })
	url := "oci://" + l.Addr().String() + "/manifests/app"
	digest := pushContent(t, oci.Remote{Insecure: true}, url+":1.0.0", "app: 1\n")
	create(t, ns)
	tests := []struct {
		name     string
		insecure bool
	}{
		{"insecure pulls over plain HTTP", true},
		{"without insecure only HTTPS is tried, and fails", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app-" + string(rune('a'+i)), Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
				URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Minute},
				Insecure: tt.insecure, Timeout: &metav1.Duration{Duration: 10 * time.Second},
			}}
			createAll(t, repo)
			r := &OCIRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
			got := reconcileOCI(t, r, repo)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if tt.insecure {
				if got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0@"+digest {
					t.Fatalf("Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
				}
				return
			}
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != sourcev1.ReasonOCIPullFailed || !strings.Contains(ready.Message, "HTTP response to HTTPS client") {
				t.Fatalf("Ready is %s, want the HTTPS attempt to fail", readyOf(got.Status.Conditions))
			}
		})
	}
}

// TestASuspendedHelmRepositoryOrHelmChartFetchesNothing reconciles a
// suspended HelmRepository and a suspended HelmChart: each says it is
// suspended, downloads nothing and is not requeued, until spec.suspend
// is unset.
func TestASuspendedHelmRepositoryOrHelmChartFetchesNothing(t *testing.T) {
	t.Run("a HelmRepository", func(t *testing.T) {
		t.Parallel()
		const ns = "helmrepo-suspend"
		s := helmrepo.NewHTTP(t)
		s.Add(t, appChart("app", "1.0.0"))
		repo := helmRepository(ns, s.URL)
		repo.Spec.Suspend = true
		create(t, ns, repo)
		r := &HelmRepositoryReconciler{Client: cp.Client, Events: &events{}, Fetcher: &helm.Fetcher{}}
		got, res := reconcileHelmRepository(t, r, repo)
		if ready := meta.FindStatusCondition(got.Status.Conditions, "Ready"); ready == nil || ready.Reason != sourcev1.ReasonSuspended || got.Status.Artifact != nil || s.IndexFetches() != 0 || res.RequeueAfter != 0 {
			t.Fatalf("suspended: Ready is %s, artifact %+v, %d index downloads, requeue after %s", readyOf(got.Status.Conditions), got.Status.Artifact, s.IndexFetches(), res.RequeueAfter)
		}
		got.Spec.Suspend = false
		if err := cp.Client.Update(t.Context(), got); err != nil {
			t.Fatal(err)
		}
		if got, _ = reconcileHelmRepository(t, r, got); got.Status.Artifact == nil || s.IndexFetches() != 1 {
			t.Fatalf("resumed: Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
		}
	})

	t.Run("a HelmChart", func(t *testing.T) {
		t.Parallel()
		const ns = "helmchart-suspend"
		s := helmrepo.NewHTTP(t)
		s.Add(t, appChart("app", "1.0.0"))
		repo := helmRepository(ns, s.URL)
		hc := helmChart(ns, "app", "app", "1.x", "HelmRepository", "app")
		hc.Spec.Suspend = true
		create(t, ns, repo, hc)
		reconcileHelmRepository(t, &HelmRepositoryReconciler{Client: cp.Client, Events: &events{}, Fetcher: &helm.Fetcher{}}, repo)
		r := newHelmChartReconciler(&events{})
		got, res := reconcileHelmChart(t, r, hc)
		_, stored := r.Charts.Get(client.ObjectKeyFromObject(hc))
		if ready := meta.FindStatusCondition(got.Status.Conditions, "Ready"); ready == nil || ready.Reason != sourcev1.ReasonSuspended || got.Status.Artifact != nil || stored || s.ChartFetches() != 0 || res.RequeueAfter != 0 {
			t.Fatalf("suspended: Ready is %s, artifact %+v, stored %v, %d chart downloads, requeue after %s", readyOf(got.Status.Conditions), got.Status.Artifact, stored, s.ChartFetches(), res.RequeueAfter)
		}
		got.Spec.Suspend = false
		if err := cp.Client.Update(t.Context(), got); err != nil {
			t.Fatal(err)
		}
		if got, _ = reconcileHelmChart(t, r, got); got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0" {
			t.Fatalf("resumed: Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
		}
	})
}

// TestAHelmChartRecordsEachReconcileRequestItHandled annotates a
// HelmChart with reconcile.fluxcd.io/requestedAt, and checks that
// status.lastHandledReconcileAt follows each new value.
func TestAHelmChartRecordsEachReconcileRequestItHandled(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-request"
	s := helmrepo.NewHTTP(t)
	s.Add(t, appChart("app", "1.0.0"))
	repo := helmRepository(ns, s.URL)
	hc := helmChart(ns, "app", "app", "1.x", "HelmRepository", "app")
	create(t, ns, repo, hc)
	reconcileHelmRepository(t, &HelmRepositoryReconciler{Client: cp.Client, Events: &events{}, Fetcher: &helm.Fetcher{}}, repo)
	r := newHelmChartReconciler(&events{})
	got, _ := reconcileHelmChart(t, r, hc)
	if got.Status.LastHandledReconcileAt != "" {
		t.Fatalf("lastHandledReconcileAt %q without a request", got.Status.LastHandledReconcileAt)
	}
	for _, at := range []string{"2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z"} {
		got.Annotations = map[string]string{sourcev1.ReconcileRequestAnnotation: at}
		if err := cp.Client.Update(t.Context(), got); err != nil {
			t.Fatal(err)
		}
		if got, _ = reconcileHelmChart(t, r, got); got.Status.LastHandledReconcileAt != at {
			t.Fatalf("lastHandledReconcileAt %q, want %q", got.Status.LastHandledReconcileAt, at)
		}
	}
}
