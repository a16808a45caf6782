// Package source runs the sources of the embedded sync core. It fetches
// each GitRepository at its interval and keeps the artifact in memory, in
// a Store that the appliers of the same process read: no artifact server
// is needed inside one binary.
package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=source.sluice.dev,resources=gitrepositories,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.sluice.dev,resources=gitrepositories/status,verbs=get;update;patch

// Store keeps the last artifact of each source, by namespace and name.
type Store struct {
	mu        sync.RWMutex
	artifacts map[types.NamespacedName]*git.Artifact
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{artifacts: map[types.NamespacedName]*git.Artifact{}}
}

// Get returns a source's artifact, if one was fetched.
func (s *Store) Get(key types.NamespacedName) (*git.Artifact, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.artifacts[key]
	return a, ok
}

func (s *Store) put(key types.NamespacedName, a *git.Artifact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.artifacts[key] = a
}

func (s *Store) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.artifacts, key)
}

// GitRepositoryReconciler fetches GitRepositories into a Store.
type GitRepositoryReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Store  *Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: a GitRepository is fetched
// when its spec changes and then at its interval.
func (r *GitRepositoryReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("gitrepository").
		For(&sourcev1.GitRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile fetches one GitRepository and writes its status once.
func (r *GitRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &sourcev1.GitRepository{}
	return status.Loop{
		Client: r.Client, Kind: "GitRepository", Object: repo,
		Fields: status.Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
		Gone:   r.Store.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.fetch(ctx, repo), false },
		Next:   status.Every(&repo.Spec.Suspend, &repo.Spec.Interval.Duration),
	}.Reconcile(ctx, req.NamespacedName)
}

// fetch runs one fetch and returns the Ready condition it earns. A new
// revision is stored, recorded in status and announced.
func (r *GitRepositoryReconciler) fetch(ctx context.Context, repo *sourcev1.GitRepository) metav1.Condition {
	key := client.ObjectKeyFromObject(repo)
	if repo.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no fetch until spec.suspend is unset"}
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Fetch", "%v", err)
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	opts := git.Options{URL: repo.Spec.URL}
	if ref := repo.Spec.Reference; ref != nil {
		opts.Ref = git.Ref{Name: ref.Name, Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Commit: ref.Commit}
	}
	opts.SparseCheckout = repo.Spec.SparseCheckout
	if repo.Spec.Ignore != nil {
		opts.Ignore = *repo.Spec.Ignore
	}
	if ref := repo.Spec.SecretRef; ref != nil {
		secret := &corev1.Secret{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: repo.Namespace, Name: ref.Name}, secret); err != nil {
			return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err))
		}
		auth, err := git.AuthFromSecret(repo.Spec.URL, secret.Data)
		if err != nil {
			return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err))
		}
		opts.Auth = auth
	}
	// The short-circuit needs the artifact in memory and a spec that has
	// not changed since it was made.
	if stored, ok := r.Store.Get(key); ok && repo.Status.Artifact != nil && repo.Status.ObservedGeneration == repo.Generation && stored.Revision == repo.Status.Artifact.Revision {
		opts.LastRevision = stored.Revision
	}
	timeout := 60 * time.Second
	if repo.Spec.Timeout != nil {
		timeout = repo.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	artifact, err := git.Fetch(ctx, opts)
	switch {
	case errors.Is(err, git.ErrUnchanged):
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for revision '" + opts.LastRevision + "'"}
	case errors.Is(err, git.ErrAuth) && repo.Spec.SecretRef == nil:
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the server asks for credentials and spec.secretRef is not set: %w", err))
	case errors.Is(err, git.ErrAuth):
		return failed(sourcev1.ReasonAuthenticationFailed, fmt.Errorf("the server refused the credentials of spec.secretRef (Secret %s): %w", repo.Spec.SecretRef.Name, err))
	case err != nil:
		return failed(sourcev1.ReasonGitOperationFailed, err)
	}
	r.Store.put(key, artifact)
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if repo.Status.Artifact == nil || repo.Status.Artifact.Revision != artifact.Revision || repo.Status.Artifact.Digest != artifact.Digest {
		r.Events.Eventf(repo, nil, corev1.EventTypeNormal, "NewArtifact", "Fetch", "stored artifact for revision '%s'", artifact.Revision)
		repo.Status.Artifact = &sourcev1.Artifact{Revision: artifact.Revision, Digest: artifact.Digest, LastUpdateTime: metav1.NewTime(now())}
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for revision '" + artifact.Revision + "'"}
}
