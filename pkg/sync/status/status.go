// Package status writes the kstatus conditions of the sync core's
// objects: Ready, and beside it Reconciling or Stalled, so that kstatus
// (and kubectl wait, Flux's CLI, Argo CD) reads them the same way.
package status

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
)

// ReasonProgressingWithRetry is the Reconciling reason of a failure that
// the next retry may fix.
const ReasonProgressingWithRetry = "ProgressingWithRetry"

// SetReady writes Ready and the kstatus pair that goes with it: an object
// on its way (waiting, or failing in a way a retry may fix) is
// Reconciling; one that cannot get further without a change is Stalled,
// which kstatus reads as Failed.
func SetReady(conditions *[]metav1.Condition, ready metav1.Condition, stalled bool, generation int64) {
	ready.Type, ready.ObservedGeneration = "Ready", generation
	meta.SetStatusCondition(conditions, ready)
	progress := metav1.Condition{Status: metav1.ConditionTrue, ObservedGeneration: generation, Reason: ready.Reason, Message: ready.Message}
	switch {
	case ready.Status == metav1.ConditionTrue:
		meta.RemoveStatusCondition(conditions, "Reconciling")
		meta.RemoveStatusCondition(conditions, "Stalled")
	case stalled:
		progress.Type = "Stalled"
		meta.SetStatusCondition(conditions, progress)
		meta.RemoveStatusCondition(conditions, "Reconciling")
	default:
		progress.Type = "Reconciling"
		if ready.Status == metav1.ConditionFalse {
			progress.Reason = ReasonProgressingWithRetry
		}
		meta.SetStatusCondition(conditions, progress)
		meta.RemoveStatusCondition(conditions, "Stalled")
	}
}

// Object is a sync kind as Ready reads it.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// Ready reports whether o is Ready for its current generation: a change
// not acted on yet does not count as ready.
func Ready(o Object) bool {
	c := meta.FindStatusCondition(o.GetConditions(), "Ready")
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == o.GetGeneration()
}

// Fields are the status fields every sync-core kind has, that Write
// fills in.
type Fields struct {
	ObservedGeneration *int64
	// LastHandledReconcileAt is nil for a kind that answers no reconcile
	// request.
	LastHandledReconcileAt *string
	Conditions             *[]metav1.Condition
}

// Write is the one status tail of the sync-core kinds: it records the
// generation seen and the reconcile request answered, sets Ready with its
// kstatus pair, and patches the status from before, once, and only when
// something changed: a look that changed nothing costs no write.
func Write(ctx context.Context, c client.Client, kind string, obj, before client.Object, f Fields, ready metav1.Condition, stalled bool) error {
	*f.ObservedGeneration = obj.GetGeneration()
	if v, ok := obj.GetAnnotations()[sourcev1.ReconcileRequestAnnotation]; ok && f.LastHandledReconcileAt != nil {
		*f.LastHandledReconcileAt = v
	}
	SetReady(f.Conditions, ready, stalled, obj.GetGeneration())
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patch %s %s status: %w", kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// Loop is the reconcile of a kind that works at an interval (a source, an
// image scan, an automation): read the object, run one pass, write the
// status it earns once, and come back at the interval. A stalled object
// is not requeued: only a change of its spec, a watch event, can help.
type Loop struct {
	Client client.Client
	// Kind names the object in errors.
	Kind string
	// Object is read into; Fields point into its status.
	Object client.Object
	Fields Fields
	// Gone drops what is kept for a deleted object; nil when nothing is.
	Gone func(types.NamespacedName)
	// Pass works once and returns the Ready condition it earns and
	// whether only a spec change can fix it.
	Pass func(context.Context) (ready metav1.Condition, stalled bool)
	// Next is when to come back after ready; 0 means only on a watch
	// event (a suspended object).
	Next func(ready metav1.Condition) time.Duration
}

// Reconcile runs the loop once for key.
func (l Loop) Reconcile(ctx context.Context, key types.NamespacedName) (ctrl.Result, error) {
	if err := l.Client.Get(ctx, key, l.Object); apierrors.IsNotFound(err) {
		if l.Gone != nil {
			l.Gone(key)
		}
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	before, ok := l.Object.DeepCopyObject().(client.Object)
	if !ok {
		return ctrl.Result{}, fmt.Errorf("copy %s %s: not a client.Object", l.Kind, key)
	}
	ready, stalled := l.Pass(ctx)
	if err := Write(ctx, l.Client, l.Kind, l.Object, before, l.Fields, ready, stalled); err != nil {
		return ctrl.Result{}, err
	}
	if stalled {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: l.Next(ready)}, nil
}

// Every is a Loop.Next that comes back at *interval unless *suspended;
// both point into the Loop's Object, so they are read after the Get.
func Every(suspended *bool, interval *time.Duration) func(metav1.Condition) time.Duration {
	return func(metav1.Condition) time.Duration {
		if *suspended {
			return 0
		}
		return *interval
	}
}
