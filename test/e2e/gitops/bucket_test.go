package gitops

import (
	"crypto/md5" //nolint:gosec // S3's etag of a single-part upload is the MD5 of its content.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/inprocess"
	"sluice.dev/sluice/test/s3server"
)

// settingsManifest is a ConfigMap naming version.
func settingsManifest(version string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings}\ndata: {version: \"" + version + "\"}\n"
}

// bucketRevision is the revision Flux gives objects: sha256 over
// "<key> <etag>\n" in key order, the etag being the MD5 of the content.
func bucketRevision(objects map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(objects)) {
		sum := md5.Sum([]byte(objects[k])) //nolint:gosec // see the import
		fmt.Fprintf(h, "%s %s\n", k, hex.EncodeToString(sum[:]))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// TestManifestsUploadedToABucketAreAppliedAndFollowed runs the operator
// against a real S3 server on loopback: a Kustomization of a Bucket
// applies what was uploaded, follows an upload at the next interval or
// at once on a reconcile request, and a Bucket with wrong keys says so.
func TestManifestsUploadedToABucketAreAppliedAndFollowed(t *testing.T) {
	const namespace = "bucketops"
	s := s3server.New(t)
	s.CreateBucket(t, "fleet")
	s.Put(t, "fleet", "apps/settings.yaml", settingsManifest("1"))
	// None of these may reach the cluster: each would fail the build. The
	// first is outside spec.prefix, the second one of Flux's default
	// exclusions, the third left out by the bucket's .sourceignore.
	s.Put(t, "fleet", "other/broken.yaml", "kind: [\n")
	s.Put(t, "fleet", "apps/.github/broken.yaml", "kind: [\n")
	s.Put(t, "fleet", "apps/drafts/broken.yaml", "kind: [\n")
	s.Put(t, "fleet", ".sourceignore", "apps/drafts/\n")
	keys := func(name, secretKey string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, StringData: map[string]string{"accesskey": s3server.AccessKey, "secretkey": secretKey}}
	}
	bucket := func(name, secret string) *sourcev1.Bucket {
		return &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: sourcev1.BucketSpec{
			BucketName: "fleet", Endpoint: s.Endpoint, Insecure: true, Prefix: "apps/",
			SecretRef: &sourcev1.LocalObjectReference{Name: secret},
			Interval:  metav1.Duration{Duration: 2 * time.Second}, Timeout: &metav1.Duration{Duration: 10 * time.Second},
		}}
	}
	b := bucket("app", "keys")
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		keys("keys", s3server.SecretKey),
		keys("wrong-keys", "not-the-secret-key"),
		b,
		bucket("wrong", "wrong-keys"),
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "Bucket", Name: "app"}, Path: "./apps",
			Prune: true, TargetNamespace: namespace, Interval: metav1.Duration{Duration: time.Hour},
		}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	ksKey, bucketKey := client.ObjectKey{Namespace: namespace, Name: "app"}, client.ObjectKeyFromObject(b)
	applied := func(revision string) func(*syncv1.Kustomization) bool {
		return func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == revision && status.Ready(ks)
		}
	}

	// 1. The uploaded manifests are applied, at Flux's revision of them.
	first := bucketRevision(map[string]string{"apps/settings.yaml": settingsManifest("1")})
	waitObject(t, time.Minute, &syncv1.Kustomization{}, ksKey, "the bucket applied", applied(first))
	if v := settingsVersion(t.Context(), namespace); v != "1" {
		t.Fatalf("the ConfigMap names %q", v)
	}
	got := &sourcev1.Bucket{}
	if err := cp.Client.Get(t.Context(), bucketKey, got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, "Ready"); c == nil || c.Reason != sourcev1.ReasonSucceeded || c.Message != "stored artifact for revision '"+first+"'" {
		t.Fatalf("Ready %+v", c)
	}

	// 2. A changed object is applied on the next interval, with no other
	// prompt.
	s.Put(t, "fleet", "apps/settings.yaml", settingsManifest("2"))
	uploadedAt := time.Now()
	second := bucketRevision(map[string]string{"apps/settings.yaml": settingsManifest("2")})
	waitObject(t, 30*time.Second, &syncv1.Kustomization{}, ksKey, "the upload applied on the interval", applied(second))
	t.Logf("the upload applied %s after it, at an interval of 2s", time.Since(uploadedAt).Round(time.Millisecond))
	if v := settingsVersion(t.Context(), namespace); v != "2" {
		t.Fatalf("the ConfigMap names %q", v)
	}

	// 3. At an interval of an hour, an upload waits for the next look; a
	// reconcile request, as a Receiver sends, is that look at once.
	if err := cp.Client.Get(t.Context(), bucketKey, b); err != nil {
		t.Fatal(err)
	}
	before := b.DeepCopy()
	b.Spec.Interval = metav1.Duration{Duration: time.Hour}
	if err := cp.Client.Patch(t.Context(), b, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitObject(t, 30*time.Second, &sourcev1.Bucket{}, bucketKey, "the hourly interval observed", func(b *sourcev1.Bucket) bool { return status.Ready(b) })
	// The look the old interval queued is due within 2s: it must find
	// nothing new.
	time.Sleep(3 * time.Second)
	s.Put(t, "fleet", "apps/settings.yaml", settingsManifest("3"))
	// An absence cannot be waited for: a pause longer than the old
	// interval shows that nothing but the request below picks 3 up.
	time.Sleep(3 * time.Second)
	if v := settingsVersion(t.Context(), namespace); v != "2" {
		t.Fatalf("the upload was applied before any look: the ConfigMap names %q", v)
	}
	requested := time.Now().Format(time.RFC3339Nano)
	annotateReconcile(t, b, requested)
	requestedAt := time.Now()
	third := bucketRevision(map[string]string{"apps/settings.yaml": settingsManifest("3")})
	waitObject(t, 30*time.Second, &syncv1.Kustomization{}, ksKey, "the upload applied after the request", applied(third))
	t.Logf("the upload applied %s after the reconcile request", time.Since(requestedAt).Round(time.Millisecond))
	waitObject(t, 10*time.Second, &sourcev1.Bucket{}, bucketKey, "the request answered", func(b *sourcev1.Bucket) bool {
		return b.Status.LastHandledReconcileAt == requested
	})

	// 4. sluicectl lists the Bucket among the sources, with its
	// revision, and reconciles it on request.
	sluicectl := func(args ...string) string {
		return runSluicectl(t, append([]string{"--kubeconfig", cp.Kubeconfig, "-n", namespace}, args...)...)
	}
	if out := sluicectl("get", "sources"); !strings.Contains(out, "Bucket/app") || !strings.Contains(out, third) {
		t.Fatalf("get sources printed:\n%s", out)
	}
	if out := sluicectl("reconcile", "source", "bucket", "app"); !strings.Contains(out, "reconciled") {
		t.Fatalf("reconcile source bucket printed:\n%s", out)
	}

	// 5. Keys the storage refuses are a named condition and a Warning
	// Event naming the field and the Secret.
	says := "the storage refused the keys of spec.secretRef (Secret wrong-keys)"
	waitFailure(t, namespace, &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "wrong"}}, sourcev1.ReasonAuthenticationFailed, says, "SignatureDoesNotMatch")
	var list eventsv1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range list.Items {
		warned = warned || (e.Regarding.Kind == "Bucket" && e.Regarding.Name == "wrong" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, says))
	}
	if !warned {
		t.Fatalf("no Warning Event on Bucket wrong names spec.secretRef: %d events", len(list.Items))
	}
}
