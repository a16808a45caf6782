package source

import (
	"crypto/md5" //nolint:gosec // S3's etag of a single-part upload is the MD5 of its content.
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/test/s3server"
)

// eventLog records the events a reconciler sends, whole.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) Eventf(_ runtime.Object, _ runtime.Object, eventType, reason, _, note string, args ...interface{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, eventType+" "+reason+": "+fmt.Sprintf(note, args...))
}

func (e *eventLog) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

// bucket is a Bucket named name in ns of the server's bucket
// "manifests", with the server's keys in the Secret "keys", checked every
// minute.
func bucket(ns, name string, s *s3server.Server, change func(*sourcev1.BucketSpec)) *sourcev1.Bucket {
	b := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: sourcev1.BucketSpec{
		BucketName: "manifests", Endpoint: s.Endpoint, Insecure: true,
		SecretRef: &sourcev1.LocalObjectReference{Name: "keys"},
		Interval:  metav1.Duration{Duration: time.Minute}, Timeout: &metav1.Duration{Duration: 10 * time.Second},
	}}
	if change != nil {
		change(&b.Spec)
	}
	return b
}

func keys(ns string) *corev1.Secret {
	return secret(ns, "keys", map[string]string{"accesskey": s3server.AccessKey, "secretkey": s3server.SecretKey})
}

func reconcileBucket(t *testing.T, r *BucketReconciler, b *sourcev1.Bucket) *sourcev1.Bucket {
	t.Helper()
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(b)})
	if err != nil {
		t.Fatal(err)
	}
	got := &sourcev1.Bucket{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(b), got); err != nil {
		t.Fatal(err)
	}
	// A stalled Bucket waits for a change of its spec.
	want := b.Spec.Interval.Duration
	if meta.IsStatusConditionTrue(got.Status.Conditions, "Stalled") {
		want = 0
	}
	if res.RequeueAfter != want {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, want)
	}
	return got
}

// fluxRevision is the revision Flux computes for objects: sha256 over
// "<key> <etag>\n" in key order, the etag being the MD5 of the content.
func fluxRevision(objects map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(objects)) {
		sum := md5.Sum([]byte(objects[k])) //nolint:gosec // see the import
		fmt.Fprintf(h, "%s %s\n", k, hex.EncodeToString(sum[:]))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// fileNames are the paths of a stored artifact.
func fileNames(r *BucketReconciler, b *sourcev1.Bucket) []string {
	a, ok := r.Store.Get(client.ObjectKeyFromObject(b))
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(a.Files))
}

func TestABucketIsFetchedOnlyWhenItsObjectsChange(t *testing.T) {
	t.Parallel()
	const ns = "bucket-fetch"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	s.Put(t, "manifests", "deploy/app.yaml", "kind: ConfigMap\n")
	s.Put(t, "manifests", "deploy/logo.png", "not a manifest")
	s.Put(t, "manifests", "deploy/draft.yaml", "kind: Draft\n")
	s.Put(t, "manifests", "other/app.yaml", "kind: Other\n")
	s.Put(t, "manifests", ".sourceignore", "# drafts stay out\ndraft.yaml\n")
	b := bucket(ns, "app", s, func(spec *sourcev1.BucketSpec) { spec.Prefix = "deploy/" })
	create(t, ns, keys(ns), b)
	ev := &eventLog{}
	r := &BucketReconciler{Client: cp.Client, Events: ev, Store: NewStore()}

	// Under the prefix, without the default exclusions and what
	// .sourceignore leaves out; the files keep their whole keys.
	got := reconcileBucket(t, r, b)
	revision := fluxRevision(map[string]string{"deploy/app.yaml": "kind: ConfigMap\n"})
	ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != sourcev1.ReasonSucceeded || ready.Message != "stored artifact for revision '"+revision+"'" {
		t.Fatalf("Ready is %s, want True for revision %s", readyOf(got.Status.Conditions), revision)
	}
	stored, _ := r.Store.Get(client.ObjectKeyFromObject(b))
	if a := got.Status.Artifact; a == nil || a.Revision != revision || stored == nil || stored.Digest != a.Digest || string(stored.Files["deploy/app.yaml"]) != "kind: ConfigMap\n" {
		t.Fatalf("artifact %+v, store %+v", got.Status.Artifact, stored)
	}
	if names := fileNames(r, b); fmt.Sprint(names) != "[deploy/app.yaml]" {
		t.Fatalf("the artifact holds %v", names)
	}

	// Unchanged objects are listed, not downloaded again.
	gets := len(s.Gets())
	got = reconcileBucket(t, r, got)
	if again := s.Gets()[gets:]; fmt.Sprint(again) != "[.sourceignore]" {
		t.Fatalf("an unchanged bucket downloaded %v, want only its .sourceignore", again)
	}

	// A changed object is a new revision with the new content.
	s.Put(t, "manifests", "deploy/app.yaml", "kind: Secret\n")
	got = reconcileBucket(t, r, got)
	if want := fluxRevision(map[string]string{"deploy/app.yaml": "kind: Secret\n"}); got.Status.Artifact.Revision != want {
		t.Fatalf("after an upload the revision is %s, want %s", got.Status.Artifact.Revision, want)
	}
	if stored, _ := r.Store.Get(client.ObjectKeyFromObject(b)); string(stored.Files["deploy/app.yaml"]) != "kind: Secret\n" {
		t.Fatalf("the store holds %q", stored.Files["deploy/app.yaml"])
	}
	want := []string{"Normal NewArtifact: stored artifact with 1 fetched files from 'manifests' bucket", "Normal NewArtifact: stored artifact with 1 fetched files from 'manifests' bucket"}
	if fmt.Sprint(ev.all()) != fmt.Sprint(want) {
		t.Fatalf("events %q, want one NewArtifact per revision", ev.all())
	}
}

func TestABucketNamesTheObjectsItLeavesOutInItsReadyMessage(t *testing.T) {
	t.Parallel()
	const ns = "bucket-left-out"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	s.Put(t, "manifests", "deploy/app.yaml", "kind: ConfigMap\n")
	for _, k := range []string{"deploy/../escape.yaml", "deploy/./dot.yaml", "deploy//1.yaml", "deploy//2.yaml", "deploy//3.yaml", "deploy//4.yaml"} {
		s.Put(t, "manifests", k, "kind: Secret\n")
	}
	b := bucket(ns, "app", s, func(spec *sourcev1.BucketSpec) { spec.Prefix = "deploy/" })
	create(t, ns, keys(ns), b)
	r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
	// The first look downloads, the second finds the revision unchanged:
	// both say what was left out.
	for _, pass := range []string{"first", "unchanged"} {
		got := reconcileBucket(t, r, b)
		ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
		if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != sourcev1.ReasonSucceeded ||
			!strings.Contains(ready.Message, `; 6 objects left out, as their keys are no relative path: "deploy/../escape.yaml", "deploy/./dot.yaml", "deploy//1.yaml", "deploy//2.yaml", "deploy//3.yaml" and 1 more`) {
			t.Fatalf("%s pass: Ready is %s, want True naming the keys left out", pass, readyOf(got.Status.Conditions))
		}
		if names := fileNames(r, b); fmt.Sprint(names) != "[deploy/app.yaml]" {
			t.Fatalf("%s pass: the artifact holds %v", pass, names)
		}
	}
}

func TestABucketsIgnoreReplacesTheDefaultsAndOverridesSourceignore(t *testing.T) {
	t.Parallel()
	const ns = "bucket-ignore"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	objects := map[string]string{"app.yaml": "kind: ConfigMap\n", "logo.png": "png", "draft.yaml": "kind: Draft\n", "notes.md": "# notes\n"}
	for k, v := range objects {
		s.Put(t, "manifests", k, v)
	}
	s.Put(t, "manifests", ".sourceignore", "draft.yaml\n")
	ignore := "*.md\n!draft.yaml\n"
	b := bucket(ns, "app", s, func(spec *sourcev1.BucketSpec) { spec.Ignore = &ignore })
	create(t, ns, keys(ns), b)
	r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}

	got := reconcileBucket(t, r, b)
	if names := fileNames(r, b); fmt.Sprint(names) != "[app.yaml draft.yaml logo.png]" {
		t.Fatalf("the artifact holds %v (Ready %s), want the png the defaults would leave out and the draft spec.ignore re-includes", names, readyOf(got.Status.Conditions))
	}
	delete(objects, "notes.md")
	if want := fluxRevision(objects); got.Status.Artifact == nil || got.Status.Artifact.Revision != want {
		t.Fatalf("artifact %+v, want revision %s", got.Status.Artifact, want)
	}
}

// forwardProxy is an HTTP proxy that wants user:pass and counts what it
// forwards.
func forwardProxy(t *testing.T, user, pass string) (url string, forwarded *atomic.Int64) {
	t.Helper()
	forwarded = &atomic.Int64{}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	forward := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		forwarded.Add(1)
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, forwarded
}

func TestABucketReachesItsStorageAsTheSpecSays(t *testing.T) {
	t.Parallel()
	const ns = "bucket-ways"
	open, private, public := s3server.New(t), s3server.New(t, s3server.WithTLS()), s3server.New(t, s3server.WithoutAuth())
	for _, s := range []*s3server.Server{open, private, public} {
		s.CreateBucket(t, "manifests")
		s.Put(t, "manifests", "app.yaml", "kind: ConfigMap\n")
	}
	proxy, forwarded := forwardProxy(t, "sluice", "proxy-pass")
	create(t, ns, keys(ns),
		secret(ns, "ca", map[string]string{"ca.crt": string(private.CAPEM)}),
		secret(ns, "proxy", map[string]string{"address": proxy, "username": "sluice", "password": "proxy-pass"}))
	tests := []struct {
		name   string
		bucket *sourcev1.Bucket
		check  func(t *testing.T)
	}{
		{"static keys in secretRef sign the requests, in the region of spec.region", bucket(ns, "keys", open, func(s *sourcev1.BucketSpec) { s.Region = "eu-west-1" }), func(t *testing.T) {
			if !slices.Contains(open.Regions(), "eu-west-1") {
				t.Fatalf("the requests were signed for %v", open.Regions())
			}
		}},
		{"provider aws with static keys uses the S3 API as generic does", bucket(ns, "aws", open, func(s *sourcev1.BucketSpec) { s.Provider = sourcev1.BucketProviderAmazon }), nil},
		{"a public bucket is read anonymously without secretRef", bucket(ns, "anonymous", public, func(s *sourcev1.BucketSpec) { s.SecretRef = nil }), nil},
		{"certSecretRef's ca.crt makes a private CA trusted over HTTPS", bucket(ns, "tls", private, func(s *sourcev1.BucketSpec) {
			s.Insecure = false
			s.CertSecretRef = &sourcev1.LocalObjectReference{Name: "ca"}
		}), nil},
		{"proxySecretRef's address and credentials carry the requests", bucket(ns, "proxy", open, func(s *sourcev1.BucketSpec) {
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "proxy"}
		}), func(t *testing.T) {
			if forwarded.Load() == 0 {
				t.Fatal("the proxy forwarded nothing")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := cp.Client.Create(t.Context(), tt.bucket); err != nil {
				t.Fatal(err)
			}
			r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
			got := reconcileBucket(t, r, tt.bucket)
			if want := fluxRevision(map[string]string{"app.yaml": "kind: ConfigMap\n"}); got.Status.Artifact == nil || got.Status.Artifact.Revision != want {
				t.Fatalf("Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestABucketThatCannotBeFetchedSaysWhyAndWarns(t *testing.T) {
	t.Parallel()
	const ns = "bucket-bad"
	s, private := s3server.New(t), s3server.New(t, s3server.WithTLS())
	for _, srv := range []*s3server.Server{s, private} {
		srv.CreateBucket(t, "manifests")
		srv.Put(t, "manifests", "app.yaml", "kind: ConfigMap\n")
	}
	create(t, ns, keys(ns),
		secret(ns, "wrong-secret", map[string]string{"accesskey": s3server.AccessKey, "secretkey": "wrong"}),
		secret(ns, "wrong-access", map[string]string{"accesskey": "nobody", "secretkey": s3server.SecretKey}),
		secret(ns, "half", map[string]string{"accesskey": s3server.AccessKey}),
		secret(ns, "no-address", map[string]string{"username": "u"}))
	unreachable := closedPort(t)
	tests := []struct {
		name   string
		bucket *sourcev1.Bucket
		reason string
		says   []string
		// stalled is set when only a change of the spec can help.
		stalled bool
	}{
		{"a secretRef naming no Secret", bucket(ns, "missing-secret", s, func(b *sourcev1.BucketSpec) { b.SecretRef.Name = "nope" }),
			sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef", "Secret nope", "not found"}, false},
		{"a Secret without secretkey", bucket(ns, "half", s, func(b *sourcev1.BucketSpec) { b.SecretRef.Name = "half" }),
			sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef", "Secret half must hold accesskey and secretkey"}, false},
		{"a wrong secret key", bucket(ns, "wrong-secret", s, func(b *sourcev1.BucketSpec) { b.SecretRef.Name = "wrong-secret" }),
			sourcev1.ReasonAuthenticationFailed, []string{"refused the keys of spec.secretRef (Secret wrong-secret)", "SignatureDoesNotMatch"}, false},
		{"an unknown access key", bucket(ns, "wrong-access", s, func(b *sourcev1.BucketSpec) { b.SecretRef.Name = "wrong-access" }),
			sourcev1.ReasonAuthenticationFailed, []string{"refused the keys of spec.secretRef (Secret wrong-access)", "InvalidAccessKeyId"}, false},
		{"no keys for a storage that wants them", bucket(ns, "anonymous", s, func(b *sourcev1.BucketSpec) { b.SecretRef = nil }),
			sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef is not set", "AccessDenied"}, false},
		{"a bucket the storage does not have", bucket(ns, "no-bucket", s, func(b *sourcev1.BucketSpec) { b.BucketName = "missing" }),
			sourcev1.ReasonBucketOperationFailed, []string{"spec.bucketName", "bucket 'missing' does not exist"}, false},
		{"an endpoint nothing listens on", bucket(ns, "unreachable", s, func(b *sourcev1.BucketSpec) { b.Endpoint = unreachable }),
			sourcev1.ReasonBucketOperationFailed, []string{"spec.endpoint", unreachable + " cannot be reached", "connection refused"}, false},
		{"an HTTPS endpoint whose CA is not trusted", bucket(ns, "untrusted", private, func(b *sourcev1.BucketSpec) { b.Insecure = false }),
			sourcev1.ReasonBucketOperationFailed, []string{"spec.endpoint", "not trusted", "spec.certSecretRef"}, false},
		{"a certSecretRef naming no Secret", bucket(ns, "missing-ca", private, func(b *sourcev1.BucketSpec) {
			b.Insecure, b.CertSecretRef = false, &sourcev1.LocalObjectReference{Name: "nope"}
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.certSecretRef", "Secret nope"}, false},
		{"a proxySecretRef without an address", bucket(ns, "no-address", s, func(b *sourcev1.BucketSpec) {
			b.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "no-address"}
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.proxySecretRef", "Secret no-address: holds no address"}, false},
		{"an endpoint that is no host name", bucket(ns, "bad-endpoint", s, func(b *sourcev1.BucketSpec) { b.Endpoint = "bad host" }),
			sourcev1.ReasonURLInvalid, []string{`spec.endpoint "bad host" is not a host[:port]`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is Ready=False with a named reason and a Warning Event", func(t *testing.T) {
			if err := cp.Client.Create(t.Context(), tt.bucket); err != nil {
				t.Fatal(err)
			}
			ev := &eventLog{}
			r := &BucketReconciler{Client: cp.Client, Events: ev, Store: NewStore()}
			got := reconcileBucket(t, r, tt.bucket)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tt.reason {
				t.Fatalf("Ready is %s, want False %s", readyOf(got.Status.Conditions), tt.reason)
			}
			for _, s := range tt.says {
				if !strings.Contains(ready.Message, s) {
					t.Errorf("Ready says %q, want it to name %q", ready.Message, s)
				}
			}
			progress := "Reconciling"
			if tt.stalled {
				progress = "Stalled"
			}
			if c := meta.FindStatusCondition(got.Status.Conditions, progress); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("%s is %+v, want True", progress, c)
			}
			if want := []string{"Warning " + tt.reason + ": " + ready.Message}; fmt.Sprint(ev.all()) != fmt.Sprint(want) {
				t.Errorf("events %q, want %q", ev.all(), want)
			}
			if _, ok := r.Store.Get(client.ObjectKeyFromObject(tt.bucket)); ok {
				t.Error("a failed fetch stored an artifact")
			}
		})
	}
}

func TestABucketHoldingMoreThanAnArtifactMayIsRefusedBeforeADownload(t *testing.T) {
	t.Parallel()
	const ns = "bucket-size"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	s.Put(t, "manifests", "big.yaml", strings.Repeat("#", 64))
	b := bucket(ns, "app", s, nil)
	create(t, ns, keys(ns), b)
	r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore(), MaxSize: 32}
	got := reconcileBucket(t, r, b)
	ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	if ready == nil || ready.Reason != sourcev1.ReasonBucketOperationFailed || !strings.Contains(ready.Message, "the objects hold 64 bytes, more than the 32 an artifact may: narrow spec.prefix or spec.ignore") {
		t.Fatalf("Ready is %s", readyOf(got.Status.Conditions))
	}
	if gets := s.Gets(); fmt.Sprint(gets) != "[.sourceignore]" {
		t.Fatalf("downloaded %v", gets)
	}
}

func TestASuspendedBucketIsNotFetched(t *testing.T) {
	t.Parallel()
	const ns = "bucket-suspend"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	b := bucket(ns, "app", s, func(spec *sourcev1.BucketSpec) { spec.Suspend = true })
	create(t, ns, keys(ns), b)
	r := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(b)})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("reconcile: %v, requeue after %s: a suspended Bucket waits for a change", err, res.RequeueAfter)
	}
	got := &sourcev1.Bucket{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(b), got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, "Ready"); c == nil || c.Reason != sourcev1.ReasonSuspended || len(s.Gets()) != 0 {
		t.Fatalf("Ready is %s after %d downloads", readyOf(got.Status.Conditions), len(s.Gets()))
	}
}

func TestTheAPIServerRefusesBucketSpecsSluiceCannotServe(t *testing.T) {
	t.Parallel()
	const ns = "bucket-cel"
	create(t, ns)
	spec := func(name string, change func(*sourcev1.BucketSpec)) *sourcev1.Bucket {
		b := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: sourcev1.BucketSpec{
			BucketName: "podinfo", Endpoint: "s3.amazonaws.com", Interval: metav1.Duration{Duration: 5 * time.Minute},
		}}
		change(&b.Spec)
		return b
	}
	tests := []struct {
		name   string
		bucket *sourcev1.Bucket
		err    string
	}{
		{"provider gcp", spec("gcp", func(s *sourcev1.BucketSpec) { s.Provider = sourcev1.BucketProviderGoogle }), "spec.provider gcp and azure are not supported"},
		{"provider azure", spec("azure", func(s *sourcev1.BucketSpec) { s.Provider = sourcev1.BucketProviderAzure }), "spec.provider gcp and azure are not supported"},
		{"provider aws without static keys", spec("aws", func(s *sourcev1.BucketSpec) { s.Provider = sourcev1.BucketProviderAmazon }), "spec.provider aws needs spec.secretRef"},
		{"an STS configuration", spec("sts", func(s *sourcev1.BucketSpec) {
			s.STS = &sourcev1.BucketSTSSpec{Provider: "ldap", Endpoint: "https://ldap.example.com"}
		}), "spec.sts is not supported"},
		{"a workload identity", spec("identity", func(s *sourcev1.BucketSpec) { s.ServiceAccountName = "bucket-reader" }), "spec.serviceAccountName is not supported"},
		{"an endpoint with a scheme", spec("scheme", func(s *sourcev1.BucketSpec) { s.Endpoint = "https://s3.amazonaws.com" }), "spec.endpoint is host[:port] with no scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, naming the field", func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.bucket)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			}
		})
	}
	t.Run("Flux's generic and aws static-key examples are taken, with Flux's defaults", func(t *testing.T) {
		for _, b := range []*sourcev1.Bucket{
			spec("generic", func(s *sourcev1.BucketSpec) {
				s.Endpoint, s.Insecure, s.SecretRef = "minio.minio.svc.cluster.local:9000", true, &sourcev1.LocalObjectReference{Name: "minio-credentials"}
			}),
			spec("aws-static", func(s *sourcev1.BucketSpec) {
				s.Provider, s.Region, s.SecretRef = sourcev1.BucketProviderAmazon, "us-east-1", &sourcev1.LocalObjectReference{Name: "aws-credentials"}
			}),
		} {
			if err := cp.Client.Create(t.Context(), b); err != nil {
				t.Fatalf("a good Bucket %s is refused: %v", b.Name, err)
			}
			if b.Spec.Timeout == nil || b.Spec.Timeout.Duration != time.Minute {
				t.Fatalf("timeout %v, want the default 60s", b.Spec.Timeout)
			}
			if b.Name == "generic" && b.Spec.Provider != sourcev1.BucketProviderGeneric {
				t.Fatalf("provider %q, want the default generic", b.Spec.Provider)
			}
		}
	})
}

func TestAHelmChartFromABucketIsPackagedFromItsArtifact(t *testing.T) {
	t.Parallel()
	const ns = "bucket-helmchart"
	s := s3server.New(t)
	s.CreateBucket(t, "manifests")
	for k, v := range gitChart("hello") {
		s.Put(t, "manifests", k, v)
	}
	b := bucket(ns, "charts", s, nil)
	hc := helmChart(ns, "app", "./charts/app", "", "Bucket", "charts")
	hc.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyRevision
	create(t, ns, keys(ns), b, hc)
	r := newHelmChartReconciler(&events{})
	r.BucketSources = NewStore()
	buckets := &BucketReconciler{Client: cp.Client, Events: &eventLog{}, Store: r.BucketSources}

	// Before the Bucket has an artifact the chart waits, naming it.
	got, _ := reconcileHelmChart(t, r, hc)
	if ready := meta.FindStatusCondition(got.Status.Conditions, "Ready"); ready == nil || ready.Reason != sourcev1.ReasonArtifactFailed || !strings.Contains(ready.Message, "Bucket charts has no artifact yet") {
		t.Fatalf("Ready is %s, want ArtifactFailed naming the Bucket", readyOf(got.Status.Conditions))
	}

	revision := reconcileBucket(t, buckets, b).Status.Artifact.Revision
	got, _ = reconcileHelmChart(t, r, got)
	stored := checkLoaded(t, r, got, sourcev1.ReasonChartPackageSucceeded, "1.0.0+"+strings.TrimPrefix(revision, "sha256:")[:12])
	if got.Status.ObservedSourceArtifactRevision != revision || string(stored.Chart.Templates[0].Data) != "kind: ConfigMap\nsays: hello\n" {
		t.Fatalf("loaded %q from %s", stored.Chart.Templates[0].Data, got.Status.ObservedSourceArtifactRevision)
	}
	enqueued(t, indexedReader(t), "Bucket", b, "["+ns+"/app]")
}
