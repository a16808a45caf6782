package router

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// generatedMarks keep GitOps tools from fighting over the objects Sluice
// generates: Flux skips them, Argo CD neither reports nor prunes them, and
// Sluice's own sync core leaves alone what carries ownedLabel.
func generatedMarks() map[string]string {
	return map[string]string{
		"kustomize.toolkit.fluxcd.io/reconcile": "disabled",
		"helm.toolkit.fluxcd.io/driftDetection": "disabled",
		"argocd.argoproj.io/compare-options":    "IgnoreExtraneous",
		"argocd.argoproj.io/sync-options":       "Prune=false",
	}
}

// markGenerated labels an object as a Canary's and adds the marks.
func markGenerated(obj metav1.Object, c *sluicev1beta1.Canary) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownedLabel] = c.Name
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	for k, v := range generatedMarks() {
		annotations[k] = v
	}
	obj.SetAnnotations(annotations)
}

// release undoes markGenerated and the Canary's ownership, so that the
// object outlives the Canary.
func release(obj metav1.Object, c *sluicev1beta1.Canary) {
	labels := obj.GetLabels()
	delete(labels, ownedLabel)
	delete(labels, ownedNamespaceLabel)
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	for k := range generatedMarks() {
		delete(annotations, k)
	}
	obj.SetAnnotations(annotations)
	obj.SetOwnerReferences(slices.DeleteFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == c.UID }))
}

// ensureGenerated creates or updates an object the Canary owns: mutate
// sets its content, then it is marked and owned. Nothing is written when
// nothing changes.
//
// A cluster-scoped object (Kuma's TrafficRoute) cannot be owned by a
// namespaced Canary: the garbage collector ignores such an owner. It is
// labelled with the Canary's namespace instead, deleted or released by
// Finalize, and one labelled for a Canary of another namespace is never
// taken over.
func (d Deps) ensureGenerated(ctx context.Context, c *sluicev1beta1.Canary, obj client.Object, mutate func() error) error {
	return d.createOrPatch(ctx, obj, func() error {
		if obj.GetNamespace() == "" {
			if ns, ok := obj.GetLabels()[ownedNamespaceLabel]; ok && (ns != c.Namespace || obj.GetLabels()[ownedLabel] != c.Name) {
				// Its name comes from the apex Service's: another name
				// for this Canary's apex is the way out.
				return specError("spec.service.name", "%s %s belongs to Canary %s/%s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), ns, obj.GetLabels()[ownedLabel])
			}
		}
		if err := mutate(); err != nil {
			return err
		}
		markGenerated(obj, c)
		if obj.GetNamespace() == "" {
			labels := obj.GetLabels()
			labels[ownedNamespaceLabel] = c.Namespace
			obj.SetLabels(labels)
			return nil
		}
		return controllerutil.SetControllerReference(c, obj, d.Scheme)
	})
}

// patch updates an object that exists, when mutate changes it.
func (d Deps) patch(ctx context.Context, obj client.Object, mutate func() error) error {
	return d.createOrPatch(ctx, obj, mutate)
}

// createOrPatch reads obj, lets mutate change it and writes the change.
// Unlike controllerutil.CreateOrPatch it patches under optimistic
// locking: mutate may keep what it read (a traffic split, a user's rule),
// and a read from a cache that has not caught up must then fail with a
// conflict rather than put back what the object held before.
func (d Deps) createOrPatch(ctx context.Context, obj client.Object, mutate func() error) error {
	name := fmt.Sprintf("%T %s", obj, obj.GetName())
	if err := d.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
		if err := mutate(); err != nil {
			return err
		}
		if err := d.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	before := obj.DeepCopyObject().(client.Object)
	if err := mutate(); err != nil {
		return err
	}
	// Compare what would be sent: the Istio types are protobuf messages,
	// which only their JSON form compares safely.
	if diff, err := client.MergeFrom(before).Data(obj); err != nil {
		return fmt.Errorf("diff %s: %w", name, err)
	} else if string(diff) == "{}" {
		return nil
	}
	if err := d.Client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch %s: %w", name, err)
	}
	return nil
}

// split is the traffic split a write puts in place: SetRoutes gives one,
// Reconcile keeps the one the object holds. Kept, it is read from the very
// snapshot the write starts from, never from a separate read, so that the
// optimistic lock covers it.
type split struct {
	routes traffic.Routes
	keep   bool
}

// setSplit writes routes.
func setSplit(routes traffic.Routes) split { return split{routes: routes} }

// keepSplit keeps the split the object holds.
func keepSplit() split { return split{keep: true} }

// of returns the split to write into obj, reading a kept one with held.
// An object not created yet holds all traffic on the primary.
func (s split) of(obj client.Object, held func() (traffic.Routes, error)) (traffic.Routes, error) {
	switch {
	case !s.keep:
		return s.routes, nil
	case obj.GetResourceVersion() == "":
		return traffic.PrimaryOnly(), nil
	default:
		return held()
	}
}

// keepOriginal records, once, what an adopted object's spec was before
// Sluice changed it.
func keepOriginal(obj metav1.Object, spec any) error {
	if _, ok := obj.GetAnnotations()[sluicev1beta1.OriginalConfigurationAnnotation]; ok {
		return nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("record the original configuration of %s: %w", obj.GetName(), err)
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[sluicev1beta1.OriginalConfigurationAnnotation] = string(raw)
	obj.SetAnnotations(annotations)
	return nil
}

// takeOriginal reads back and forgets what keepOriginal recorded. It
// reports false when there is nothing recorded.
func takeOriginal(obj metav1.Object, spec any) (bool, error) {
	annotations := obj.GetAnnotations()
	raw, ok := annotations[sluicev1beta1.OriginalConfigurationAnnotation]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), spec); err != nil {
		return false, fmt.Errorf("read the original configuration of %s: %w", obj.GetName(), err)
	}
	delete(annotations, sluicev1beta1.OriginalConfigurationAnnotation)
	obj.SetAnnotations(annotations)
	return true, nil
}
