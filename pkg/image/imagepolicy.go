package image

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"sluice.dev/sluice/pkg/image/policy"
	"sluice.dev/sluice/pkg/image/registry"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=image.sluice.dev,resources=imagepolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=image.sluice.dev,resources=imagepolicies/status,verbs=get;update;patch

// repositoryField indexes ImagePolicies by their ImageRepository, as
// namespace/name.
const repositoryField = "spec.imageRepositoryRef"

// PolicyReconciler chooses each ImagePolicy's latest tag from the tags in
// a TagStore, passing over tags a Canary failed.
type PolicyReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	Tags   *TagStore
}

// SetupWithManager registers the controller: a policy chooses again when
// its spec changes, when its repository's scan finds other tags, and when
// an automation records a Canary failure of one of its tags.
func (r *PolicyReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &imagev1.ImagePolicy{}, repositoryField, func(o client.Object) []string {
		p := o.(*imagev1.ImagePolicy)
		return []string{repositoryKey(p).String()}
	}); err != nil {
		return fmt.Errorf("index ImagePolicies by ImageRepository: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("imagepolicy").
		For(&imagev1.ImagePolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&imagev1.ImageRepository{}, handler.EnqueueRequestsFromMapFunc(r.byRepository), builder.WithPredicates(scanChanged{})).
		Watches(&imagev1.ImageUpdateAutomation{}, handler.EnqueueRequestsFromMapFunc(r.byFailures), builder.WithPredicates(failuresChanged{})).
		Complete(r)
}

// repositoryKey is the ImageRepository a policy chooses from.
func repositoryKey(p *imagev1.ImagePolicy) types.NamespacedName {
	ref := p.Spec.ImageRepositoryRef
	return types.NamespacedName{Namespace: index.NamespaceOr(ref.Namespace, p.Namespace), Name: ref.Name}
}

// byRepository maps an ImageRepository to the policies choosing from it.
func (r *PolicyReconciler) byRepository(ctx context.Context, o client.Object) []reconcile.Request {
	var list imagev1.ImagePolicyList
	if err := r.Client.List(ctx, &list, client.MatchingFields{repositoryField: client.ObjectKeyFromObject(o).String()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list ImagePolicies by ImageRepository")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// byFailures maps an automation to the policies whose tags it recorded
// as failed.
func (r *PolicyReconciler) byFailures(_ context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, f := range o.(*imagev1.ImageUpdateAutomation).Status.CanaryFailures {
		if ns, name, ok := strings.Cut(f.Policy, "/"); ok {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		}
	}
	return out
}

// Reconcile chooses one policy's latest tag and writes its status once.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &imagev1.ImagePolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := p.DeepCopy()
	ready, stalled, requeue := r.choose(ctx, p)
	fields := status.Fields{ObservedGeneration: &p.Status.ObservedGeneration, Conditions: &p.Status.Conditions}
	if err := status.Write(ctx, r.Client, "ImagePolicy", p, before, fields, ready, stalled); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// choose picks the latest tag and returns the Ready condition it earns,
// whether only a spec change can fix it, and when to look again.
func (r *PolicyReconciler) choose(ctx context.Context, p *imagev1.ImagePolicy) (ready metav1.Condition, stalled bool, requeue time.Duration) {
	failed := func(reason string, err error) metav1.Condition {
		r.Events.Eventf(p, nil, corev1.EventTypeWarning, reason, "Choose", "%v", err)
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: err.Error()}
	}
	rule := rule(p)
	if err := rule.Validate(); err != nil {
		return failed(imagev1.ReasonInvalidSpec, err), true, 0
	}
	repoKey := repositoryKey(p)
	repo := &imagev1.ImageRepository{}
	if err := r.Client.Get(ctx, repoKey, repo); apierrors.IsNotFound(err) {
		return failed(imagev1.ReasonDependencyNotReady, fmt.Errorf("spec.imageRepositoryRef: ImageRepository %s not found", repoKey)), false, 0
	} else if err != nil {
		return failed(imagev1.ReasonDependencyNotReady, fmt.Errorf("spec.imageRepositoryRef: ImageRepository %s: %w", repoKey, err)), false, 0
	}
	tags, ok := r.Tags.Get(repoKey)
	if !ok {
		// Not an error yet: the repository's first scan will wake us.
		return metav1.Condition{Status: metav1.ConditionUnknown, Reason: imagev1.ReasonDependencyNotReady, Message: fmt.Sprintf("waiting for the first scan of ImageRepository %s", repoKey)}, false, 0
	}
	failedTags, err := r.failedTags(ctx, client.ObjectKeyFromObject(p))
	if err != nil {
		return failed(imagev1.ReasonDependencyNotReady, err), false, 0
	}
	tag, err := policy.Latest(rule, tags, func(t string) bool { return failedTags[t] })
	if errors.Is(err, policy.ErrNoMatch) {
		return failed(imagev1.ReasonNoMatchingTag, fmt.Errorf("ImageRepository %s: %w", repoKey, err)), false, 0
	} else if err != nil {
		return failed(imagev1.ReasonInvalidSpec, err), true, 0
	}
	p.Status.SkippedTags = skipped(rule, failedTags, tags, tag)
	latest := imagev1.ImageRef{Name: repo.Spec.Image, Tag: tag}
	if p.Spec.DigestReflectionPolicy == imagev1.ReflectAlways || p.Spec.DigestReflectionPolicy == imagev1.ReflectIfNotPresent {
		if old := p.Status.LatestRef; p.Spec.DigestReflectionPolicy == imagev1.ReflectIfNotPresent && old != nil && old.Name == latest.Name && old.Tag == tag && old.Digest != "" {
			latest.Digest = old.Digest
		} else {
			digest, err := r.digest(ctx, repo, tag)
			if err != nil {
				return failed(imagev1.ReasonUnreachable, fmt.Errorf("look up the digest of %s:%s: %w", repo.Spec.Image, tag, err)), false, time.Minute
			}
			latest.Digest = digest
		}
		if p.Spec.DigestReflectionPolicy == imagev1.ReflectAlways && p.Spec.Interval != nil {
			requeue = p.Spec.Interval.Duration
		}
	}
	if old := p.Status.LatestRef; old == nil || *old != latest {
		from := "none"
		if old != nil {
			from = old.String()
			p.Status.ObservedPreviousRef = old
		}
		r.Events.Eventf(p, nil, corev1.EventTypeNormal, imagev1.ReasonSucceeded, "Choose", "latest image for %s changed from %s to %s", repoKey, from, latest.String())
		p.Status.LatestRef = &latest
	}
	msg := fmt.Sprintf("latest image %s", latest.String())
	if len(p.Status.SkippedTags) > 0 {
		msg += fmt.Sprintf("; skipped %s, which a Canary rolled back", strings.Join(p.Status.SkippedTags, ", "))
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: imagev1.ReasonSucceeded, Message: msg}, false, requeue
}

// rule turns a policy's spec into the rule that orders its tags.
func rule(p *imagev1.ImagePolicy) policy.Policy {
	var out policy.Policy
	c := p.Spec.Policy
	if c.SemVer != nil {
		out.SemVer = &policy.SemVer{Range: c.SemVer.Range}
	}
	if c.Alphabetical != nil {
		out.Alphabetical = &policy.Ordering{Order: c.Alphabetical.Order}
	}
	if c.Numerical != nil {
		out.Numerical = &policy.Ordering{Order: c.Numerical.Order}
	}
	if f := p.Spec.FilterTags; f != nil {
		out.FilterPattern, out.Extract = f.Pattern, f.Extract
	}
	return out
}

// failedTags are the tags of a policy that Canaries rolled back, as every
// automation recorded them.
func (r *PolicyReconciler) failedTags(ctx context.Context, key types.NamespacedName) (map[string]bool, error) {
	var list imagev1.ImageUpdateAutomationList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list ImageUpdateAutomations: %w", err)
	}
	out := map[string]bool{}
	for _, a := range list.Items {
		if a.Spec.OnCanaryFailure != imagev1.CanaryFailureRevert {
			continue
		}
		for _, f := range a.Status.CanaryFailures {
			if f.Policy == key.String() {
				out[f.Tag] = true
			}
		}
	}
	return out, nil
}

// skipped lists the failed tags that would have been chosen over the
// chosen one: a failed tag older than the choice is no longer skipped.
func skipped(rule policy.Policy, failed map[string]bool, tags []string, chosen string) []string {
	var out []string
	for _, t := range tags {
		if !failed[t] {
			continue
		}
		if newer, err := policy.Newer(rule, t, chosen); err == nil && newer {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// digest looks up a tag's manifest digest with the repository's
// credentials.
func (r *PolicyReconciler) digest(ctx context.Context, repo *imagev1.ImageRepository, tag string) (string, error) {
	opts, err := registryOptions(ctx, r.Client, repo)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return registry.Digest(ctx, opts, tag)
}

// scanChanged passes ImageRepository updates whose scan found other tags.
type scanChanged struct{ predicate.Funcs }

func (scanChanged) Update(e event.UpdateEvent) bool {
	was, now := e.ObjectOld.(*imagev1.ImageRepository), e.ObjectNew.(*imagev1.ImageRepository)
	return revision(was) != revision(now)
}

func revision(r *imagev1.ImageRepository) string {
	if r.Status.LastScanResult == nil {
		return ""
	}
	return r.Status.LastScanResult.Revision
}

// failuresChanged passes automation updates that recorded a Canary
// failure.
type failuresChanged struct{ predicate.Funcs }

func (failuresChanged) Update(e event.UpdateEvent) bool {
	was, now := e.ObjectOld.(*imagev1.ImageUpdateAutomation), e.ObjectNew.(*imagev1.ImageUpdateAutomation)
	return len(was.Status.CanaryFailures) != len(now.Status.CanaryFailures)
}
