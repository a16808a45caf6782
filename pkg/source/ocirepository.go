package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/image/registry"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/oci"
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
	switch {
	case errors.Is(err, oci.ErrUnchanged):
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for digest '" + opts.LastRevision + "'"}, false
	case errors.Is(err, oci.ErrAuth) && repo.Spec.SecretRef == nil:
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the registry asks for credentials and spec.secretRef is not set: %w", err)), false
	case errors.Is(err, oci.ErrAuth):
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the registry refused the credentials of spec.secretRef (Secret %s): %w", repo.Spec.SecretRef.Name, err)), false
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

// remote is how to reach the registry: the credentials of
// spec.secretRef and the TLS material of spec.certSecretRef. Its errors
// name the field and the Secret.
func (r *OCIRepositoryReconciler) remote(ctx context.Context, repo *sourcev1.OCIRepository, reg name.Registry) (oci.Remote, error) {
	remote := oci.Remote{Insecure: repo.Spec.Insecure}
	if ref := repo.Spec.SecretRef; ref != nil {
		secret, err := readSecret(ctx, r.Client, repo.Namespace, ref.Name)
		if err != nil {
			return remote, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err)
		}
		if remote.Auth, err = credentials(secret, reg); err != nil {
			return remote, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err)
		}
	} else if sa := repo.Spec.ServiceAccountName; sa != "" {
		auth, err := r.pullSecretAuth(ctx, repo.Namespace, sa, reg)
		if err != nil {
			return remote, fmt.Errorf("spec.serviceAccountName: ServiceAccount %s: %w", sa, err)
		}
		remote.Auth = auth
	}
	if ref := repo.Spec.ProxySecretRef; ref != nil {
		secret, err := readSecret(ctx, r.Client, repo.Namespace, ref.Name)
		if err != nil {
			return remote, fmt.Errorf("spec.proxySecretRef: Secret %s: %w", ref.Name, err)
		}
		if remote.Proxy, err = proxyURL(secret); err != nil {
			return remote, fmt.Errorf("spec.proxySecretRef: Secret %s: %w", ref.Name, err)
		}
	}
	if ref := repo.Spec.CertSecretRef; ref != nil {
		secret, err := readSecret(ctx, r.Client, repo.Namespace, ref.Name)
		if err != nil {
			return remote, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
		}
		d := secret.Data
		if len(d["ca.crt"]) == 0 && len(d["tls.crt"]) == 0 && len(d["tls.key"]) == 0 {
			return remote, fmt.Errorf("spec.certSecretRef: Secret %s holds none of ca.crt, tls.crt and tls.key", ref.Name)
		}
		if remote.TLS, err = registry.TLSConfig(d["ca.crt"], d["tls.crt"], d["tls.key"]); err != nil {
			return remote, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
		}
	}
	return remote, nil
}

// pullSecretAuth reads the credentials for reg from the image pull
// secrets of a ServiceAccount, as the kubelet would: the first
// kubernetes.io/dockerconfigjson Secret with an entry for the registry.
// With none, access is anonymous.
func (r *OCIRepositoryReconciler) pullSecretAuth(ctx context.Context, namespace, name string, reg name.Registry) (authn.Authenticator, error) {
	sa := &corev1.ServiceAccount{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, sa); err != nil {
		return nil, err
	}
	for _, ref := range sa.ImagePullSecrets {
		secret, err := readSecret(ctx, r.Client, namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("imagePullSecrets: Secret %s: %w", ref.Name, err)
		}
		config, ok := secret.Data[corev1.DockerConfigJsonKey]
		if !ok {
			continue
		}
		if auth, err := registry.Authenticator(config, reg); err == nil {
			return auth, nil
		}
	}
	return nil, nil
}

// credentials reads a registry Secret as Flux does: a
// kubernetes.io/dockerconfigjson Secret's entry for host, or username and
// password.
func credentials(secret *corev1.Secret, reg name.Registry) (authn.Authenticator, error) {
	if config, ok := secret.Data[corev1.DockerConfigJsonKey]; ok {
		return registry.Authenticator(config, reg)
	}
	user, pass := string(secret.Data["username"]), string(secret.Data["password"])
	if user == "" || pass == "" {
		return nil, fmt.Errorf("holds neither %s nor username and password", corev1.DockerConfigJsonKey)
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}
