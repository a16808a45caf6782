package image

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/workload"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch

// maxCanaryFailures bounds status.canaryFailures; the oldest go first.
// A forgotten failure only matters if its tag is still the newest one,
// which ten later failures make unlikely.
const maxCanaryFailures = 10

// rolledBack is a failed Canary as the revert reads it: the images its
// target runs (the failed revision) and those its primary runs (the last
// promoted one).
type rolledBack struct {
	Canary   string
	Revision string
	Reason   string
	Target   []string
	Primary  []string
}

// newFailures finds the tags this automation wrote that a Canary rolled
// back and that are not recorded yet, with the tag each primary still
// runs. A Canary whose primary runs the same tag failed for another
// reason than the image, so it is not the image's failure.
func newFailures(a *imagev1.ImageUpdateAutomation, failed []rolledBack, now time.Time) []imagev1.CanaryFailure {
	var out []imagev1.CanaryFailure
	recorded := map[string]bool{}
	for _, f := range a.Status.CanaryFailures {
		recorded[f.Policy+"\x00"+f.Tag] = true
	}
	for _, c := range failed {
		for policyName, ref := range a.Status.ObservedPolicies {
			policyKey := a.Namespace + "/" + policyName
			if recorded[policyKey+"\x00"+ref.Tag] || !runs(c.Target, ref.Name, ref.Tag) {
				continue
			}
			promoted := tagOf(c.Primary, ref.Name)
			if promoted == "" || promoted == ref.Tag {
				continue
			}
			recorded[policyKey+"\x00"+ref.Tag] = true
			out = append(out, imagev1.CanaryFailure{
				Policy: policyKey, Image: ref.Name, Tag: ref.Tag, RevertedTo: promoted,
				Canary: c.Canary, Revision: c.Revision, Reason: c.Reason, Time: metav1.NewTime(now),
			})
		}
	}
	return out
}

// runs reports whether one of images is repository:tag.
func runs(images []string, repository, tag string) bool {
	return tagOf(images, repository) == tag
}

// tagOf returns the tag of the first of images from repository, or "".
// Names are compared in their canonical form, so "nginx" and
// "docker.io/library/nginx" are the same repository.
func tagOf(images []string, repository string) string {
	want, err := name.NewRepository(repository, name.WeakValidation)
	if err != nil {
		return ""
	}
	for _, img := range images {
		// A digest pins the image; the tag before it is what Git holds.
		img, _, _ = strings.Cut(img, "@")
		ref, err := name.NewTag(img, name.WeakValidation)
		if err != nil {
			continue
		}
		if ref.Context().Name() == want.Name() {
			return ref.TagStr()
		}
	}
	return ""
}

// revertMessage is the commit message of a revert: what was reverted, to
// what, which Canary failed it and why.
func revertMessage(a *imagev1.ImageUpdateAutomation, failures []imagev1.CanaryFailure) string {
	var b strings.Builder
	if len(failures) == 1 {
		f := failures[0]
		fmt.Fprintf(&b, "Revert %s to %s: Canary %s rolled back %s\n", f.Image, f.RevertedTo, f.Canary, f.Tag)
	} else {
		fmt.Fprintf(&b, "Revert %d images that Canaries rolled back\n", len(failures))
	}
	for _, f := range failures {
		fmt.Fprintf(&b, "\nCanary %s rolled back %s:%s (revision %s): %s\n", f.Canary, f.Image, f.Tag, f.Revision, f.Reason)
		fmt.Fprintf(&b, "%s is back at %s, the tag the Canary last promoted; ImagePolicy %s skips %s until a newer tag appears.\n", f.Image, f.RevertedTo, f.Policy, f.Tag)
	}
	fmt.Fprintf(&b, "\nWritten by ImageUpdateAutomation %s/%s (onCanaryFailure: Revert).\n", a.Namespace, a.Name)
	return b.String()
}

// rememberFailures appends failures to the recorded ones, keeping the
// newest maxCanaryFailures.
func rememberFailures(recorded, failures []imagev1.CanaryFailure) []imagev1.CanaryFailure {
	out := append(recorded, failures...)
	if len(out) > maxCanaryFailures {
		out = out[len(out)-maxCanaryFailures:]
	}
	return out
}

// failedCanaries reads the Canaries that rolled back their last revision,
// with the images of their target and primary.
func failedCanaries(ctx context.Context, c client.Reader) ([]rolledBack, error) {
	var list sluicev1beta1.CanaryList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list Canaries: %w", err)
	}
	var out []rolledBack
	for i := range list.Items {
		cn := &list.Items[i]
		if cn.Status.Phase != sluicev1beta1.CanaryPhaseFailed {
			continue
		}
		target, err := images(ctx, c, cn.Namespace, cn.Spec.TargetRef.Kind, cn.Spec.TargetRef.Name)
		if err != nil {
			return nil, err
		}
		primary, err := images(ctx, c, cn.Namespace, cn.Spec.TargetRef.Kind, cn.Spec.TargetRef.Name+workload.PrimarySuffix)
		if err != nil {
			return nil, err
		}
		reason := ""
		if ready := meta.FindStatusCondition(cn.Status.Conditions, sluicev1beta1.ReadyCondition); ready != nil {
			reason = ready.Message
		}
		out = append(out, rolledBack{
			Canary: cn.Namespace + "/" + cn.Name, Revision: cn.Status.LastAppliedSpec, Reason: reason,
			Target: target, Primary: primary,
		})
	}
	return out, nil
}

// images lists the container images of a workload's pod template; a
// missing workload or a kind without one has none.
func images(ctx context.Context, c client.Reader, ns, kind, name string) ([]string, error) {
	var spec *corev1.PodSpec
	key := types.NamespacedName{Namespace: ns, Name: name}
	switch kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); apierrors.IsNotFound(err) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("get Deployment %s: %w", key, err)
		}
		spec = &d.Spec.Template.Spec
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		if err := c.Get(ctx, key, d); apierrors.IsNotFound(err) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("get DaemonSet %s: %w", key, err)
		}
		spec = &d.Spec.Template.Spec
	default:
		return nil, nil
	}
	var out []string
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, ctr := range list {
			out = append(out, ctr.Image)
		}
	}
	return out, nil
}
