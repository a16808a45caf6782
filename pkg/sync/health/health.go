// Package health judges applied objects by kstatus, as Flux's
// kustomize-controller does, but without waiting: Check reads each object
// once, from the operator's watch cache, and says which are not healthy
// yet. A Kustomization applies, checks, and requeues while objects are in
// progress, so that a slow rollout never holds a worker.
package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Checker reads objects and computes their kstatus.
type Checker struct {
	// Reader reads the objects: the operator's cached client, or a live
	// client (an impersonating one, so that the account's RBAC decides
	// what may be checked).
	Reader client.Reader
	// Scheme turns kinds it knows into their Go types, so that a cached
	// read shares the informer the controllers already run rather than
	// starting an unstructured copy of it.
	Scheme *runtime.Scheme
	// Mapper finds the version a kind is served at.
	Mapper meta.RESTMapper

	// Informers, when Reader reads from them, lets a kind that does not
	// sync within SyncTimeout (one the operator may not watch) be dropped
	// and read from Live instead of holding every check up.
	Informers cache.Informers
	// Live reads what the cache does not hold: kinds it cannot watch, and
	// namespaces outside Namespaces.
	Live client.Reader
	// Namespaces the cache holds; empty means all.
	Namespaces []string
	// SyncTimeout bounds the first cached read of a kind; default 10s.
	SyncTimeout time.Duration
	// Exprs judge the objects of their kinds in place of kstatus.
	Exprs Exprs
}

// Object is one object's health.
type Object struct {
	ID      object.ObjMetadata
	Status  status.Status
	Message string
}

// String names the object as kubectl does, with its status.
func (o Object) String() string {
	s := fmt.Sprintf("%s/%s status: '%s'", o.ID.GroupKind.Kind, name(o.ID), o.Status)
	if o.Message != "" {
		s += ": " + o.Message
	}
	return s
}

// Report is the health of a set of objects.
type Report struct {
	// InProgress are the objects on their way: not found yet, rolling
	// out, terminating, or of unknown status.
	InProgress []Object
	// Failed are the objects kstatus says failed; waiting longer will not
	// help.
	Failed []Object
}

// Healthy reports whether every object is Current.
func (r Report) Healthy() bool { return len(r.InProgress) == 0 && len(r.Failed) == 0 }

// Waiting names the objects still in progress, without their messages,
// which change as pods come up and would turn each into a status write.
func (r Report) Waiting() string {
	names := make([]string, 0, len(r.InProgress))
	for _, o := range r.InProgress {
		names = append(names, o.ID.GroupKind.Kind+"/"+name(o.ID))
	}
	return strings.Join(names, ", ")
}

// Problems describes the failed objects, or else those in progress, with
// their messages, for a health check that failed or timed out.
func (r Report) Problems() string {
	objs := r.Failed
	if len(objs) == 0 {
		objs = r.InProgress
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.String())
	}
	return strings.Join(out, ", ")
}

// Check reads every object of set once and reports those not Current. An
// error means an object could not be read or judged.
func (c *Checker) Check(ctx context.Context, set object.ObjMetadataSet) (Report, error) {
	var rep Report
	var errs []error
	for _, id := range set {
		u, err := c.read(ctx, id)
		switch {
		case apierrors.IsNotFound(err):
			rep.InProgress = append(rep.InProgress, Object{ID: id, Status: status.NotFoundStatus})
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("read %s/%s: %w", id.GroupKind.Kind, name(id), err))
			continue
		}
		res, custom := c.Exprs.Status(ctx, u)
		if !custom {
			res, err = status.Compute(u)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("compute the status of %s/%s: %w", id.GroupKind.Kind, name(id), err))
			continue
		}
		o := Object{ID: id, Status: res.Status, Message: res.Message}
		switch res.Status {
		case status.CurrentStatus:
		case status.FailedStatus:
			rep.Failed = append(rep.Failed, o)
		default:
			rep.InProgress = append(rep.InProgress, o)
		}
	}
	return rep, errors.Join(errs...)
}

// Wait checks set every interval until it is healthy, an object fails, or
// timeout passes; the error names the objects at fault. It holds the
// caller: for work that already waits, such as a Helm release.
func (c *Checker) Wait(ctx context.Context, set object.ObjMetadataSet, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		rep, err := c.Check(ctx, set)
		switch {
		case err != nil && ctx.Err() == nil:
			return err
		case err == nil && rep.Healthy():
			return nil
		case len(rep.Failed) > 0:
			return fmt.Errorf("health check failed: [%s]", rep.Problems())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timeout waiting for: [%s]", rep.Problems())
		case <-ticker.C:
		}
	}
}

// read gets one object as unstructured, for kstatus.
func (c *Checker) read(ctx context.Context, id object.ObjMetadata) (*unstructured.Unstructured, error) {
	mapping, err := c.Mapper.RESTMapping(id.GroupKind)
	if err != nil {
		return nil, fmt.Errorf("find the kind: %w", err)
	}
	obj, err := c.newObject(mapping.GroupVersionKind)
	if err != nil {
		return nil, err
	}
	key := client.ObjectKey{Namespace: id.Namespace, Name: id.Name}
	if mapping.Scope.Name() == meta.RESTScopeNameRoot {
		key.Namespace = ""
	}
	if err := c.get(ctx, key, obj); err != nil {
		return nil, err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u, nil
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert to unstructured: %w", err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(mapping.GroupVersionKind)
	return u, nil
}

// newObject is a typed object for the kinds the scheme knows, or an
// unstructured one.
func (c *Checker) newObject(gvk schema.GroupVersionKind) (client.Object, error) {
	if c.Scheme != nil && c.Scheme.Recognizes(gvk) {
		o, err := c.Scheme.New(gvk)
		if err != nil {
			return nil, fmt.Errorf("new %s: %w", gvk, err)
		}
		if obj, ok := o.(client.Object); ok {
			return obj, nil
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// get reads from Reader, or from Live what the cache does not hold.
func (c *Checker) get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if c.Live == nil {
		return c.Reader.Get(ctx, key, obj)
	}
	if key.Namespace != "" && len(c.Namespaces) > 0 && !slices.Contains(c.Namespaces, key.Namespace) {
		return c.Live.Get(ctx, key, obj)
	}
	timeout := c.SyncTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cacheCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.Reader.Get(cacheCtx, key, obj)
	if err == nil || ctx.Err() != nil || !errors.Is(cacheCtx.Err(), context.DeadlineExceeded) {
		return err
	}
	// The kind's informer did not sync: most likely the operator may get
	// but not list and watch it. Stop it, so that it does not retry
	// forever, and read the object directly.
	if c.Informers != nil {
		_ = c.Informers.RemoveInformer(ctx, obj)
	}
	return c.Live.Get(ctx, key, obj)
}

// name is namespace/name, or name for a cluster-scoped object.
func name(id object.ObjMetadata) string {
	if id.Namespace == "" {
		return id.Name
	}
	return id.Namespace + "/" + id.Name
}
