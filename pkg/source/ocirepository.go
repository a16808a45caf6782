package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/image/registry"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/source/verify"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=source.sluice.dev,resources=ocirepositories,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=ocirepositories/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// OCIRepositoryReconciler fetches OCIRepositories into a Store of their
// own: a GitRepository and an OCIRepository may share a name, and the
// appliers find each by its kind's store.
type OCIRepositoryReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Store  *Store
	// Verifiers check spec.verify; nil means verify.New().
	Verifiers verify.Verifiers
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: an OCIRepository is fetched
// when its spec changes, when a reconcile is requested, and at its
// interval.
func (r *OCIRepositoryReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("ocirepository").
		For(&sourcev1.OCIRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile fetches one OCIRepository and writes its status once.
func (r *OCIRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &sourcev1.OCIRepository{}
	return status.Loop{
		Client: r.Client, Kind: "OCIRepository", Object: repo,
		Fields: status.Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
		Gone:   r.Store.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.fetch(ctx, repo) },
		Next:   status.Every(&repo.Spec.Suspend, &repo.Spec.Interval.Duration),
	}.Reconcile(ctx, req.NamespacedName)
}

// fetch runs one fetch and returns the Ready condition it earns, and
// whether only a change of the spec can help. A new revision is stored,
// recorded in status and announced.
func (r *OCIRepositoryReconciler) fetch(ctx context.Context, repo *sourcev1.OCIRepository) (metav1.Condition, bool) {
	key := client.ObjectKeyFromObject(repo)
	if repo.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no fetch until spec.suspend is unset"}, false
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Fetch", "%v", err)
		ctrl.LoggerFrom(ctx).Info("fetch failed", "reason", reason, "error", err.Error())
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	parsed, err := oci.ParseRepository(repo.Spec.URL, repo.Spec.Insecure)
	if err != nil {
		// The CRD refuses most of these; one it lets through cannot work
		// until the spec changes.
		return failed(sourcev1.ReasonURLInvalid, fmt.Errorf("spec.url: %w", err)), true
	}
	remote, err := r.remote(ctx, repo, parsed.Registry)
	if err != nil {
		return failed(sourcev1.ReasonAuthenticationFailed, err), false
	}
	opts := oci.FetchOptions{URL: repo.Spec.URL, Remote: remote, Ignore: repo.Spec.Ignore, Copy: repo.LayerOperation() == sourcev1.OCILayerCopy}
	if ref := repo.Spec.Reference; ref != nil {
		opts.Ref = oci.Ref{Tag: ref.Tag, SemVer: ref.SemVer, SemVerFilter: ref.SemverFilter, Digest: ref.Digest}
	}
	if sel := repo.Spec.LayerSelector; sel != nil {
		opts.MediaType = sel.MediaType
	}
	if repo.Spec.Verify == nil {
		setSourceVerified(&repo.Status.Conditions, repo.Generation, "", "", "")
	} else {
		opts.Verify = func(ctx context.Context, ref name.Digest, revision string) error {
			return r.verify(ctx, repo, ref, revision, remote)
		}
	}
	// The short-circuit needs the artifact in memory and a spec that has
	// not changed since it was made: a new layer selector or ignore rule
	// makes new content from the same revision.
	if stored, ok := r.Store.Get(key); ok && repo.Status.Artifact != nil && repo.Status.ObservedGeneration == repo.Generation && stored.Revision == repo.Status.Artifact.Revision {
		opts.LastRevision = stored.Revision
	}
	timeout := 60 * time.Second
	if repo.Spec.Timeout != nil {
		timeout = repo.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	artifact, err := oci.Fetch(ctx, opts)
	var refused *verificationError
	switch {
	case errors.As(err, &refused):
		return failed(sourcev1.ReasonVerificationError, err), false
	case errors.Is(err, oci.ErrUnchanged):
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for digest '" + opts.LastRevision + "'"}, false
	case errors.Is(err, oci.ErrAuth) && remote.Auth == nil:
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the registry asks for credentials and %s: %w", noCredentials(repo), err)), false
	case errors.Is(err, oci.ErrAuth):
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the registry refused the credentials of %s: %w", pullSecrets(repo, "").Source(), err)), false
	case errors.Is(err, oci.ErrNoMatch), errors.Is(err, oci.ErrInvalid):
		return failed(sourcev1.ReasonReadOperationFailed, fmt.Errorf("spec.ref: %w", err)), false
	case errors.Is(err, oci.ErrLayer):
		return failed(sourcev1.ReasonOCILayerOperationFailed, fmt.Errorf("spec.layerSelector: %w", err)), false
	case err != nil:
		return failed(sourcev1.ReasonOCIPullFailed, err), false
	}
	r.Store.put(key, &git.Artifact{Revision: artifact.Revision, Digest: artifact.Digest, Files: artifact.Files})
	repo.Status.ObservedIgnore = repo.Spec.Ignore
	repo.Status.ObservedLayerSelector = repo.Spec.LayerSelector
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if a := repo.Status.Artifact; a == nil || a.Revision != artifact.Revision || a.Digest != artifact.Digest {
		r.Events.Eventf(repo, nil, corev1.EventTypeNormal, "NewArtifact", "Fetch", "stored artifact with revision '%s' from '%s'", artifact.Revision, repo.Spec.URL)
		repo.Status.Artifact = &sourcev1.Artifact{Revision: artifact.Revision, Digest: artifact.Digest, LastUpdateTime: metav1.NewTime(now()), Metadata: maps.Clone(artifact.Annotations)}
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for digest '" + artifact.Revision + "'"}, false
}

// verify checks the signature of revision, pinned as ref, as spec.verify
// asks, and writes SourceVerified. As Flux, a revision that verified is
// not checked again until the spec changes, and a refusal is checked
// again at every look; a new artifact is only checked once it is also
// in memory, so that what is stored after a restart was checked too.
func (r *OCIRepositoryReconciler) verify(ctx context.Context, repo *sourcev1.OCIRepository, ref name.Digest, revision string, remote oci.Remote) error {
	c := meta.FindStatusCondition(repo.Status.Conditions, sourcev1.SourceVerifiedCondition)
	stored, ok := r.Store.Get(client.ObjectKeyFromObject(repo))
	if ok && stored.Revision == revision && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == repo.Generation {
		return nil
	}
	v := repo.Spec.Verify
	spec := verifySpec{provider: v.Provider, secretRef: v.SecretRef, identities: v.MatchOIDCIdentity, trustedRoot: v.TrustedRootSecretRef}
	res, err := checkSignature(ctx, r.Client, r.Verifiers, repo.Namespace, spec, ref, remote)
	switch {
	case err != nil:
		setSourceVerified(&repo.Status.Conditions, repo.Generation, metav1.ConditionFalse, sourcev1.ReasonVerificationError, err.Error())
		return err
	case res.Verified:
		setSourceVerified(&repo.Status.Conditions, repo.Generation, metav1.ConditionTrue, sourcev1.ReasonSucceeded, verifiedMessage("revision", revision, res))
	default:
		// Let through unverified by the trust policy: nothing was
		// verified, so nothing says it was.
		setSourceVerified(&repo.Status.Conditions, repo.Generation, "", "", "")
	}
	return nil
}

// remote is how to reach the registry: the credentials of spec.secretRef
// and of spec.serviceAccountName's imagePullSecrets, merged as Flux
// merges them, the TLS material of spec.certSecretRef and the proxy of
// spec.proxySecretRef. Its errors name the field and the Secret.
func (r *OCIRepositoryReconciler) remote(ctx context.Context, repo *sourcev1.OCIRepository, reg name.Registry) (oci.Remote, error) {
	remote := oci.Remote{Insecure: repo.Spec.Insecure}
	pull := pullSecrets(repo, reg.RegistryStr())
	config, err := pull.DockerConfigJSON(ctx, r.Client)
	if err != nil {
		return remote, err
	}
	if config != nil {
		if remote.Auth, err = registry.Authenticator(config, reg); err != nil {
			return remote, fmt.Errorf("%s: %w", pull.Source(), err)
		}
	}
	if remote.Proxy, err = proxyFrom(ctx, r.Client, repo.Namespace, repo.Spec.ProxySecretRef); err != nil {
		return remote, err
	}
	if remote.TLS, err = certTLS(ctx, r.Client, repo.Namespace, repo.Spec.CertSecretRef); err != nil {
		return remote, err
	}
	return remote, nil
}

// pullSecrets names where an OCIRepository's registry credentials are.
func pullSecrets(repo *sourcev1.OCIRepository, host string) registry.PullSecrets {
	pull := registry.PullSecrets{Namespace: repo.Namespace, ServiceAccountName: repo.Spec.ServiceAccountName, BasicAuthHost: host}
	if ref := repo.Spec.SecretRef; ref != nil {
		pull.SecretRef = ref.Name
	}
	return pull
}

// noCredentials says why a request went without credentials.
func noCredentials(repo *sourcev1.OCIRepository) string {
	if sa := repo.Spec.ServiceAccountName; sa != "" {
		return "no imagePullSecret of spec.serviceAccountName (ServiceAccount " + sa + ") has any, and spec.secretRef is not set"
	}
	return "spec.secretRef is not set"
}
