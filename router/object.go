package router

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// objectRouter is the part of a router that writes the split into one
// object of the mesh's API, generated for the Canary and named after its
// apex Service (a TraefikService, a TrafficSplit, an HTTPProxy, ...). The
// routers differ in the object's kind and in how a split reads as its
// spec; they embed objectRouter and add their capabilities and queries.
type objectRouter struct {
	Deps
	// apiVersion and kind of the object.
	apiVersion, kind string
	// clusterScoped objects have no namespace.
	clusterScoped bool
	// name, when set, names the object; the apex Service's name otherwise.
	name func(c *sluicev1beta1.Canary) string
	// spec is the object's spec for a split.
	spec func(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error)
	// top, when set, gives fields beside spec (Kuma's mesh).
	top func(c *sluicev1beta1.Canary) map[string]any
	// split reads the split back from the object.
	split func(c *sluicev1beta1.Canary, obj *unstructured.Unstructured) traffic.Routes
	// apexSpec is the spec left behind when the Canary goes, sending
	// everything to the apex Service so that what uses the object keeps
	// working; nil deletes the object instead.
	apexSpec func(c *sluicev1beta1.Canary) map[string]any
}

// object is the Canary's object, empty but for its kind and name.
func (o *objectRouter) object(c *sluicev1beta1.Canary) *unstructured.Unstructured {
	name, _, _ := ServiceNames(c)
	if o.name != nil {
		name = o.name(c)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(o.apiVersion)
	u.SetKind(o.kind)
	if !o.clusterScoped {
		u.SetNamespace(c.Namespace)
	}
	u.SetName(name)
	return u
}

// Initialize needs nothing before the primary takes traffic.
func (o *objectRouter) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or updates the object, keeping its split.
func (o *objectRouter) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return o.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the object.
func (o *objectRouter) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return o.write(ctx, c, setSplit(r))
}

func (o *objectRouter) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	obj := o.object(c)
	return o.ensureGenerated(ctx, c, obj, func() error {
		r, err := sp.of(obj, func() (traffic.Routes, error) { return o.split(c, obj), nil })
		if err != nil {
			return err
		}
		spec, err := o.spec(ctx, c, r)
		if err != nil {
			return err
		}
		obj.Object["spec"] = spec
		if o.top != nil {
			for k, v := range o.top(c) {
				obj.Object[k] = v
			}
		}
		return nil
	})
}

// Routes reads the split from the object; none yet is the primary alone.
func (o *objectRouter) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	obj := o.object(c)
	if err := o.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get %s %s: %w", o.kind, obj.GetName(), err)
	}
	return o.split(c, obj), nil
}

// Finalize points the object at the apex Service and releases it, or
// deletes it when the router has no apex spec.
func (o *objectRouter) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	obj := o.object(c)
	if err := o.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get %s %s: %w", o.kind, obj.GetName(), err)
	}
	if o.clusterScoped && (obj.GetLabels()[ownedLabel] != c.Name || obj.GetLabels()[ownedNamespaceLabel] != c.Namespace) {
		// Another Canary's, or the user's: not this Canary's to change.
		return nil
	}
	if o.apexSpec == nil {
		if err := o.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", o.kind, obj.GetName(), err)
		}
		return nil
	}
	return o.patch(ctx, obj, func() error {
		obj.Object["spec"] = o.apexSpec(c)
		release(obj, c)
		return nil
	})
}

// weightsBy reads the primary's and canary's weights from a list of
// backends that name their Service under key. A weight is an integer, or
// a quantity such as "60" or "500m" (SMI v1alpha1); weights that do not
// add up to 100 are relative and read as percentages.
func weightsBy(c *sluicev1beta1.Canary, backends []any, key string) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	var p, cw int64
	for _, b := range backends {
		bm, ok := b.(map[string]any)
		if !ok {
			continue
		}
		var milli int64
		switch w := bm["weight"].(type) {
		case int64:
			milli = w * 1000
		case string:
			if q, err := resource.ParseQuantity(w); err == nil {
				milli = q.MilliValue()
			}
		}
		switch bm[key] {
		case primary:
			p += milli
		case canary:
			cw += milli
		}
	}
	if total := p + cw; total > 0 {
		return traffic.Routes{Primary: int(p * 100 / total), Canary: 100 - int(p*100/total)}
	}
	return traffic.Routes{}
}
