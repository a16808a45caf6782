package notify

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// providerIndex indexes Alerts by the namespace/name of their Provider.
const providerIndex = ".spec.providerRef"

// AlertReconciler writes each Alert's Ready condition, its one writer:
// whether its lists compile and its Provider exists and is ready, so that
// an Alert that cannot send says so itself, with a Warning Event.
type AlertReconciler struct {
	Client     client.Client
	Events     clientevents.EventRecorder
	Dispatcher *Dispatcher
	// Shard picks the objects whose status this replica writes, those of
	// its shard; nil writes every one's. Every replica reads them all.
	Shard labels.Selector
}

// SetupWithManager registers the controller. It runs when an Alert
// changes and when its Provider's status does.
func (r *AlertReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := index.Add(ctx, mgr.GetFieldIndexer(), &notificationv1beta3.Alert{}, providerIndex, func(a *notificationv1beta3.Alert) []types.NamespacedName {
		return []types.NamespacedName{{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}}
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &notificationv1beta3.AlertList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("alert").
		For(&notificationv1beta3.Alert{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&notificationv1beta3.Provider{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, providerIndex))).
		Complete(r)
}

// Reconcile writes one Alert's Ready condition.
func (r *AlertReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &notificationv1beta3.Alert{}
	if err := r.Client.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !owns(r.Shard, a) {
		return ctrl.Result{}, nil
	}
	ready, stalled, err := r.readiness(ctx, a)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := a.DeepCopy()
	previous := meta.FindStatusCondition(a.Status.Conditions, notificationv1beta3.ReadyCondition)
	changed := previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message
	fields := status.Fields{ObservedGeneration: &a.Status.ObservedGeneration, Conditions: &a.Status.Conditions}
	if err := status.Write(ctx, r.Client, "Alert", a, before, fields, ready, stalled); err != nil {
		return ctrl.Result{}, err
	}
	if ready.Status == metav1.ConditionFalse && changed {
		r.Events.Eventf(a, nil, corev1.EventTypeWarning, ready.Reason, "Check", "%s", ready.Message)
	}
	return ctrl.Result{}, nil
}

// readiness is an Alert's Ready condition.
func (r *AlertReconciler) readiness(ctx context.Context, a *notificationv1beta3.Alert) (metav1.Condition, bool, error) {
	notReady := func(reason, msg string, stalled bool) (metav1.Condition, bool, error) {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}, stalled, nil
	}
	if _, _, err := r.Dispatcher.patterns(a); err != nil {
		return notReady(notificationv1beta3.ReasonInvalidRegex, err.Error(), true)
	}
	var p notificationv1beta3.Provider
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}
	if err := r.Client.Get(ctx, key, &p); apierrors.IsNotFound(err) {
		return notReady(notificationv1beta3.ReasonProviderNotFound, fmt.Sprintf("spec.providerRef: Provider %s not found", key), false)
	} else if err != nil {
		return metav1.Condition{}, false, fmt.Errorf("read Provider %s: %w", key, err)
	}
	c := meta.FindStatusCondition(p.Status.Conditions, notificationv1beta3.ReadyCondition)
	switch {
	case c == nil || c.ObservedGeneration < p.Generation && p.Status.ObservedGeneration < p.Generation:
		return notReady(notificationv1beta3.ReasonProviderNotReady, fmt.Sprintf("spec.providerRef: Provider %s is not checked yet", key), false)
	case c.Status != metav1.ConditionTrue:
		return notReady(notificationv1beta3.ReasonProviderNotReady, fmt.Sprintf("spec.providerRef: Provider %s is not ready: %s: %s", key, c.Reason, c.Message), false)
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: notificationv1beta3.ReasonProviderReady, Message: fmt.Sprintf("Provider %s is ready", key)}, false, nil
}
