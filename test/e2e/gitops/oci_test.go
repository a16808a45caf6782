package gitops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/inprocess"
)

// runSluicectl runs the command line in-process, as a user would run it, and
// returns what it printed.
func runSluicectl(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &errOut})
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("sluicectl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// pushManifests writes a ConfigMap manifest naming version into a folder
// and pushes the folder as url:version with `sluicectl push artifact`. It
// returns the manifest digest.
func pushManifests(t *testing.T, url, version string) string {
	t.Helper()
	dir := t.TempDir()
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings}\ndata: {version: \"" + version + "\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	// Left out by the push, as by Flux's: it must never reach the cluster.
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "broken.yaml"), []byte("kind: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runSluicectl(t, "push", "artifact", url+":"+version, "--path", dir, "--source", "https://git.example.com/fleet", "--revision", "main@sha1:"+strings.Repeat(version[:1], 40))
	digest, ok := strings.CutPrefix(strings.TrimSpace(out), url+":"+version+" pushed: ")
	if !ok {
		t.Fatalf("push printed %q", out)
	}
	return digest
}

// settingsVersion is the version the applied ConfigMap names, or "".
func settingsVersion(ctx context.Context, namespace string) string {
	cm := &corev1.ConfigMap{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-settings"}, cm); err != nil {
		return ""
	}
	return cm.Data["version"]
}

// waitObject waits until cond holds for the object at key, read into obj.
func waitObject[T status.Object](t *testing.T, timeout time.Duration, obj T, key client.ObjectKey, what string, cond func(T) bool) T {
	t.Helper()
	controlplane.Eventually(t, timeout, what, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, key, obj); err != nil {
			return false, err.Error()
		}
		return cond(obj), fmt.Sprintf("%T status %+v", obj, obj.GetConditions())
	})
	return obj
}

func annotateReconcile(t *testing.T, obj client.Object, value string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, value)
	if err := cp.Client.Patch(t.Context(), obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

func TestAnArtifactPushedWithSluicectlIsAppliedAndANewTagInTheRangeFollows(t *testing.T) {
	const namespace = "ociops"
	reg := imageregistry.New(t)
	url := "oci://" + reg.Image("manifests/app")
	first := pushManifests(t, url, "1.0.0")
	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace},
		Spec: sourcev1.OCIRepositorySpec{
			URL: url, Reference: &sourcev1.OCIRepositoryRef{SemVer: "1.x"},
			Interval: metav1.Duration{Duration: 2 * time.Second},
		},
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		repo,
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: "app"},
			Prune:     true, TargetNamespace: namespace, Interval: metav1.Duration{Duration: time.Hour},
		}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	ksKey := client.ObjectKey{Namespace: namespace, Name: "app"}
	applied := func(revision string) func(*syncv1.Kustomization) bool {
		return func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == revision && status.Ready(ks)
		}
	}

	// 1. The pushed artifact is pulled, with its revision and the push's
	// annotations, and applied.
	waitObject(t, time.Minute, &syncv1.Kustomization{}, ksKey, "1.0.0 applied", applied("1.0.0@"+first))
	if v := settingsVersion(t.Context(), namespace); v != "1.0.0" {
		t.Fatalf("the ConfigMap names %q", v)
	}
	got := &sourcev1.OCIRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	if a := got.Status.Artifact; a == nil || a.Revision != "1.0.0@"+first || a.Metadata[oci.SourceAnnotation] != "https://git.example.com/fleet" || a.Metadata[oci.RevisionAnnotation] != "main@sha1:"+strings.Repeat("1", 40) {
		t.Fatalf("artifact %+v", got.Status.Artifact)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, "Ready"); c == nil || c.Reason != sourcev1.ReasonSucceeded || c.Message != "stored artifact for digest '1.0.0@"+first+"'" {
		t.Fatalf("Ready %+v", c)
	}
	// The Kustomization reports the revision the artifact was built
	// from, as Flux's lastAppliedOriginRevision.
	ks := &syncv1.Kustomization{}
	if err := cp.Client.Get(t.Context(), ksKey, ks); err != nil {
		t.Fatal(err)
	}
	if want := "main@sha1:" + strings.Repeat("1", 40); ks.Status.LastAppliedOriginRevision != want || len(ks.Status.History) == 0 || ks.Status.History[0].Metadata["originRevision"] != want {
		t.Fatalf("lastAppliedOriginRevision %q and history %+v, want %s", ks.Status.LastAppliedOriginRevision, ks.Status.History, want)
	}

	// 2. A tag out of the range is not followed; one in it is, on the
	// next interval, with no other prompt.
	pushManifests(t, url, "2.0.0")
	second := pushManifests(t, url, "1.1.0")
	pushedAt := time.Now()
	waitObject(t, 30*time.Second, &syncv1.Kustomization{}, ksKey, "1.1.0 applied on the interval", applied("1.1.0@"+second))
	t.Logf("1.1.0 applied %s after its push, at an interval of 2s", time.Since(pushedAt).Round(time.Millisecond))
	if v := settingsVersion(t.Context(), namespace); v != "1.1.0" {
		t.Fatalf("the ConfigMap names %q", v)
	}

	// 3. At an interval of an hour, a new tag waits for the next look; a
	// reconcile request, as a Receiver sends, is that look at once.
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), repo); err != nil {
		t.Fatal(err)
	}
	before := repo.DeepCopy()
	repo.Spec.Interval = metav1.Duration{Duration: time.Hour}
	if err := cp.Client.Patch(t.Context(), repo, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitObject(t, 30*time.Second, &sourcev1.OCIRepository{}, client.ObjectKeyFromObject(repo), "the hourly interval observed", func(r *sourcev1.OCIRepository) bool { return status.Ready(r) })
	third := pushManifests(t, url, "1.2.0")
	// An absence cannot be waited for: a pause longer than the old
	// interval shows that nothing but the request below picks 1.2.0 up.
	time.Sleep(3 * time.Second)
	if v := settingsVersion(t.Context(), namespace); v != "1.1.0" {
		t.Fatalf("1.2.0 was applied before any look: the ConfigMap names %q", v)
	}
	requested := time.Now().Format(time.RFC3339Nano)
	annotateReconcile(t, repo, requested)
	requestedAt := time.Now()
	waitObject(t, 30*time.Second, &syncv1.Kustomization{}, ksKey, "1.2.0 applied after the request", applied("1.2.0@"+third))
	t.Logf("1.2.0 applied %s after the reconcile request", time.Since(requestedAt).Round(time.Millisecond))
	waitObject(t, 10*time.Second, &sourcev1.OCIRepository{}, client.ObjectKeyFromObject(repo), "the request answered", func(r *sourcev1.OCIRepository) bool {
		return r.Status.LastHandledReconcileAt == requested
	})
	if v := settingsVersion(t.Context(), namespace); v != "1.2.0" {
		t.Fatalf("the ConfigMap names %q", v)
	}
}

// ociChartConfigMap is the chart's one object: its values, rendered.
const ociChartConfigMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chart-settings}\ndata: {greeting: {{ .Values.greeting | quote }}, chart: {{ .Chart.Version | quote }}}\n"

func TestAChartPushedAsOCIIsReleasedThroughChartRef(t *testing.T) {
	const namespace = "ocihelm"
	charts := helmrepo.NewOCI(t)
	charts.Push(t, helmrepo.NewChart("greeter", "1.0.0", map[string]string{"settings.yaml": ociChartConfigMap}, map[string]any{"greeting": "hello"}))
	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "greeter", Namespace: namespace},
		Spec: sourcev1.OCIRepositorySpec{
			URL: charts.URL + "/greeter", Reference: &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0"},
			LayerSelector: &sourcev1.OCILayerSelector{MediaType: oci.HelmChartMediaType, Operation: sourcev1.OCILayerCopy},
			Interval:      metav1.Duration{Duration: time.Hour},
		},
	}
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "greeter", Namespace: namespace},
		Spec: syncv2.HelmReleaseSpec{
			ChartRef: &syncv2.ChartReference{Kind: "OCIRepository", Name: "greeter"},
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: time.Minute},
			Values:   &apiextensionsv1.JSON{Raw: []byte(`{"greeting": "hi from the HelmRelease"}`)},
		},
	}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, repo, hr} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	repoKey, hrKey := client.ObjectKeyFromObject(repo), client.ObjectKeyFromObject(hr)

	// The chart's version carries the manifest digest, as Flux releases
	// it, so that a tag pushed again with other content is a new release.
	released := func(revision string) string {
		digest := revision[strings.LastIndex(revision, ":")+1:]
		return revision[:strings.Index(revision, "@")] + "+" + digest[:12]
	}
	fetched := waitObject(t, time.Minute, &sourcev1.OCIRepository{}, repoKey, "the chart fetched", func(r *sourcev1.OCIRepository) bool { return status.Ready(r) })
	version := released(fetched.Status.Artifact.Revision)
	if !strings.HasPrefix(version, "1.0.0+") {
		t.Fatalf("revision %s", fetched.Status.Artifact.Revision)
	}
	waitObject(t, time.Minute, &syncv2.HelmRelease{}, hrKey, "1.0.0 released", func(hr *syncv2.HelmRelease) bool {
		return status.Ready(hr) && len(hr.Status.History) > 0 && hr.Status.History[0].ChartVersion == version
	})
	settings := func() map[string]string {
		cm := &corev1.ConfigMap{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "chart-settings"}, cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data
	}
	if d := settings(); d["greeting"] != "hi from the HelmRelease" || d["chart"] != version {
		t.Fatalf("the release rendered %v", d)
	}

	// A new chart version in the range: fetched on request and upgraded.
	charts.Push(t, helmrepo.NewChart("greeter", "1.1.0", map[string]string{"settings.yaml": ociChartConfigMap}, map[string]any{"greeting": "hello"}))
	annotateReconcile(t, repo, "1.1.0")
	fetched = waitObject(t, time.Minute, &sourcev1.OCIRepository{}, repoKey, "1.1.0 fetched", func(r *sourcev1.OCIRepository) bool {
		return r.Status.Artifact != nil && strings.HasPrefix(r.Status.Artifact.Revision, "1.1.0@")
	})
	upgraded := released(fetched.Status.Artifact.Revision)
	waitObject(t, time.Minute, &syncv2.HelmRelease{}, hrKey, "1.1.0 upgraded", func(hr *syncv2.HelmRelease) bool {
		return status.Ready(hr) && len(hr.Status.History) > 0 && hr.Status.History[0].ChartVersion == upgraded && hr.Status.History[0].Version == 2
	})
	if d := settings(); d["chart"] != upgraded {
		t.Fatalf("the upgrade rendered %v", d)
	}
	got := &syncv2.HelmRelease{}
	if err := cp.Client.Get(t.Context(), hrKey, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.HelmChart != "" {
		t.Errorf("status.helmChart is %q for a chart from an OCIRepository", got.Status.HelmChart)
	}
}
