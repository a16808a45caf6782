// Package apply puts built objects on the cluster the way Flux's
// kustomize-controller does, through fluxcd/pkg/ssa: server-side apply in
// stages (CRDs and Namespaces first) after a dry run of every object, so
// that one bad object leaves the cluster as it was; drift corrected on
// every apply; pruning of what an earlier apply made and this one no
// longer has, from an inventory; and a kstatus wait for health.
package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/fluxcd/pkg/ssa/normalize"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// FieldManager is the field manager of Sluice's applies.
const FieldManager = "sluice"

// OwnerGroup prefixes the labels that mark what a Kustomization applied,
// syncv1.AppliedByNameLabel and AppliedByNamespaceLabel.
const OwnerGroup = syncv1.AppliedByGroup

// PruneAnnotation set to PruneDisabled keeps an object when it leaves the
// source, with Flux's annotation.
const (
	PruneAnnotation = "kustomize.toolkit.fluxcd.io/prune"
	PruneDisabled   = "disabled"
)

// The per-object apply policies of Flux's manifests, as labels or
// annotations: ssa is Override (the default), Merge (fields other managers
// added are kept), IfNotPresent (created, never patched) or Ignore (never
// applied); force enabled recreates the object when an immutable field
// changes; reconcile disabled is the older spelling of ssa Ignore.
const (
	SSAAnnotation       = "kustomize.toolkit.fluxcd.io/ssa"
	SSAMerge            = "Merge"
	SSAIfNotPresent     = "IfNotPresent"
	SSAIgnore           = "Ignore"
	ForceAnnotation     = "kustomize.toolkit.fluxcd.io/force"
	ForceEnabled        = "enabled"
	ReconcileAnnotation = "kustomize.toolkit.fluxcd.io/reconcile"
	ReconcileDisabled   = "disabled"
)

// Entry is one object of an inventory: Flux's id
// (<namespace>_<name>_<group>_<kind>) and its API version.
type Entry struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

// Options say how to apply.
type Options struct {
	// Owner names the Kustomization, for the ownership labels.
	Owner client.ObjectKey
	// Force recreates objects whose immutable fields changed.
	Force bool
	// Prune deletes the objects of Previous that are not applied now.
	Prune bool
	// Previous is the inventory of the last apply.
	Previous []Entry
	// Ignore leaves JSON pointer paths of the objects it selects out of
	// the apply and the drift (spec.ignore).
	Ignore []jsondiff.IgnoreRule
}

// Result is what an apply did.
type Result struct {
	// Changes lists each object with what happened to it.
	Changes *ssa.ChangeSet
	// Inventory is the new inventory, sorted.
	Inventory []Entry
	// Pruned lists the objects deleted.
	Pruned *ssa.ChangeSet
}

// Applier applies through one ResourceManager.
type Applier struct {
	manager *ssa.ResourceManager
}

// New builds an Applier that writes through c. The CRDs of a staged apply
// are waited for by polling live, which reads through live: the operator's
// cached client cannot serve the poller's lists.
func New(c client.Client, live client.Reader) *Applier {
	poller := polling.NewStatusPoller(live, c.RESTMapper(), polling.Options{})
	return &Applier{manager: ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: OwnerGroup})}
}

// prepare makes objs what the apply sends: defaults normalized, so that
// an unchanged object is not seen as configured, and ownership labels set.
func (a *Applier) prepare(objs []*unstructured.Unstructured, opts Options) error {
	if err := normalize.UnstructuredList(objs); err != nil {
		return fmt.Errorf("normalize: %w", err)
	}
	a.manager.SetOwnerLabels(objs, opts.Owner.Name, opts.Owner.Namespace)
	return nil
}

// Apply applies objs and, as asked, prunes. The objects are
// changed in place: defaults normalized and ownership labels set.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts Options) (*Result, error) {
	if err := a.prepare(objs, opts); err != nil {
		return nil, err
	}
	changes, err := a.manager.ApplyAllStaged(ctx, objs, applyOptions(opts))
	if err != nil {
		return nil, err
	}
	res := &Result{Changes: changes, Inventory: inventory(objs)}
	if opts.Prune {
		stale, err := staleObjects(opts.Previous, res.Inventory)
		if err != nil {
			return res, err
		}
		res.Pruned, err = a.manager.DeleteAll(ctx, stale, a.deleteOptions(opts.Owner))
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
	}
	return res, nil
}

// applyOptions are Flux's: the per-object policies, the ignore rules, and
// the field managers of kubectl edits removed, so that the cluster returns
// to what the source says, except for an object whose ssa policy is Merge.
func applyOptions(opts Options) ssa.ApplyOptions {
	o := ssa.DefaultApplyOptions()
	o.Force = opts.Force
	o.ExclusionSelector = map[string]string{SSAAnnotation: SSAIgnore, ReconcileAnnotation: ReconcileDisabled}
	o.IfNotPresentSelector = map[string]string{SSAAnnotation: SSAIfNotPresent}
	o.ForceSelector = map[string]string{ForceAnnotation: ForceEnabled}
	o.DriftIgnoreRules = opts.Ignore
	o.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{corev1.LastAppliedConfigAnnotation},
		FieldManagers: []ssa.FieldManager{
			// kubectl apply --server-side, and kubectl apply, as Flux lists them
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{SSAAnnotation: SSAMerge},
	}
	return o
}

// ErrWaitTimeout is returned when what Delete deleted was still there when its wait ended.
var ErrWaitTimeout = errors.New("the deleted objects are not gone")

// Delete deletes the objects of an inventory that carry the owner's
// labels, except those whose prune is disabled, and with wait, waits
// until they are gone.
func (a *Applier) Delete(ctx context.Context, entries []Entry, owner client.ObjectKey, wait time.Duration) (*ssa.ChangeSet, error) {
	objs, err := staleObjects(entries, nil)
	if err != nil {
		return nil, err
	}
	deleted, err := a.manager.DeleteAll(ctx, objs, a.deleteOptions(owner))
	if err != nil {
		return deleted, fmt.Errorf("delete the inventory: %w", err)
	}
	if wait > 0 {
		if err := a.manager.WaitForSetTermination(deleted, ssa.WaitOptions{Interval: time.Second, Timeout: wait}); err != nil {
			return deleted, fmt.Errorf("%w after %s: %w", ErrWaitTimeout, wait, err)
		}
	}
	return deleted, nil
}

// deleteOptions delete, in the background, only what owner applied, and
// never an object whose prune or reconcile is disabled, as Flux's.
func (a *Applier) deleteOptions(owner client.ObjectKey) ssa.DeleteOptions {
	return ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        a.manager.GetOwnerLabels(owner.Name, owner.Namespace),
		Exclusions:        map[string]string{PruneAnnotation: PruneDisabled, ReconcileAnnotation: ReconcileDisabled},
	}
}

// inventory lists objs by Flux's inventory id.
func inventory(objs []*unstructured.Unstructured) []Entry {
	out := make([]Entry, 0, len(objs))
	for _, o := range objs {
		out = append(out, Entry{ID: object.UnstructuredToObjMetadata(o).String(), Version: o.GroupVersionKind().Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// staleObjects are the entries of previous that current no longer has,
// as objects that DeleteAll can find.
func staleObjects(previous, current []Entry) ([]*unstructured.Unstructured, error) {
	keep := map[string]bool{}
	for _, e := range current {
		keep[e.ID] = true
	}
	var out []*unstructured.Unstructured
	for _, e := range previous {
		if keep[e.ID] {
			continue
		}
		id, err := object.ParseObjMetadata(e.ID)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %q: %w", e.ID, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: id.GroupKind.Group, Version: e.Version, Kind: id.GroupKind.Kind})
		u.SetNamespace(id.Namespace)
		u.SetName(id.Name)
		out = append(out, u)
	}
	return out, nil
}

// IgnoreRules turns Flux's ignore rules (a Kustomization's spec.ignore, a
// HelmRelease's driftDetection.ignore) into fluxcd/pkg/ssa's.
func IgnoreRules(rules []syncv1.IgnoreRule) []jsondiff.IgnoreRule {
	var out []jsondiff.IgnoreRule
	for _, rule := range rules {
		r := jsondiff.IgnoreRule{Paths: rule.Paths}
		if t := rule.Target; t != nil {
			r.Selector = &jsondiff.Selector{Group: t.Group, Version: t.Version, Kind: t.Kind, Name: t.Name, Namespace: t.Namespace, AnnotationSelector: t.AnnotationSelector, LabelSelector: t.LabelSelector}
		}
		out = append(out, r)
	}
	return out
}

// ForKustomization turns a Kustomization's spec into apply options; the
// operator and `sluicectl diff` share it, so that a preview is exactly
// what the operator would apply.
func ForKustomization(ks *syncv1.Kustomization) Options {
	opts := Options{Owner: client.ObjectKeyFromObject(ks), Force: ks.Spec.Force, Prune: ks.Spec.Prune}
	opts.Ignore = IgnoreRules(ks.Spec.Ignore)
	if inv := ks.Status.Inventory; inv != nil {
		for _, e := range inv.Entries {
			opts.Previous = append(opts.Previous, Entry{ID: e.ID, Version: e.Version})
		}
	}
	return opts
}
