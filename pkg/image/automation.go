package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/image/update"
	"sluice.dev/sluice/pkg/source/git"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=image.sluice.dev,resources=imageupdateautomations,verbs=get;list;watch
// +kubebuilder:rbac:groups=image.sluice.dev,resources=imageupdateautomations/status,verbs=get;update;patch

// defaultMessage is Flux's commit message when no template is given.
const defaultMessage = "Update from image update automation"

// AutomationReconciler runs ImageUpdateAutomations: it writes the tags the
// policies chose into the marked fields, commits and pushes; with
// onCanaryFailure: Revert it writes a rolled-back tag's predecessor back.
type AutomationReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the controller: an automation runs when its
// spec changes, when a policy it may use chooses another tag, when a
// Canary rolls back, and then at its interval.
func (r *AutomationReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("imageupdateautomation").
		For(&imagev1.ImageUpdateAutomation{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&imagev1.ImagePolicy{}, handler.EnqueueRequestsFromMapFunc(r.inNamespace), builder.WithPredicates(latestChanged{})).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(r.reverting), builder.WithPredicates(canaryFailed{})).
		Complete(r)
}

// inNamespace maps a policy to the automations of its namespace, which
// are the ones that may use it.
func (r *AutomationReconciler) inNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list imagev1.ImageUpdateAutomationList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list ImageUpdateAutomations")
		return nil
	}
	return requests(list.Items, func(*imagev1.ImageUpdateAutomation) bool { return true })
}

// reverting maps a Canary to the automations that revert on a failure.
func (r *AutomationReconciler) reverting(ctx context.Context, _ client.Object) []reconcile.Request {
	var list imagev1.ImageUpdateAutomationList
	if err := r.Client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list ImageUpdateAutomations")
		return nil
	}
	return requests(list.Items, func(a *imagev1.ImageUpdateAutomation) bool {
		return a.Spec.OnCanaryFailure == imagev1.CanaryFailureRevert
	})
}

func requests(items []imagev1.ImageUpdateAutomation, keep func(*imagev1.ImageUpdateAutomation) bool) []reconcile.Request {
	var out []reconcile.Request
	for i := range items {
		if keep(&items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&items[i])})
		}
	}
	return out
}

// Reconcile runs one automation and writes its status once.
func (r *AutomationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &imagev1.ImageUpdateAutomation{}
	return status.Loop{
		Client: r.Client, Kind: "ImageUpdateAutomation", Object: a,
		Fields: status.Fields{ObservedGeneration: &a.Status.ObservedGeneration, LastHandledReconcileAt: &a.Status.LastHandledReconcileAt, Conditions: &a.Status.Conditions},
		Gone:   nil,
		Pass:   func(ctx context.Context) (metav1.Condition, bool) { return r.run(ctx, a) },
		Next:   status.Every(&a.Spec.Suspend, &a.Spec.Interval.Duration),
	}.Reconcile(ctx, req.NamespacedName)
}

func (r *AutomationReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// run clones, updates, commits and pushes once, and returns the Ready
// condition it earns and whether only a spec change can fix it.
func (r *AutomationReconciler) run(ctx context.Context, a *imagev1.ImageUpdateAutomation) (metav1.Condition, bool) {
	if a.Spec.Suspend {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: imagev1.ReasonSuspended, Message: "Suspended: no run until spec.suspend is unset"}, false
	}
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(a, nil, corev1.EventTypeWarning, reason, "Update", "%v", err)
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	now := metav1.NewTime(r.now())
	a.Status.LastAutomationRunTime = &now
	tmpl, err := messageTemplate(a)
	if err != nil {
		return failed(imagev1.ReasonInvalidSpec, err), true
	}
	opts, err := r.gitOptions(ctx, a)
	if err != nil {
		var dep dependencyError
		if errors.As(err, &dep) {
			return failed(imagev1.ReasonDependencyNotReady, err), false
		}
		return failed(imagev1.ReasonAuthenticationFailed, err), false
	}
	policies, pending, err := r.policies(ctx, a)
	if err != nil {
		return failed(imagev1.ReasonDependencyNotReady, err), false
	}
	var failures []imagev1.CanaryFailure
	if a.Spec.OnCanaryFailure == imagev1.CanaryFailureRevert {
		canaries, err := failedCanaries(ctx, r.Client)
		if err != nil {
			return failed(imagev1.ReasonDependencyNotReady, err), false
		}
		failures = newFailures(a, canaries, now.Time)
	}
	// A policy still naming a failed tag has not seen the failure yet:
	// write the tag its Canary last promoted instead, so that a run
	// between the revert and the policy's next choice does not undo the
	// revert.
	for _, f := range append(slices.Clone(a.Status.CanaryFailures), failures...) {
		ns, name, _ := strings.Cut(f.Policy, "/")
		key := policyKey(ns, name)
		if img, ok := policies[key]; ok && img.Tag == f.Tag && f.RevertedTo != "" {
			policies[key] = update.Image{Name: img.Name, Tag: f.RevertedTo}
		}
	}
	var result update.Result
	edit := func(files map[string][]byte) (map[string][]byte, string, error) {
		res, err := update.Apply(files, updatePath(a), a.Namespace, policies)
		if err != nil {
			return nil, "", fileError{err}
		}
		result = res
		if len(res.Changes) == 0 {
			return nil, "", nil
		}
		if len(failures) > 0 {
			return res.Files, revertMessage(a, failures), nil
		}
		msg, err := renderMessage(tmpl, a, res)
		return res.Files, msg, err
	}
	pushed, err := git.Update(ctx, opts, edit)
	// A run that failed saw no markers: keep what the last good run saw,
	// which the revert of a failed Canary needs.
	if err == nil || errors.Is(err, git.ErrNoChange) {
		a.Status.ObservedPolicies = observed(result, a.Namespace)
	}
	var missing *update.MissingPolicyError
	switch {
	case errors.As(err, &missing) && pending[missing.Policy]:
		return metav1.Condition{Status: metav1.ConditionUnknown, Reason: imagev1.ReasonDependencyNotReady, Message: fmt.Sprintf("%v: the ImagePolicy has not chosen a tag yet", err)}, false
	case errors.As(err, &missing):
		return failed(imagev1.ReasonPolicyNotFound, err), false
	case errors.As(err, new(fileError)):
		return failed(imagev1.ReasonInvalidFile, fmt.Errorf("spec.update.path: %w", err)), false
	case errors.Is(err, git.ErrAuth):
		return failed(imagev1.ReasonAuthenticationFailed, fmt.Errorf("the Git server refused the credentials of GitRepository %s: %w", sourceKey(a), err)), false
	case errors.Is(err, git.ErrPushRejected):
		return failed(imagev1.ReasonPushRejected, err), false
	case errors.Is(err, git.ErrNoChange):
		r.recordReverts(a, failures, "")
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: imagev1.ReasonSucceeded, Message: noChangeMessage(a)}, false
	case err != nil:
		return failed(imagev1.ReasonGitOperationFailed, err), false
	}
	a.Status.LastPushCommit, a.Status.LastPushTime = pushed.Commit, &now
	r.recordReverts(a, failures, pushed.Commit)
	if len(failures) == 0 {
		r.Events.Eventf(a, nil, corev1.EventTypeNormal, imagev1.ReasonSucceeded, "Update", "committed and pushed %s to %s: %d changes", shortSHA(pushed.Commit), pushed.Branch, len(result.Changes))
	}
	msg := fmt.Sprintf("pushed commit '%s' to branch '%s'", shortSHA(pushed.Commit), pushed.Branch)
	reason := imagev1.ReasonSucceeded
	if len(failures) > 0 {
		msg = fmt.Sprintf("reverted %s to %s after Canary %s rolled it back; pushed commit '%s' to branch '%s'", failures[0].Image, failures[0].RevertedTo, failures[0].Canary, shortSHA(pushed.Commit), pushed.Branch)
		reason = imagev1.ReasonCanaryReverted
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: reason, Message: msg}, false
}

// recordReverts records each new failure with its revert commit, which
// makes its policy skip the tag, and tells people, with a Warning: a
// release was rolled back and Git changed.
func (r *AutomationReconciler) recordReverts(a *imagev1.ImageUpdateAutomation, failures []imagev1.CanaryFailure, commit string) {
	for i := range failures {
		failures[i].Commit = commit
	}
	// Recorded only once Git agrees: a failed push finds them again.
	a.Status.CanaryFailures = rememberFailures(a.Status.CanaryFailures, failures)
	for _, f := range failures {
		note := fmt.Sprintf("Canary %s rolled back %s:%s (%s); wrote %s back in commit %s", f.Canary, f.Image, f.Tag, f.Reason, f.RevertedTo, shortSHA(commit))
		if commit == "" {
			note = fmt.Sprintf("Canary %s rolled back %s:%s (%s); Git already holds %s", f.Canary, f.Image, f.Tag, f.Reason, f.RevertedTo)
		}
		r.Events.Eventf(a, nil, corev1.EventTypeWarning, imagev1.ReasonCanaryReverted, "Revert", "%s", note)
	}
}

func noChangeMessage(a *imagev1.ImageUpdateAutomation) string {
	if a.Status.LastPushCommit == "" {
		return "no updates made"
	}
	return fmt.Sprintf("no updates made; last commit '%s' at %s", shortSHA(a.Status.LastPushCommit), a.Status.LastPushTime.Format(time.RFC3339))
}

func shortSHA(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// dependencyError marks a source that is missing rather than refusing.
type dependencyError struct{ error }

// fileError marks a file the setters cannot read, as opposed to a Git
// failure.
type fileError struct{ error }

func (e fileError) Unwrap() error { return e.error }

func sourceKey(a *imagev1.ImageUpdateAutomation) types.NamespacedName {
	return types.NamespacedName{Namespace: index.NamespaceOr(a.Spec.SourceRef.Namespace, a.Namespace), Name: a.Spec.SourceRef.Name}
}

// gitOptions reads the GitRepository and the Secrets an automation
// needs: where to clone, with which credentials, what to check out, who
// commits and where to push.
func (r *AutomationReconciler) gitOptions(ctx context.Context, a *imagev1.ImageUpdateAutomation) (git.UpdateOptions, error) {
	key := sourceKey(a)
	repo := &sourcev1.GitRepository{}
	if err := r.Client.Get(ctx, key, repo); apierrors.IsNotFound(err) {
		return git.UpdateOptions{}, dependencyError{fmt.Errorf("spec.sourceRef: GitRepository %s not found", key)}
	} else if err != nil {
		return git.UpdateOptions{}, dependencyError{fmt.Errorf("spec.sourceRef: GitRepository %s: %w", key, err)}
	}
	opts := git.UpdateOptions{URL: repo.Spec.URL}
	if ref := repo.Spec.Reference; ref != nil {
		opts.CheckoutRef = git.Ref{Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Commit: ref.Commit}
	}
	if ref := repo.Spec.SecretRef; ref != nil {
		secret := &corev1.Secret{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: ref.Name}, secret); err != nil {
			return opts, fmt.Errorf("GitRepository %s spec.secretRef: Secret %s: %w", key, ref.Name, err)
		}
		auth, err := git.AuthFromSecret(repo.Spec.URL, secret.Data)
		if err != nil {
			return opts, fmt.Errorf("GitRepository %s spec.secretRef: Secret %s: %w", key, ref.Name, err)
		}
		opts.Auth = auth
	}
	spec := a.Spec.GitSpec
	if spec == nil {
		return opts, nil
	}
	if c := spec.Checkout; c != nil {
		ref := c.Reference
		opts.CheckoutRef = git.Ref{Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Commit: ref.Commit}
		if b, ok := strings.CutPrefix(ref.Name, "refs/heads/"); ok && opts.CheckoutRef.Branch == "" {
			opts.CheckoutRef.Branch = b
		}
	}
	opts.Author = git.Signature{Name: spec.Commit.Author.Name, Email: spec.Commit.Author.Email}
	if p := spec.Push; p != nil {
		opts.PushBranch, opts.PushRefspec, opts.PushOptions = p.Branch, p.Refspec, p.Options
	}
	if sk := spec.Commit.SigningKey; sk != nil {
		secret := &corev1.Secret{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: sk.SecretRef.Name}, secret); err != nil {
			return opts, fmt.Errorf("spec.git.commit.signingKey: Secret %s: %w", sk.SecretRef.Name, err)
		}
		entity, err := git.SigningKeyFromSecret(secret.Data)
		if err != nil {
			return opts, fmt.Errorf("spec.git.commit.signingKey: Secret %s: %w", sk.SecretRef.Name, err)
		}
		opts.SigningKey = entity
	}
	return opts, nil
}

// policyKey is how the setters name a policy.
func policyKey(ns, name string) string { return ns + "/" + name }

// policies returns the images the selected policies chose, by policy
// key, and the keys of those that have not chosen yet.
func (r *AutomationReconciler) policies(ctx context.Context, a *imagev1.ImageUpdateAutomation) (map[string]update.Image, map[string]bool, error) {
	selector := labels.Everything()
	if s := a.Spec.PolicySelector; s != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(s); err != nil {
			return nil, nil, fmt.Errorf("spec.policySelector: %w", err)
		}
	}
	var list imagev1.ImagePolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(a.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, nil, fmt.Errorf("list ImagePolicies: %w", err)
	}
	chosen, pending := map[string]update.Image{}, map[string]bool{}
	for _, p := range list.Items {
		key := policyKey(p.Namespace, p.Name)
		if ref := p.Status.LatestRef; ref != nil {
			chosen[key] = update.Image{Name: ref.Name, Tag: ref.Tag, Digest: ref.Digest}
		} else {
			pending[key] = true
		}
	}
	return chosen, pending, nil
}

// observed is status.observedPolicies: the policies the markers named,
// by name, with the image written.
func observed(res update.Result, ns string) map[string]imagev1.ImageRef {
	if len(res.Policies) == 0 {
		return nil
	}
	out := map[string]imagev1.ImageRef{}
	for _, key := range slices.Sorted(maps.Keys(res.Policies)) {
		img := res.Policies[key]
		pns, name, _ := strings.Cut(key, "/")
		if pns != ns {
			continue
		}
		out[name] = imagev1.ImageRef{Name: img.Name, Tag: img.Tag, Digest: img.Digest}
	}
	return out
}

func updatePath(a *imagev1.ImageUpdateAutomation) string {
	if a.Spec.Update == nil {
		return ""
	}
	return a.Spec.Update.Path
}

// messageTemplate parses spec.git.commit.messageTemplate, or Flux's
// default message.
func messageTemplate(a *imagev1.ImageUpdateAutomation) (*template.Template, error) {
	text := defaultMessage
	if g := a.Spec.GitSpec; g != nil && g.Commit.MessageTemplate != "" {
		text = g.Commit.MessageTemplate
	}
	t, err := template.New("message").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("spec.git.commit.messageTemplate: %w", err)
	}
	return t, nil
}

// templateData is what a message template sees, in Flux's names.
type templateData struct {
	AutomationObject types.NamespacedName
	Changed          update.Result
	Values           map[string]string
}

func renderMessage(t *template.Template, a *imagev1.ImageUpdateAutomation, res update.Result) (string, error) {
	data := templateData{AutomationObject: client.ObjectKeyFromObject(a), Changed: res}
	if g := a.Spec.GitSpec; g != nil {
		data.Values = g.Commit.MessageTemplateValues
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("spec.git.commit.messageTemplate: %w", err)
	}
	return b.String(), nil
}

// latestChanged passes policy updates that chose another image.
type latestChanged struct{ predicate.Funcs }

func (latestChanged) Update(e event.UpdateEvent) bool {
	was, now := e.ObjectOld.(*imagev1.ImagePolicy), e.ObjectNew.(*imagev1.ImagePolicy)
	a, b := was.Status.LatestRef, now.Status.LatestRef
	return (a == nil) != (b == nil) || (a != nil && *a != *b)
}

// canaryFailed passes Canaries entering the Failed phase.
type canaryFailed struct{ predicate.Funcs }

func (canaryFailed) Create(e event.CreateEvent) bool {
	return e.Object.(*sluicev1beta1.Canary).Status.Phase == sluicev1beta1.CanaryPhaseFailed
}

func (canaryFailed) Update(e event.UpdateEvent) bool {
	was, now := e.ObjectOld.(*sluicev1beta1.Canary), e.ObjectNew.(*sluicev1beta1.Canary)
	return now.Status.Phase == sluicev1beta1.CanaryPhaseFailed && was.Status.Phase != now.Status.Phase
}

func (canaryFailed) Delete(event.DeleteEvent) bool   { return false }
func (canaryFailed) Generic(event.GenericEvent) bool { return false }
