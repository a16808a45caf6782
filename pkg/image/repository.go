package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	imagev1 "sluice.dev/sluice/api/image/v1"
	"sluice.dev/sluice/pkg/image/registry"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=image.sluice.dev,resources=imagerepositories,verbs=get;list;watch
// +kubebuilder:rbac:groups=image.sluice.dev,resources=imagerepositories/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// latestTagsShown is how many tags status.lastScanResult.latestTags
// lists, as in Flux.
const latestTagsShown = 10

// RepositoryReconciler scans ImageRepositories into a TagStore.
type RepositoryReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Tags   *TagStore
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: an ImageRepository is
// scanned when its spec changes, when a reconcile is requested (by a
// Receiver or the CLI), and then at its interval.
func (r *RepositoryReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("imagerepository").
		For(&imagev1.ImageRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile scans one ImageRepository and writes its status once.
func (r *RepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &imagev1.ImageRepository{}
	return status.Loop{
		Client: r.Client, Kind: "ImageRepository", Object: repo,
		Fields: status.Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
		Gone:   r.Tags.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.scan(ctx, repo) },
		Next:   status.Every(&repo.Spec.Suspend, &repo.Spec.Interval.Duration),
	}.Reconcile(ctx, req.NamespacedName)
}

// scan lists the tags once and returns the Ready condition it earns, and
// whether only a spec change can fix it.
func (r *RepositoryReconciler) scan(ctx context.Context, repo *imagev1.ImageRepository) (metav1.Condition, bool) {
	if repo.Spec.Suspend {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: imagev1.ReasonSuspended, Message: "Suspended: no scan until spec.suspend is unset"}, false
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Scan", "%v", err)
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	opts, err := registryOptions(ctx, r.Client, repo)
	if err != nil {
		return failed(imagev1.ReasonAuthenticationFailed, err), false
	}
	if err := registry.Validate(opts); err != nil {
		return failed(imagev1.ReasonInvalidSpec, err), true
	}
	timeout := repo.Spec.Interval.Duration
	if repo.Spec.Timeout != nil {
		timeout = repo.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	result, err := registry.Scan(ctx, opts)
	switch {
	case errors.Is(err, registry.ErrAuth) && repo.Spec.SecretRef == nil && repo.Spec.ServiceAccountName == "":
		return failed(imagev1.ReasonAuthenticationFailed, fmt.Errorf("the registry asks for credentials and spec.secretRef is not set: %w", err)), false
	case errors.Is(err, registry.ErrAuth):
		return failed(imagev1.ReasonAuthenticationFailed, fmt.Errorf("the registry refused the credentials of %s: %w", pullSecrets(repo).Source(), err)), false
	case errors.Is(err, registry.ErrNotFound):
		return failed(imagev1.ReasonImageNotFound, fmt.Errorf("spec.image: %w", err)), false
	case err != nil:
		return failed(imagev1.ReasonUnreachable, err), false
	}
	key := client.ObjectKeyFromObject(repo)
	r.Tags.put(key, result.Tags)
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	revision := tagsRevision(result.Tags)
	if last := repo.Status.LastScanResult; last == nil || last.Revision != revision {
		r.Events.Eventf(repo, nil, corev1.EventTypeNormal, imagev1.ReasonSucceeded, "Scan", "found %d tags of %s", len(result.Tags), result.CanonicalName)
	}
	repo.Status.CanonicalImageName = result.CanonicalName
	repo.Status.ObservedExclusionList = opts.Exclusions
	repo.Status.LastScanResult = &imagev1.ScanResult{
		Revision: revision, TagCount: len(result.Tags), ScanTime: metav1.NewTime(now()), LatestTags: latestTags(result.Tags),
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: imagev1.ReasonSucceeded, Message: fmt.Sprintf("successful scan: found %d tags", len(result.Tags))}, false
}

// pullSecrets names where an ImageRepository's registry credentials are.
func pullSecrets(repo *imagev1.ImageRepository) registry.PullSecrets {
	return registry.PullSecrets{Namespace: repo.Namespace, SecretRef: secretName(repo.Spec.SecretRef), ServiceAccountName: repo.Spec.ServiceAccountName}
}

// registryOptions reads what a scan needs from the ImageRepository and its
// Secrets: credentials from spec.secretRef and the imagePullSecrets of
// spec.serviceAccountName, merged, and the TLS material of
// spec.certSecretRef.
func registryOptions(ctx context.Context, c client.Reader, repo *imagev1.ImageRepository) (registry.Options, error) {
	opts := registry.Options{Image: repo.Spec.Image, Insecure: repo.Spec.Insecure, Exclusions: repo.Spec.ExclusionList}
	if opts.Exclusions == nil {
		opts.Exclusions = []string{`^.*\.sig$`}
	}
	config, err := pullSecrets(repo).DockerConfigJSON(ctx, c)
	if err != nil {
		return opts, err
	}
	opts.DockerConfigJSON = config
	if ref := repo.Spec.CertSecretRef; ref != nil {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: repo.Namespace, Name: ref.Name}, secret); err != nil {
			return opts, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
		}
		// Flux's current keys first, then its older ones.
		opts.CACert = firstKey(secret.Data, "ca.crt", "caFile")
		opts.ClientCert = firstKey(secret.Data, "tls.crt", "certFile")
		opts.ClientKey = firstKey(secret.Data, "tls.key", "keyFile")
		if (opts.ClientCert == nil) != (opts.ClientKey == nil) {
			return opts, fmt.Errorf("spec.certSecretRef: Secret %s has only one of tls.crt and tls.key", ref.Name)
		}
	}
	return opts, nil
}

// secretName is the name a reference gives, or "" without one.
func secretName(ref *imagev1.LocalObjectReference) string {
	if ref == nil {
		return ""
	}
	return ref.Name
}

func firstKey(data map[string][]byte, keys ...string) []byte {
	for _, k := range keys {
		if v, ok := data[k]; ok {
			return v
		}
	}
	return nil
}

// tagsRevision names a tag list, so that a new or removed tag shows as a
// new revision.
func tagsRevision(tags []string) string {
	sorted := slices.Clone(tags)
	sort.Strings(sorted)
	h := sha256.New()
	for _, t := range sorted {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// latestTags are the first tags in reverse alphabetical order, as Flux
// shows them.
func latestTags(tags []string) []string {
	sorted := slices.Clone(tags)
	sort.Sort(sort.Reverse(sort.StringSlice(sorted)))
	if len(sorted) > latestTagsShown {
		sorted = sorted[:latestTagsShown]
	}
	return sorted
}
