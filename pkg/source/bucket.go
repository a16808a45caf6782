package source

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=source.sluice.dev,resources=buckets,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=buckets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// bucketIgnoreFile is the object whose patterns, at the bucket's root
// whatever spec.prefix is, leave objects out, as in Flux.
const bucketIgnoreFile = ".sourceignore"

// bucketFetches bounds the objects downloaded at once: the limit is this
// process's footprint, not the storage's rate.
const bucketFetches = 8

// bucketRetries bounds the attempts of one request. The client's default
// of ten, with its backoff, would hold a worker for seconds on an endpoint
// that refuses connections; the next pass comes at the interval anyway.
const bucketRetries = 3

// BucketReconciler fetches Buckets into a Store of their own: a Bucket
// may share its name with a GitRepository or an OCIRepository.
type BucketReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Store  *Store
	// MaxSize bounds what the objects of one Bucket may hold together,
	// in bytes, as they stay in memory; 0 means oci.DefaultMaxSize, the
	// bound of an OCI layer.
	MaxSize int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: a Bucket is fetched when its
// spec changes, when a reconcile is requested, and at its interval.
func (r *BucketReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bucket").
		For(&sourcev1.Bucket{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile fetches one Bucket and writes its status once.
func (r *BucketReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &sourcev1.Bucket{}
	return status.Loop{
		Client: r.Client, Kind: "Bucket", Object: b,
		Fields: status.Fields{ObservedGeneration: &b.Status.ObservedGeneration, LastHandledReconcileAt: &b.Status.LastHandledReconcileAt, Conditions: &b.Status.Conditions},
		Gone:   r.Store.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.fetch(ctx, b) },
		Next:   status.Every(&b.Spec.Suspend, &b.Spec.Interval.Duration),
	}.Reconcile(ctx, req.NamespacedName)
}

// fetch runs one fetch and returns the Ready condition it earns, and
// whether only a change of the spec can help. The objects are listed
// first: their keys and etags make the revision, and only a new revision
// downloads them.
func (r *BucketReconciler) fetch(ctx context.Context, b *sourcev1.Bucket) (metav1.Condition, bool) {
	key := client.ObjectKeyFromObject(b)
	if b.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no fetch until spec.suspend is unset"}, false
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(b, nil, corev1.EventTypeWarning, reason, "Fetch", "%v", err)
		ctrl.LoggerFrom(ctx).Info("fetch failed", "reason", reason, "error", err.Error())
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	storage, done, err := r.client(ctx, b)
	switch {
	case errors.Is(err, errEndpoint):
		// The CRD refuses most of these; one it lets through cannot work
		// until the spec changes.
		return failed(sourcev1.ReasonURLInvalid, err), true
	case err != nil:
		return failed(sourcev1.ReasonAuthenticationFailed, err), false
	}
	defer done()
	timeout := 60 * time.Second
	if b.Spec.Timeout != nil {
		timeout = b.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	index, err := r.index(ctx, storage, b)
	if err != nil {
		return failed(r.classify(b, err)), false
	}
	revision := index.revision()
	// The short-circuit needs the artifact in memory and a spec that has
	// not changed since it was made: a new prefix or ignore rule makes
	// new content even from the same objects.
	if stored, ok := r.Store.Get(key); ok && b.Status.Artifact != nil && b.Status.ObservedGeneration == b.Generation && stored.Revision == revision {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: index.stored(revision)}, false
	}
	limit := r.MaxSize
	if limit <= 0 {
		limit = oci.DefaultMaxSize
	}
	files, err := download(ctx, storage, b.Spec.BucketName, index, limit)
	if err != nil {
		return failed(r.classify(b, err)), false
	}
	// An object that changed or went between the listing and its
	// download is in the artifact as it was downloaded.
	revision = index.revision()
	artifact := &git.Artifact{Revision: revision, Digest: oci.Digest(files), Files: files}
	r.Store.put(key, artifact)
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if a := b.Status.Artifact; a == nil || a.Revision != artifact.Revision || a.Digest != artifact.Digest {
		r.Events.Eventf(b, nil, corev1.EventTypeNormal, "NewArtifact", "Fetch", "stored artifact with %d fetched files from '%s' bucket", len(files), b.Spec.BucketName)
		b.Status.Artifact = &sourcev1.Artifact{Revision: artifact.Revision, Digest: artifact.Digest, LastUpdateTime: metav1.NewTime(now())}
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: index.stored(revision)}, false
}

// errEndpoint marks a spec.endpoint no client can be made for.
var errEndpoint = errors.New("is not a host[:port]")

// client is an S3 client for the Bucket: the keys of spec.secretRef, the
// TLS material of spec.certSecretRef and the proxy of spec.proxySecretRef.
// Its errors name the field and the Secret. done closes the idle
// connections of the client's own transport.
func (r *BucketReconciler) client(ctx context.Context, b *sourcev1.Bucket) (c *minio.Client, done func(), err error) {
	opts := &minio.Options{Region: b.Spec.Region, Secure: !b.Spec.Insecure, MaxRetries: bucketRetries}
	if ref := b.Spec.SecretRef; ref != nil {
		secret, err := readSecret(ctx, r.Client, b.Namespace, ref.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err)
		}
		access, secretKey := string(secret.Data["accesskey"]), string(secret.Data["secretkey"])
		if access == "" || secretKey == "" {
			return nil, nil, fmt.Errorf("spec.secretRef: Secret %s must hold accesskey and secretkey", ref.Name)
		}
		opts.Creds = miniocreds.NewStaticV4(access, secretKey, "")
	}
	transport, err := minio.DefaultTransport(opts.Secure)
	if err != nil {
		return nil, nil, fmt.Errorf("make the HTTP transport: %w", err)
	}
	certs, err := certTLS(ctx, r.Client, b.Namespace, b.Spec.CertSecretRef)
	if err != nil {
		return nil, nil, err
	}
	if certs != nil {
		transport.TLSClientConfig = certs
	}
	proxy, err := proxyFrom(ctx, r.Client, b.Namespace, b.Spec.ProxySecretRef)
	if err != nil {
		return nil, nil, err
	}
	if proxy != nil {
		transport.Proxy = http.ProxyURL(proxy)
	}
	opts.Transport = transport
	c, err = minio.New(b.Spec.Endpoint, opts)
	if err != nil {
		transport.CloseIdleConnections()
		return nil, nil, fmt.Errorf("spec.endpoint %q %w: %w", b.Spec.Endpoint, errEndpoint, err)
	}
	return c, transport.CloseIdleConnections, nil
}

// bucketIndex is the key and etag of each object the artifact is made
// of: Flux's revision is its digest.
type bucketIndex struct {
	mu    sync.Mutex
	etags map[string]string
	// size is the sum of the listed sizes.
	size int64
	// leftOut are the keys that are no relative path, in listing order.
	leftOut []string
}

// leftOutShown bounds the keys a Ready message names.
const leftOutShown = 5

// stored is the Ready message of an artifact made from the index: the
// revision, and the objects left out for their keys, which kubectl get
// then shows, since nothing else would tell that they are missing.
func (x *bucketIndex) stored(revision string) string {
	msg := "stored artifact for revision '" + revision + "'"
	if len(x.leftOut) == 0 {
		return msg
	}
	shown := x.leftOut[:min(len(x.leftOut), leftOutShown)]
	msg += fmt.Sprintf("; %d objects left out, as their keys are no relative path: %s", len(x.leftOut), strings.Join(quotedKeys(shown), ", "))
	if more := len(x.leftOut) - len(shown); more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}
	return msg
}

func quotedKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q", k)
	}
	return out
}

// revision is Flux's: sha256:<hex> over "<key> <etag>\n" in key order.
func (x *bucketIndex) revision() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(x.etags)) {
		_, _ = fmt.Fprintf(h, "%s %s\n", k, x.etags[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (x *bucketIndex) set(key, etag string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.etags[key] = etag
}

func (x *bucketIndex) drop(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.etags, key)
}

func (x *bucketIndex) keys() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Sorted(maps.Keys(x.etags))
}

// index lists the objects under spec.prefix and keeps those the ignore
// rules leave: Flux's default exclusions, or spec.ignore in their place,
// and the patterns of the bucket's root .sourceignore, with spec.ignore
// last so that it can re-include what .sourceignore leaves out. Folder
// markers and keys that are no relative slash path (a leading slash, an
// empty, . or .. element) cannot be files of a tree and are left out,
// and named in the Ready message.
func (r *BucketReconciler) index(ctx context.Context, storage *minio.Client, b *sourcev1.Bucket) (*bucketIndex, error) {
	listed := map[string]minio.ObjectInfo{}
	var leftOut []string
	opts := minio.ListObjectsOptions{Prefix: b.Spec.Prefix, Recursive: true, UseV1: s3utils.IsGoogleEndpoint(*storage.EndpointURL())}
	for o := range storage.ListObjectsIter(ctx, b.Spec.BucketName, opts) {
		if o.Err != nil {
			return nil, fmt.Errorf("list objects: %w", o.Err)
		}
		switch {
		case strings.HasSuffix(o.Key, "/"), o.Key == bucketIgnoreFile:
		case !fs.ValidPath(o.Key):
			leftOut = append(leftOut, o.Key)
		default:
			listed[o.Key] = o
		}
	}
	ignore, err := readObject(ctx, storage, b.Spec.BucketName, bucketIgnoreFile, 1<<20)
	if err != nil && s3Code(err) != "NoSuchKey" {
		return nil, err
	}
	// The rules are the ones an extracted OCI layer gets; Filter reads
	// them from a tree, so the tree is the keys with the root ignore file
	// as the only content.
	tree := make(map[string][]byte, len(listed)+1)
	for k := range listed {
		tree[k] = nil
	}
	tree[bucketIgnoreFile] = ignore
	x := &bucketIndex{etags: map[string]string{}, leftOut: leftOut}
	for k := range oci.Filter(tree, b.Spec.Ignore) {
		if o, ok := listed[k]; ok {
			x.etags[k] = o.ETag
			x.size += o.Size
		}
	}
	return x, nil
}

// download fetches the indexed objects, a few at once, and records the
// etag each was downloaded at; one gone since the listing is dropped.
// What they hold together is bounded by limit: the files stay in memory.
func download(ctx context.Context, storage *minio.Client, bucket string, x *bucketIndex, limit int64) (map[string][]byte, error) {
	if x.size > limit {
		return nil, fmt.Errorf("%w: the objects hold %d bytes, more than the %d an artifact may", errTooLarge, x.size, limit)
	}
	var (
		mu    sync.Mutex
		total atomic.Int64
		files = map[string][]byte{}
	)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(bucketFetches)
	for _, key := range x.keys() {
		g.Go(func() error {
			obj, err := storage.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				return fmt.Errorf("get %s: %w", key, err)
			}
			defer func() { _ = obj.Close() }()
			data, err := io.ReadAll(io.LimitReader(obj, limit+1))
			if s3Code(err) == "NoSuchKey" {
				x.drop(key)
				return nil
			}
			if err != nil {
				return fmt.Errorf("get %s: %w", key, err)
			}
			if total.Add(int64(len(data))) > limit {
				return fmt.Errorf("%w: the objects hold more than the %d bytes an artifact may", errTooLarge, limit)
			}
			info, err := obj.Stat()
			if err != nil {
				return fmt.Errorf("get %s: %w", key, err)
			}
			x.set(key, info.ETag)
			mu.Lock()
			defer mu.Unlock()
			files[key] = data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return files, nil
}

// s3Code is the S3 error code of err, or "" when the storage gave none.
func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// errTooLarge marks a bucket whose objects exceed what an artifact may
// hold.
var errTooLarge = errors.New("too large")

// readObject reads one object of at most limit bytes.
func readObject(ctx context.Context, storage *minio.Client, bucket, key string, limit int64) ([]byte, error) {
	obj, err := storage.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer func() { _ = obj.Close() }()
	data, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("get %s: larger than %d bytes", key, limit)
	}
	return data, nil
}

// classify names what a failed list or download needs fixed: the field,
// and the Secret, to look at.
func (r *BucketReconciler) classify(b *sourcev1.Bucket, err error) (string, error) {
	var resp minio.ErrorResponse
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.Is(err, errTooLarge):
		return sourcev1.ReasonBucketOperationFailed, fmt.Errorf("bucket '%s': %w: narrow spec.prefix or spec.ignore", b.Spec.BucketName, err)
	case errors.As(err, &unknownCA):
		return sourcev1.ReasonBucketOperationFailed, fmt.Errorf("spec.endpoint: the certificate of %s is not trusted: put its CA's ca.crt in the Secret of spec.certSecretRef: %w", b.Spec.Endpoint, err)
	case !errors.As(err, &resp):
		// No answer from the storage: a name that does not resolve, a
		// refused connection, a timeout.
		return sourcev1.ReasonBucketOperationFailed, fmt.Errorf("spec.endpoint: %s cannot be reached: %w", b.Spec.Endpoint, err)
	case resp.Code == "NoSuchBucket":
		return sourcev1.ReasonBucketOperationFailed, fmt.Errorf("spec.bucketName: bucket '%s' does not exist at %s", b.Spec.BucketName, b.Spec.Endpoint)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if ref := b.Spec.SecretRef; ref != nil {
			return sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the storage refused the keys of spec.secretRef (Secret %s): %s: %w", ref.Name, resp.Code, err)
		}
		return sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the storage refused an anonymous request and spec.secretRef is not set: %s: %w", resp.Code, err)
	}
	return sourcev1.ReasonBucketOperationFailed, fmt.Errorf("bucket '%s' at %s: %w", b.Spec.BucketName, b.Spec.Endpoint, err)
}
