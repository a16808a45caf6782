// Package index holds the field indexes by which the sync controllers find
// what to reconcile when another object changes: the objects built from a
// source, and those that depend on one. The cache answers from its
// indexes, rather than every event listing, and copying, every object of
// the kind.
package index

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// Field names of the indexes.
const (
	// DependsOn holds the namespace/name of each object in spec.dependsOn.
	DependsOn = ".spec.dependsOn"
	// Source holds the namespace/name of the object an object is built
	// from: a Kustomization's GitRepository, a HelmRelease's HelmChart.
	Source = ".spec.source"
)

// Dependencies are the objects deps name, in namespace when a reference
// names none.
func Dependencies(namespace string, deps []syncv1.DependencyReference) []types.NamespacedName {
	keys := make([]types.NamespacedName, 0, len(deps))
	for _, d := range deps {
		ns := d.Namespace
		if ns == "" {
			ns = namespace
		}
		keys = append(keys, types.NamespacedName{Namespace: ns, Name: d.Name})
	}
	return keys
}

// Add registers an index of obj's kind under field, whose values are the
// namespace/name of the objects keys names.
func Add[T client.Object](ctx context.Context, indexer client.FieldIndexer, obj T, field string, keys func(T) []types.NamespacedName) error {
	err := indexer.IndexField(ctx, obj, field, func(o client.Object) []string {
		typed, ok := o.(T)
		if !ok {
			return nil
		}
		var values []string
		for _, k := range keys(typed) {
			values = append(values, k.String())
		}
		return values
	})
	if err != nil {
		return fmt.Errorf("index %T by %s: %w", obj, field, err)
	}
	return nil
}

// Mapper maps a changed object to the objects of newList's kind whose
// field index holds its namespace/name.
func Mapper(c client.Reader, newList func() client.ObjectList, field string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := newList()
		if err := c.List(ctx, list, client.MatchingFields{field: client.ObjectKeyFromObject(o).String()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list by index", "index", field)
			return nil
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "read list", "index", field)
			return nil
		}
		requests := make([]reconcile.Request, 0, len(items))
		for _, item := range items {
			if obj, ok := item.(client.Object); ok {
				requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
			}
		}
		return requests
	}
}

// NamespaceOr is ns, or fallback when ns is empty: a reference's
// namespace defaults to its referrer's.
func NamespaceOr(ns, fallback string) string {
	if ns == "" {
		return fallback
	}
	return ns
}
