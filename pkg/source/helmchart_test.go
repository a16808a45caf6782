package source

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
)

// helmChart is a HelmChart named name in ns, checked every minute.
func helmChart(ns, name, chartName, version, kind, source string) *sourcev1.HelmChart {
	return &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sourcev1.HelmChartSpec{
			Chart: chartName, Version: version, Interval: metav1.Duration{Duration: time.Minute},
			SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: kind, Name: source},
		},
	}
}

func newHelmChartReconciler(ev *events) *HelmChartReconciler {
	return &HelmChartReconciler{Client: cp.Client, Events: ev, Fetcher: &helm.Fetcher{}, Charts: NewChartStore(), Sources: NewStore()}
}

func reconcileHelmChart(t *testing.T, r *HelmChartReconciler, hc *sourcev1.HelmChart) (*sourcev1.HelmChart, ctrl.Result) {
	t.Helper()
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(hc)})
	if err != nil {
		t.Fatal(err)
	}
	got := &sourcev1.HelmChart{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hc), got); err != nil {
		t.Fatal(err)
	}
	return got, res
}

// checkLoaded fails unless hc is Ready with reason and revision, and the
// store holds that revision with the same digest and a chart saying so.
func checkLoaded(t *testing.T, r *HelmChartReconciler, hc *sourcev1.HelmChart, reason, revision string) *StoredChart {
	t.Helper()
	ready := meta.FindStatusCondition(hc.Status.Conditions, "Ready")
	verb := map[string]string{sourcev1.ReasonChartPullSucceeded: "pulled", sourcev1.ReasonChartPackageSucceeded: "packaged"}[reason]
	if want := fmt.Sprintf("%s 'app' chart with version '%s'", verb, revision); ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != reason || ready.Message != want {
		t.Fatalf("Ready is %s, want True %s: %s", readyOf(hc.Status.Conditions), reason, want)
	}
	if a := hc.Status.Artifact; a == nil || a.Revision != revision || !strings.HasPrefix(a.Digest, "sha256:") || hc.Status.ObservedChartName != "app" {
		t.Fatalf("status %+v, want artifact revision %s of chart app", hc.Status, revision)
	}
	stored, ok := r.Charts.Get(client.ObjectKeyFromObject(hc))
	if !ok || stored.Revision != revision || stored.Digest != hc.Status.Artifact.Digest || stored.Chart.Metadata.Version != revision {
		t.Fatalf("store holds %+v, want revision %s and digest %s", stored, revision, hc.Status.Artifact.Digest)
	}
	return stored
}

func TestAHelmChartFromARepositoryFollowsItsVersionRange(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-range"
	s := helmrepo.NewHTTP(t)
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.0.1", "1.1.0"} {
		digests[v] = s.Add(t, appChart("app", v))
	}
	repo := helmRepository(ns, s.URL)
	hc := helmChart(ns, "app", "app", "1.0.x", "HelmRepository", "app")
	create(t, ns, repo, hc)
	repo, _ = reconcileHelmRepository(t, &HelmRepositoryReconciler{Client: cp.Client, Events: &events{}, Fetcher: &helm.Fetcher{}}, repo)
	ev := &events{}
	r := newHelmChartReconciler(ev)

	got, res := reconcileHelmChart(t, r, hc)
	stored := checkLoaded(t, r, got, sourcev1.ReasonChartPullSucceeded, "1.0.1")
	if got.Status.Artifact.Digest != digests["1.0.1"] || got.Status.ObservedSourceArtifactRevision != repo.Status.Artifact.Revision {
		t.Fatalf("artifact %+v from %s, want the archive digest %s from the index %s", got.Status.Artifact, got.Status.ObservedSourceArtifactRevision, digests["1.0.1"], repo.Status.Artifact.Revision)
	}
	if stored.Chart.Values["image"] != "app:1.0.1" || res.RequeueAfter != time.Minute {
		t.Fatalf("stored values %v, requeue after %s", stored.Chart.Values, res.RequeueAfter)
	}
	got, _ = reconcileHelmChart(t, r, got)
	checkLoaded(t, r, got, sourcev1.ReasonChartPullSucceeded, "1.0.1")

	digests["1.0.2"] = s.Add(t, appChart("app", "1.0.2"))
	got, _ = reconcileHelmChart(t, r, got)
	checkLoaded(t, r, got, sourcev1.ReasonChartPullSucceeded, "1.0.2")
	if got.Status.Artifact.Digest != digests["1.0.2"] {
		t.Fatalf("digest %s, want %s", got.Status.Artifact.Digest, digests["1.0.2"])
	}
	if fmt.Sprint(ev.reasons) != "[ChartPullSucceeded ChartPullSucceeded]" {
		t.Fatalf("events %v, want one ChartPullSucceeded per revision", ev.reasons)
	}

	if err := cp.Client.Delete(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(got)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Charts.Get(client.ObjectKeyFromObject(got)); ok {
		t.Fatal("a deleted HelmChart's chart is still stored")
	}
}

func TestAHelmChartFromAnOCIRepositoryLoadsTheHighestTagInRange(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-oci"
	registry := helmrepo.NewOCI(t, helmrepo.WithBasicAuth())
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.2.0", "2.0.0"} {
		digests[v] = registry.Push(t, appChart("app", v))
	}
	repo := helmRepository(ns, registry.URL)
	repo.Spec.Type, repo.Spec.Insecure = sourcev1.HelmRepositoryTypeOCI, true
	repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "registry"}
	hc := helmChart(ns, "app", "app", "^1", "HelmRepository", "app")
	create(t, ns, secret(ns, "registry", map[string]string{"username": helmrepo.Username, "password": helmrepo.Password}), repo, hc)
	r := newHelmChartReconciler(&events{})

	got, _ := reconcileHelmChart(t, r, hc)
	checkLoaded(t, r, got, sourcev1.ReasonChartPullSucceeded, "1.2.0")
	if got.Status.Artifact.Digest != digests["1.2.0"] || got.Status.ObservedSourceArtifactRevision != "" {
		t.Fatalf("artifact %+v from %q, want digest %s and no source revision", got.Status.Artifact, got.Status.ObservedSourceArtifactRevision, digests["1.2.0"])
	}

	// The same registry through a kubernetes.io/dockerconfigjson Secret.
	host, _, _ := strings.Cut(strings.TrimPrefix(registry.URL, "oci://"), "/")
	docker := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "docker", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths": {%q: {"username": %q, "password": %q}}}`, host, helmrepo.Username, helmrepo.Password)},
	}
	dockerRepo := helmRepository(ns, registry.URL)
	dockerRepo.Name = "docker"
	dockerRepo.Spec.Type, dockerRepo.Spec.Insecure = sourcev1.HelmRepositoryTypeOCI, true
	dockerRepo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "docker"}
	dockerChart := helmChart(ns, "docker", "app", "^1", "HelmRepository", "docker")
	for _, o := range []client.Object{docker, dockerRepo, dockerChart} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = reconcileHelmChart(t, r, dockerChart)
	if a := got.Status.Artifact; a == nil || a.Revision != "1.2.0" {
		t.Fatalf("through the dockerconfigjson Secret: %s", readyOf(got.Status.Conditions))
	}
}

// gitChart is the files of chart app 1.0.0 under charts/app, whose
// template says what.
func gitChart(what string) map[string]string {
	return map[string]string{
		"charts/app/Chart.yaml":               "apiVersion: v2\nname: app\nversion: 1.0.0\n",
		"charts/app/values.yaml":              "image: app:1.0.0\n",
		"charts/app/templates/configmap.yaml": "kind: ConfigMap\nsays: " + what + "\n",
	}
}

func TestAHelmChartFromGitFollowsItsReconcileStrategy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ns       string
		strategy string
		// revision is the revision expected from a commit.
		revision func(commit string) string
	}{
		{
			name: "under ChartVersion a commit without a version bump keeps the revision and changes only the digest",
			ns:   "helmchart-git-version", strategy: sourcev1.ReconcileStrategyChartVersion,
			revision: func(string) string { return "1.0.0" },
		},
		{
			name: "under Revision every commit is a new revision with the commit as build metadata",
			ns:   "helmchart-git-revision", strategy: sourcev1.ReconcileStrategyRevision,
			revision: func(commit string) string { return "1.0.0+" + commit[:12] },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := gitserver.New(t)
			first := s.Commit(gitChart("hello"))
			auth, repo := s.Source(tt.ns, "app", time.Minute)
			hc := helmChart(tt.ns, "app", "./charts/app", "", "GitRepository", "app")
			hc.Spec.ReconcileStrategy = tt.strategy
			create(t, tt.ns, auth, repo, hc)
			ev := &events{}
			r := newHelmChartReconciler(ev)
			gitRepos := &GitRepositoryReconciler{Client: cp.Client, Events: &events{}, Store: r.Sources}

			reconcile(t, gitRepos, repo)
			got, _ := reconcileHelmChart(t, r, hc)
			stored := checkLoaded(t, r, got, sourcev1.ReasonChartPackageSucceeded, tt.revision(first))
			if got.Status.ObservedSourceArtifactRevision != "main@sha1:"+first || string(stored.Chart.Templates[0].Data) != "kind: ConfigMap\nsays: hello\n" {
				t.Fatalf("loaded %q from %s", stored.Chart.Templates[0].Data, got.Status.ObservedSourceArtifactRevision)
			}
			firstDigest := got.Status.Artifact.Digest

			second := s.Commit(map[string]string{"charts/app/templates/configmap.yaml": "kind: ConfigMap\nsays: goodbye\n"})
			reconcile(t, gitRepos, repo)
			got, _ = reconcileHelmChart(t, r, got)
			stored = checkLoaded(t, r, got, sourcev1.ReasonChartPackageSucceeded, tt.revision(second))
			if got.Status.Artifact.Digest == firstDigest || string(stored.Chart.Templates[0].Data) != "kind: ConfigMap\nsays: goodbye\n" {
				t.Fatalf("after a template change: digest %s (was %s), template %q", got.Status.Artifact.Digest, firstDigest, stored.Chart.Templates[0].Data)
			}
			wantEvents := 1
			if tt.revision(first) != tt.revision(second) {
				wantEvents = 2
			}
			if n := strings.Count(fmt.Sprint(ev.reasons), sourcev1.ReasonChartPackageSucceeded); n != wantEvents || len(ev.reasons) != n {
				t.Fatalf("events %v, want %d %s, one per revision", ev.reasons, wantEvents, sourcev1.ReasonChartPackageSucceeded)
			}
		})
	}
}

func TestAHelmChartMergesItsValuesFilesInOrder(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-values"
	s := helmrepo.NewHTTP(t)
	ch := helmrepo.NewChart("app", "1.0.0", map[string]string{"configmap.yaml": "kind: ConfigMap\n"},
		map[string]any{"image": "base", "replicas": 1, "service": map[string]any{"port": 80, "type": "ClusterIP"}})
	ch.Files = append(ch.Files,
		&common.File{Name: "values-a.yaml", Data: []byte("image: a\nservice:\n  port: 81\n")},
		&common.File{Name: "values-b.yaml", Data: []byte("image: b\nservice:\n  type: NodePort\n")},
		&common.File{Name: "values-c.yaml", Data: []byte("replicas: 5\n")})
	s.Add(t, ch)
	// The same chart in Git, with values files at the root of the
	// repository, where Flux looks for them, one of them named as one of
	// the chart's.
	artifact := &git.Artifact{Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", Files: map[string][]byte{
		"charts/app/Chart.yaml":      []byte("apiVersion: v2\nname: app\nversion: 1.0.0\n"),
		"charts/app/values.yaml":     []byte("image: base\nreplicas: 1\n"),
		"charts/app/values-a.yaml":   []byte("image: a\n"),
		"charts/app/values-git.yaml": []byte("replicas: 7\n"),
		"values-a.yaml":              []byte("image: root\n"),
		"prod/values.yaml":           []byte("replicas: 3\n"),
	}}
	create(t, ns, helmRepository(ns, s.URL))
	tests := []struct {
		name       string
		git        bool
		valuesFile string
		files      []string
		ignore     bool
		values     string
		observed   []string
	}{
		{"no values files keep the chart's values", false, "", nil, false, "map[image:base replicas:1 service:map[port:80 type:ClusterIP]]", nil},
		{"a then b replace values.yaml: the last file wins where both set a value, and maps merge", false, "", []string{"values-a.yaml", "values-b.yaml"}, false, "map[image:b service:map[port:81 type:NodePort]]", []string{"values-a.yaml", "values-b.yaml"}},
		{"b then a: the order decides", false, "", []string{"./values-b.yaml", "values-a.yaml"}, false, "map[image:a service:map[port:81 type:NodePort]]", []string{"./values-b.yaml", "values-a.yaml"}},
		{"the chart's values.yaml counts only when listed, in its place", false, "", []string{"values.yaml", "values-c.yaml"}, false, "map[image:base replicas:5 service:map[port:80 type:ClusterIP]]", []string{"values.yaml", "values-c.yaml"}},
		{"a chart from Git reads paths from the repository's root, as Flux does", true, "", []string{"charts/app/values-a.yaml", "prod/values.yaml"}, false, "map[image:a replicas:3]", []string{"charts/app/values-a.yaml", "prod/values.yaml"}},
		{"a file at the root wins over the chart's file of that name", true, "", []string{"values-a.yaml"}, false, "map[image:root]", []string{"values-a.yaml"}},
		{"a path the root lacks is read from the chart", true, "", []string{"values-git.yaml"}, false, "map[replicas:7]", []string{"values-git.yaml"}},
		{"the deprecated valuesFile merges before valuesFiles", false, "values-a.yaml", []string{"values-c.yaml", "values-b.yaml"}, false, "map[image:b replicas:5 service:map[port:81 type:NodePort]]", []string{"values-a.yaml", "values-c.yaml", "values-b.yaml"}},
		{"ignoreMissingValuesFiles skips a file the chart does not hold", false, "", []string{"values-c.yaml", "missing.yaml"}, true, "map[replicas:5]", []string{"values-c.yaml"}},
		{"with no listed file found the chart has no default values, as in Flux", false, "", []string{"missing.yaml"}, true, "map[]", nil},
	}
	r := newHelmChartReconciler(&events{})
	r.Sources.put(types.NamespacedName{Namespace: ns, Name: "app"}, artifact)
	var digests []string
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := helmChart(ns, fmt.Sprintf("values-%d", i), "app", "", "HelmRepository", "app")
			if tt.git {
				hc.Spec.Chart, hc.Spec.SourceRef.Kind = "charts/app", "GitRepository"
			}
			hc.Spec.ValuesFile, hc.Spec.ValuesFiles, hc.Spec.IgnoreMissingValuesFiles = tt.valuesFile, tt.files, tt.ignore
			if err := cp.Client.Create(t.Context(), hc); err != nil {
				t.Fatal(err)
			}
			got, _ := reconcileHelmChart(t, r, hc)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			stored, ok := r.Charts.Get(client.ObjectKeyFromObject(hc))
			if ready == nil || ready.Status != metav1.ConditionTrue || !ok {
				t.Fatalf("Ready is %s", readyOf(got.Status.Conditions))
			}
			if v := fmt.Sprint(stored.Chart.Values); v != tt.values {
				t.Fatalf("values %s, want %s", v, tt.values)
			}
			if !slices.Equal(got.Status.ObservedValuesFiles, tt.observed) {
				t.Fatalf("observedValuesFiles %v, want %v", got.Status.ObservedValuesFiles, tt.observed)
			}
			if slices.Contains(digests, stored.Digest) {
				t.Fatalf("digest %s is that of other values", stored.Digest)
			}
			digests = append(digests, stored.Digest)
		})
	}
}

func TestAHelmChartThatCannotBeLoadedSaysWhy(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-failures"
	private := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	private.Add(t, appChart("app", "1.0.0"))
	repo := helmRepository(ns, private.URL)
	repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "helm"}
	wrong := helmRepository(ns, private.URL)
	wrong.Name, wrong.Spec.SecretRef = "wrong", &sourcev1.LocalObjectReference{Name: "wrong"}
	create(t, ns, repo, wrong,
		secret(ns, "helm", map[string]string{"username": helmrepo.Username, "password": helmrepo.Password}),
		secret(ns, "wrong", map[string]string{"username": helmrepo.Username, "password": "nope"}))
	tests := []struct {
		name    string
		chart   *sourcev1.HelmChart
		reason  string
		message string
		requeue time.Duration
	}{
		{"a wrong password is an authentication failure", helmChart(ns, "wrong-password", "app", "", "HelmRepository", "wrong"), sourcev1.ReasonAuthenticationFailed, "authentication failed", time.Minute},
		{"a version range no chart has is a pull error", helmChart(ns, "no-version", "app", ">=2.0.0", "HelmRepository", "app"), sourcev1.ReasonChartPullError, `no version of "app" in range ">=2.0.0"`, time.Minute},
		{"a missing HelmRepository is an artifact failure tried again soon", helmChart(ns, "no-repository", "app", "", "HelmRepository", "nope"), sourcev1.ReasonArtifactFailed, "HelmRepository nope", sourceWait},
		{"a GitRepository without an artifact yet is an artifact failure tried again soon", helmChart(ns, "no-artifact", "charts/app", "", "GitRepository", "app"), sourcev1.ReasonArtifactFailed, "GitRepository app has no artifact yet", sourceWait},
		{"a path without a chart in Git is a package error", helmChart(ns, "no-chart", "charts/nope", "", "GitRepository", "with-artifact"), sourcev1.ReasonChartPackageError, "charts/nope/Chart.yaml is missing", time.Minute},
		{"a missing values file is named", func() *sourcev1.HelmChart {
			hc := helmChart(ns, "no-values-file", "app", "", "HelmRepository", "app")
			hc.Spec.ValuesFiles = []string{"values-prod.yaml"}
			return hc
		}(), sourcev1.ReasonValuesFilesError, "spec.valuesFiles: values-prod.yaml: no such file in chart app", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := cp.Client.Create(t.Context(), tt.chart); err != nil {
				t.Fatal(err)
			}
			ev := &events{}
			r := newHelmChartReconciler(ev)
			r.Sources.put(types.NamespacedName{Namespace: ns, Name: "with-artifact"}, &git.Artifact{Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", Files: map[string][]byte{"README.md": []byte("# no chart\n")}})
			got, res := reconcileHelmChart(t, r, tt.chart)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tt.reason || !strings.Contains(ready.Message, tt.message) {
				t.Fatalf("Ready is %s, want False %s saying %q", readyOf(got.Status.Conditions), tt.reason, tt.message)
			}
			if fmt.Sprint(ev.reasons) != "["+tt.reason+"]" || res.RequeueAfter != tt.requeue {
				t.Fatalf("events %v and requeue after %s, want one %s warning and %s", ev.reasons, res.RequeueAfter, tt.reason, tt.requeue)
			}
			if _, ok := r.Charts.Get(client.ObjectKeyFromObject(tt.chart)); ok || got.Status.Artifact != nil {
				t.Fatal("a failed load stored a chart")
			}
		})
	}
}

// indexedReader is the cache of a manager with the HelmChart source
// indexes SetupWithManager registers, so that a test reads through them
// as the watches do.
func indexedReader(t *testing.T) client.Reader {
	t.Helper()
	mgr := cp.StartManager(t, func(mgr ctrl.Manager) error { return addHelmChartIndexes(t.Context(), mgr.GetFieldIndexer()) })
	if !mgr.GetCache().WaitForCacheSync(t.Context()) {
		t.Fatal("the manager's cache did not sync")
	}
	return mgr.GetClient()
}

// enqueued is what a source's update enqueues, through the index, once
// the cache holds what it should: it is waited for until it is want.
func enqueued(t *testing.T, c client.Reader, kind string, source client.Object, want string) {
	t.Helper()
	controlplane.Eventually(t, 10*time.Second, kind+" "+source.GetName()+" enqueues "+want, func(ctx context.Context) (bool, string) {
		var got []string
		for _, req := range bySource(c, kind)(ctx, source) {
			got = append(got, req.String())
		}
		return fmt.Sprint(got) == want, fmt.Sprintf("enqueued %v", got)
	})
}

func TestAHelmChartIsEnqueuedByTheSourceItNames(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-watch"
	create(t, ns,
		helmChart(ns, "from-git", "charts/app", "", "GitRepository", "app"),
		helmChart(ns, "from-other-git", "charts/app", "", "GitRepository", "other"),
		helmChart(ns, "from-helm", "app", "", "HelmRepository", "app"))
	c := indexedReader(t)
	source := metav1.ObjectMeta{Name: "app", Namespace: ns}
	tests := []struct {
		name   string
		kind   string
		source client.Object
		want   string
	}{
		{"a GitRepository enqueues the HelmCharts built from it", "GitRepository", &sourcev1.GitRepository{ObjectMeta: source}, "[" + ns + "/from-git]"},
		{"a HelmRepository enqueues the HelmCharts pulled from it", "HelmRepository", &sourcev1.HelmRepository{ObjectMeta: source}, "[" + ns + "/from-helm]"},
		{"a source in another namespace enqueues nothing", "GitRepository", &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enqueued(t, c, tt.kind, tt.source, tt.want)
		})
	}
}
