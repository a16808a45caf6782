// Package source runs the sources of the embedded sync core. It fetches
// each GitRepository at its interval and keeps the artifact in memory, in
// a Store that the appliers of the same process read: no artifact server
// is needed inside one binary.
package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/sync/index"
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

// includeIndex is the field index of the GitRepositories that a
// GitRepository's spec.include names, by which a new artifact of one
// finds the GitRepositories that include it.
const includeIndex = ".spec.include"

// GitRepositoryReconciler fetches GitRepositories into a Store.
type GitRepositoryReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Store  *Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// tokens keeps the GitHub App installation tokens of provider github
	// from one fetch to the next.
	tokens git.InstallationTokens
}

// SetupWithManager registers the controller: a GitRepository is fetched
// when its spec changes, when a reconcile is requested, at its interval,
// and when a GitRepository it includes has a new artifact (or a new spec,
// which may end an include cycle, or is deleted).
func (r *GitRepositoryReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := index.Add(ctx, mgr.GetFieldIndexer(), &sourcev1.GitRepository{}, includeIndex, func(g *sourcev1.GitRepository) []types.NamespacedName {
		keys := make([]types.NamespacedName, 0, len(g.Spec.Include))
		for _, in := range g.Spec.Include {
			keys = append(keys, types.NamespacedName{Namespace: g.Namespace, Name: in.GitRepositoryRef.Name})
		}
		return keys
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &sourcev1.GitRepositoryList{} }
	included := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			before, ok1 := e.ObjectOld.(*sourcev1.GitRepository)
			after, ok2 := e.ObjectNew.(*sourcev1.GitRepository)
			if !ok1 || !ok2 || before.Generation != after.Generation {
				return true
			}
			was, is := before.Status.Artifact, after.Status.Artifact
			return (was == nil) != (is == nil) || (was != nil && (was.Revision != is.Revision || was.Digest != is.Digest))
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("gitrepository").
		For(&sourcev1.GitRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, includeIndex)), builder.WithPredicates(included)).
		Complete(r)
}

// Reconcile fetches one GitRepository and writes its status once.
func (r *GitRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &sourcev1.GitRepository{}
	return status.Loop{
		Client: r.Client, Kind: "GitRepository", Object: repo,
		Fields: status.Fields{ObservedGeneration: &repo.Status.ObservedGeneration, LastHandledReconcileAt: &repo.Status.LastHandledReconcileAt, Conditions: &repo.Status.Conditions},
		Gone:   r.Store.forget,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.fetch(ctx, repo) },
		Next: func(ready metav1.Condition) time.Duration {
			if repo.Spec.Suspend {
				return 0
			}
			// An include's artifact that reaches the Store without
			// changing its status (after a restart) sends no watch event.
			return soonerOn(ready, sourcev1.ReasonIncludeNoArtifact, repo.Spec.Interval.Duration)
		},
	}.Reconcile(ctx, req.NamespacedName)
}

// failure is why a fetch failed: Flux's reason, and whether only a change
// of the spec can help.
type failure struct {
	reason  string
	err     error
	stalled bool
}

// fetch runs one fetch and returns the Ready condition it earns, and
// whether only a spec change can fix it. A new revision, or new content
// (an include, ignore rules, submodules or a sparse checkout that
// changed), is stored, recorded in status and announced.
func (r *GitRepositoryReconciler) fetch(ctx context.Context, repo *sourcev1.GitRepository) (metav1.Condition, bool) {
	key := client.ObjectKeyFromObject(repo)
	if repo.Spec.Suspend {
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSuspended, Message: "Suspended: no fetch until spec.suspend is unset"}, false
	}
	failed := func(f failure) (metav1.Condition, bool) {
		r.Events.Eventf(repo, nil, corev1.EventTypeWarning, f.reason, "Fetch", "%v", f.err)
		ctrl.LoggerFrom(ctx).Info("fetch failed", "reason", f.reason, "error", f.err.Error())
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: f.reason, Message: f.err.Error()}, f.stalled
	}
	// SourceVerified stays from one fetch to the next while spec.verify
	// is set, so that a refusal that repeats writes nothing new.
	if repo.Spec.Verification == nil {
		r.setVerified(repo, "", "", "")
	}
	timeout := 60 * time.Second
	if repo.Spec.Timeout != nil {
		timeout = repo.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts, f := r.options(ctx, repo)
	if f != nil {
		if f.reason == sourcev1.ReasonVerificationError {
			r.setVerified(repo, metav1.ConditionFalse, f.reason, f.err.Error())
		}
		return failed(*f)
	}
	includes, f := r.includes(ctx, repo)
	if f != nil {
		meta.SetStatusCondition(&repo.Status.Conditions, metav1.Condition{Type: sourcev1.IncludeUnavailableCondition, Status: metav1.ConditionTrue, ObservedGeneration: repo.Generation, Reason: f.reason, Message: f.err.Error()})
		return failed(*f)
	}
	meta.RemoveStatusCondition(&repo.Status.Conditions, sourcev1.IncludeUnavailableCondition)
	// The short-circuit needs the artifact in memory, and the settings
	// that shape its content as they were when it was made.
	stored, ok := r.Store.Get(key)
	if ok && repo.Status.Artifact != nil && stored.Revision == repo.Status.Artifact.Revision && !contentChanged(repo, includes) {
		opts.LastRevision = stored.Revision
	}
	artifact, err := git.Fetch(ctx, opts)
	switch {
	case errors.Is(err, git.ErrUnchanged):
		// The stored artifact was verified as spec.verify asks, or
		// contentChanged would have made it again: a refusal since
		// (of a commit that went away, of a Secret that is fixed) ends.
		if repo.Spec.Verification != nil {
			r.setVerified(repo, metav1.ConditionTrue, sourcev1.ReasonSucceeded, stored.Verified)
		}
		return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for revision '" + opts.LastRevision + "'"}, false
	case err != nil:
		f := classify(repo, err)
		if f.verification {
			r.setVerified(repo, metav1.ConditionFalse, f.reason, f.err.Error())
		}
		return failed(f.failure)
	}
	files, digest := artifact.Files, artifact.Digest
	if len(includes) > 0 {
		if files, err = withIncludes(files, includes); err != nil {
			return failed(failure{reason: sourcev1.ReasonCopyFailure, err: err})
		}
		digest = oci.Digest(files)
	}
	r.Store.put(key, &git.Artifact{Revision: artifact.Revision, Digest: digest, Files: files, Verified: artifact.Verified})
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if repo.Status.Artifact == nil || repo.Status.Artifact.Revision != artifact.Revision || repo.Status.Artifact.Digest != digest {
		r.Events.Eventf(repo, nil, corev1.EventTypeNormal, "NewArtifact", "Fetch", "stored artifact for revision '%s'", artifact.Revision)
		repo.Status.Artifact = &sourcev1.Artifact{Revision: artifact.Revision, Digest: digest, LastUpdateTime: metav1.NewTime(now())}
	}
	r.observe(repo, includes, now())
	if repo.Spec.Verification != nil {
		r.setVerified(repo, metav1.ConditionTrue, sourcev1.ReasonSucceeded, artifact.Verified)
	}
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: sourcev1.ReasonSucceeded, Message: "stored artifact for revision '" + artifact.Revision + "'"}, false
}

// observe records the settings the artifact was made with, as Flux does:
// a change of one makes a new artifact even if the revision stays.
func (r *GitRepositoryReconciler) observe(repo *sourcev1.GitRepository, includes []include, now time.Time) {
	repo.Status.IncludedArtifacts = nil
	for _, in := range includes {
		a := &sourcev1.Artifact{Revision: in.artifact.Revision, Digest: in.artifact.Digest, LastUpdateTime: metav1.NewTime(now)}
		// The included GitRepository's status says when it fetched what
		// is in memory, unless its status write is still to come.
		if s := in.status; s != nil && s.Revision == a.Revision && s.Digest == a.Digest {
			a.LastUpdateTime = s.LastUpdateTime
		}
		repo.Status.IncludedArtifacts = append(repo.Status.IncludedArtifacts, a)
	}
	repo.Status.ObservedIgnore = nil
	if repo.Spec.Ignore != nil {
		repo.Status.ObservedIgnore = ptr.To(*repo.Spec.Ignore)
	}
	repo.Status.ObservedRecurseSubmodules = repo.Spec.RecurseSubmodules
	repo.Status.ObservedInclude = slices.Clone(repo.Spec.Include)
	repo.Status.ObservedSparseCheckout = slices.Clone(repo.Spec.SparseCheckout)
}

// setVerified writes the SourceVerified condition and the mode it was
// earned with; an empty status removes both, as without spec.verify.
func (r *GitRepositoryReconciler) setVerified(repo *sourcev1.GitRepository, s metav1.ConditionStatus, reason, message string) {
	switch s {
	case "":
		meta.RemoveStatusCondition(&repo.Status.Conditions, sourcev1.SourceVerifiedCondition)
		repo.Status.SourceVerificationMode = nil
	case metav1.ConditionTrue:
		repo.Status.SourceVerificationMode = ptr.To(repo.Spec.Verification.GetMode())
		fallthrough
	default:
		meta.SetStatusCondition(&repo.Status.Conditions, metav1.Condition{Type: sourcev1.SourceVerifiedCondition, Status: s, ObservedGeneration: repo.Generation, Reason: reason, Message: message})
	}
}

// contentChanged tells whether the artifact must be made again although
// the revision has not moved, as Flux's gitContentConfigChanged does: a
// setting that shapes its content differs from the one it was made with,
// an included artifact changed, or the signatures were not checked as
// spec.verify now asks.
func contentChanged(repo *sourcev1.GitRepository, includes []include) bool {
	spec, observed := repo.Spec, repo.Status
	if !ptr.Equal(spec.Ignore, observed.ObservedIgnore) || spec.RecurseSubmodules != observed.ObservedRecurseSubmodules ||
		!slices.Equal(spec.SparseCheckout, observed.ObservedSparseCheckout) || !slices.Equal(spec.Include, observed.ObservedInclude) {
		return true
	}
	if len(includes) != len(observed.IncludedArtifacts) {
		return true
	}
	for i, in := range includes {
		was := observed.IncludedArtifacts[i]
		if was == nil || was.Revision != in.artifact.Revision || was.Digest != in.artifact.Digest {
			return true
		}
	}
	if v := spec.Verification; v != nil {
		mode, was := v.GetMode(), observed.SourceVerificationMode
		if was == nil || (*was != sourcev1.ModeGitTagAndHEAD && *was != mode) {
			return true
		}
	}
	return false
}

// options turns the spec and its Secrets into what to fetch and how. Its
// failures name the field and the Secret.
func (r *GitRepositoryReconciler) options(ctx context.Context, repo *sourcev1.GitRepository) (git.Options, *failure) {
	opts := git.Options{URL: repo.Spec.URL, SparseCheckout: repo.Spec.SparseCheckout, RecurseSubmodules: repo.Spec.RecurseSubmodules}
	if ref := repo.Spec.Reference; ref != nil {
		opts.Ref = git.Ref{Name: ref.Name, Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Commit: ref.Commit}
	}
	if repo.Spec.Ignore != nil {
		opts.Ignore = *repo.Spec.Ignore
	}
	authFailed := func(err error) *failure { return &failure{reason: sourcev1.ReasonAuthenticationFailed, err: err} }
	var data map[string][]byte
	secretName := ""
	if ref := repo.Spec.SecretRef; ref != nil {
		secret, err := readSecret(ctx, r.Client, repo.Namespace, ref.Name)
		if err != nil {
			return opts, authFailed(fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err))
		}
		data, secretName = secret.Data, ref.Name
		if opts.TLS, err = git.TLSFromSecret(data); err != nil {
			return opts, authFailed(fmt.Errorf("spec.secretRef: Secret %s: %w", ref.Name, err))
		}
	}
	proxy, err := proxyFrom(ctx, r.Client, repo.Namespace, repo.Spec.ProxySecretRef)
	if err != nil {
		return opts, authFailed(err)
	}
	if proxy != nil {
		opts.Proxy = transport.ProxyOptions{URL: (&url.URL{Scheme: proxy.Scheme, Host: proxy.Host, Path: proxy.Path}).String()}
		if proxy.User != nil {
			opts.Proxy.Username = proxy.User.Username()
			opts.Proxy.Password, _ = proxy.User.Password()
		}
	}
	invalid := func(err error, stalled bool) *failure {
		return &failure{reason: sourcev1.ReasonInvalidProviderConfiguration, err: err, stalled: stalled}
	}
	switch provider := repo.Spec.Provider; provider {
	case sourcev1.GitProviderGitHub:
		if !git.HasGitHubAppData(data) {
			return opts, invalid(fmt.Errorf("spec.provider github: the Secret %q of spec.secretRef holds no %s: it needs the GitHub App's keys", secretName, git.KeyGitHubAppID), false)
		}
		app, err := git.AppInstallationFromSecret(data)
		if err != nil {
			return opts, invalid(fmt.Errorf("spec.provider github: spec.secretRef: Secret %s: %w", secretName, err), false)
		}
		app.TLS, app.Proxy = opts.TLS, proxy
		if opts.Auth, err = r.tokens.Auth(ctx, app); err != nil {
			return opts, authFailed(fmt.Errorf("spec.provider github: %w", err))
		}
	case "", sourcev1.GitProviderGeneric:
		if git.HasGitHubAppData(data) {
			return opts, invalid(fmt.Errorf("spec.secretRef: Secret %s holds a GitHub App's keys and spec.provider is not github", secretName), false)
		}
		auth, err := git.AuthFromSecret(repo.Spec.URL, data)
		if err != nil {
			return opts, authFailed(fmt.Errorf("spec.secretRef: Secret %s: %w", secretName, err))
		}
		opts.Auth = auth
	default:
		// The API server refuses these; an object stored before that
		// rule cannot work until its spec changes.
		return opts, invalid(fmt.Errorf("spec.provider %s is not supported: cloud identities are out of scope", provider), true)
	}
	if v := repo.Spec.Verification; v != nil {
		verifyFailed := func(err error) *failure { return &failure{reason: sourcev1.ReasonVerificationError, err: err} }
		secret, err := readSecret(ctx, r.Client, repo.Namespace, v.SecretRef.Name)
		if err != nil {
			return opts, verifyFailed(fmt.Errorf("spec.verify.secretRef: Secret %s: %w", v.SecretRef.Name, err))
		}
		if opts.Verify, err = git.VerifyFromSecret(git.VerifyMode(v.GetMode()), secret.Data); err != nil {
			return opts, verifyFailed(fmt.Errorf("spec.verify.secretRef: Secret %s %w", v.SecretRef.Name, err))
		}
	}
	return opts, nil
}

// fetchFailure is a failed fetch's failure, and whether it was a
// signature check's.
type fetchFailure struct {
	failure
	verification bool
}

// classify gives a failed fetch Flux's reason.
func classify(repo *sourcev1.GitRepository, err error) fetchFailure {
	verify := func(reason string, stalled bool) fetchFailure {
		return fetchFailure{failure: failure{reason: reason, err: fmt.Errorf("spec.verify: %w", err), stalled: stalled}, verification: true}
	}
	switch {
	case errors.Is(err, git.ErrCommitSignature):
		return verify(sourcev1.ReasonInvalidCommitSignature, false)
	case errors.Is(err, git.ErrTagSignature):
		return verify(sourcev1.ReasonInvalidTagSignature, false)
	case errors.Is(err, git.ErrTagUnsigned):
		return verify(sourcev1.ReasonInvalidGitObject, false)
	case errors.Is(err, git.ErrNoTag):
		return verify(sourcev1.ReasonInvalidVerificationMode, true)
	case errors.Is(err, git.ErrSHA256):
		return fetchFailure{failure: failure{reason: sourcev1.ReasonGitOperationFailed, err: fmt.Errorf("spec.ref.commit: %w", err), stalled: true}}
	case errors.Is(err, git.ErrAuth) && repo.Spec.SecretRef == nil:
		return fetchFailure{failure: failure{reason: sourcev1.ReasonAuthenticationFailed, err: fmt.Errorf("the server asks for credentials and spec.secretRef is not set: %w", err)}}
	case errors.Is(err, git.ErrAuth):
		return fetchFailure{failure: failure{reason: sourcev1.ReasonAuthenticationFailed, err: fmt.Errorf("the server refused the credentials of spec.secretRef (Secret %s): %w", repo.Spec.SecretRef.Name, err)}}
	}
	return fetchFailure{failure: failure{reason: sourcev1.ReasonGitOperationFailed, err: err}}
}

// include is an artifact of spec.include: the files in memory and the
// included GitRepository's status of them.
type include struct {
	spec     sourcev1.GitRepositoryInclude
	artifact *git.Artifact
	status   *sourcev1.Artifact
}

// includes reads the artifacts of spec.include, in its order. An include
// that does not exist or has no artifact yet is Flux's NotFound or
// NoArtifact; one that leads back here is a cycle.
func (r *GitRepositoryReconciler) includes(ctx context.Context, repo *sourcev1.GitRepository) ([]include, *failure) {
	if len(repo.Spec.Include) == 0 {
		return nil, nil
	}
	if cycle := r.includeCycle(ctx, repo); cycle != nil {
		return nil, &failure{reason: sourcev1.ReasonIncludeCycle, err: fmt.Errorf("spec.include leads back to GitRepository %s: %s", repo.Name, strings.Join(cycle, " includes "))}
	}
	out := make([]include, 0, len(repo.Spec.Include))
	for i, in := range repo.Spec.Include {
		key := types.NamespacedName{Namespace: repo.Namespace, Name: in.GitRepositoryRef.Name}
		dep := &sourcev1.GitRepository{}
		if err := r.Client.Get(ctx, key, dep); err != nil {
			return nil, &failure{reason: sourcev1.ReasonIncludeNotFound, err: fmt.Errorf("spec.include[%d]: GitRepository %s: %w", i, key.Name, err)}
		}
		stored, ok := r.Store.Get(key)
		if !ok || dep.Status.Artifact == nil {
			return nil, &failure{reason: sourcev1.ReasonIncludeNoArtifact, err: fmt.Errorf("spec.include[%d]: GitRepository %s has no artifact yet", i, key.Name)}
		}
		out = append(out, include{spec: in, artifact: stored, status: dep.Status.Artifact})
	}
	return out, nil
}

// includeCycle returns the names along a chain of spec.include that
// leads from repo back to it, or nil.
func (r *GitRepositoryReconciler) includeCycle(ctx context.Context, repo *sourcev1.GitRepository) []string {
	seen := map[string]bool{}
	var walk func(name string, chain []string) []string
	walk = func(name string, chain []string) []string {
		chain = append(slices.Clone(chain), name)
		if name == repo.Name && len(chain) > 1 {
			return chain
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		includes := repo.Spec.Include
		if name != repo.Name {
			dep := &sourcev1.GitRepository{}
			if err := r.Client.Get(ctx, types.NamespacedName{Namespace: repo.Namespace, Name: name}, dep); err != nil {
				return nil
			}
			includes = dep.Spec.Include
		}
		for _, in := range includes {
			if cycle := walk(in.GitRepositoryRef.Name, chain); cycle != nil {
				return cycle
			}
		}
		return nil
	}
	return walk(repo.Name, nil)
}

// withIncludes copies the included files into a copy of files, as Flux
// copies an include's fromPath (all of the artifact when empty) to its
// toPath (the included GitRepository's name when empty). A fromPath that
// names a file copies that file to toPath.
func withIncludes(files map[string][]byte, includes []include) (map[string][]byte, error) {
	out := maps.Clone(files)
	for i, in := range includes {
		from, to := cleanPath(in.spec.FromPath), cleanPath(in.spec.GetToPath())
		copied := 0
		for name, data := range in.artifact.Files {
			var dest string
			switch {
			case from == "":
				dest = path.Join(to, name)
			case name == from && to != "":
				dest = to
			case name == from:
				dest = path.Base(name)
			case strings.HasPrefix(name, from+"/"):
				dest = path.Join(to, strings.TrimPrefix(name, from+"/"))
			default:
				continue
			}
			out[dest] = data
			copied++
		}
		if copied == 0 && from != "" {
			return nil, fmt.Errorf("spec.include[%d]: fromPath %q is not in the artifact of GitRepository %s", i, in.spec.FromPath, in.spec.GitRepositoryRef.Name)
		}
	}
	return out, nil
}

// cleanPath is a path of an include, relative and inside the artifact
// whatever it says: "" is the root.
func cleanPath(p string) string {
	return strings.Trim(path.Clean("/"+p), "/")
}
