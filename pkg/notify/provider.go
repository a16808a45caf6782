package notify

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
	"sigs.k8s.io/controller-runtime/pkg/source"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// +kubebuilder:rbac:groups=notification.sluice.dev,resources=providers,verbs=get;list;watch
// +kubebuilder:rbac:groups=notification.sluice.dev,resources=providers/status,verbs=get;update;patch

// secretIndex indexes Providers and AlertProviders by the namespace/name
// of the Secrets they read.
const secretIndex = ".spec.secretRefs"

// AlertProviderReconciler writes each AlertProvider's Ready condition,
// its one writer: whether its Secret and address resolve, checked when it
// is created and whenever it or its Secret changes, and how its last
// delivery went. A provider that goes wrong gets a Warning Event, so that
// a broken chat service is seen before the alert that matters is lost.
type AlertProviderReconciler struct {
	Client     client.Client
	Events     clientevents.EventRecorder
	Dispatcher *Dispatcher
	// Shard picks the objects whose status this replica writes, those of
	// its shard; nil writes every one's. Every replica reads them all.
	Shard labels.Selector
}

// SetupWithManager registers the controller.
func (r *AlertProviderReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	return setupReadiness(ctx, mgr, "alertprovider", &sluicev1beta1.AlertProvider{},
		func() client.ObjectList { return &sluicev1beta1.AlertProviderList{} },
		func(p *sluicev1beta1.AlertProvider) providerSpec { return fromAlertProvider(p) },
		r.Dispatcher.delivered[kindAlertProvider], r)
}

// Reconcile writes one AlertProvider's Ready condition.
func (r *AlertProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &sluicev1beta1.AlertProvider{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !owns(r.Shard, p) {
		return ctrl.Result{}, nil
	}
	fields := status.Fields{ObservedGeneration: &p.Status.ObservedGeneration, Conditions: &p.Status.Conditions}
	return ctrl.Result{}, writeReadiness(ctx, r.Client, r.Events, r.Dispatcher, p, fromAlertProvider(p), fields)
}

// ProviderReconciler writes each Provider's Ready condition, its one
// writer, as AlertProviderReconciler does for AlertProviders.
type ProviderReconciler struct {
	Client     client.Client
	Events     clientevents.EventRecorder
	Dispatcher *Dispatcher
	// Shard picks the objects whose status this replica writes, those of
	// its shard; nil writes every one's. Every replica reads them all.
	Shard labels.Selector
}

// SetupWithManager registers the controller.
func (r *ProviderReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	return setupReadiness(ctx, mgr, "provider", &notificationv1beta3.Provider{},
		func() client.ObjectList { return &notificationv1beta3.ProviderList{} },
		func(p *notificationv1beta3.Provider) providerSpec { return fromProvider(p) },
		r.Dispatcher.delivered[kindProvider], r)
}

// Reconcile writes one Provider's Ready condition.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &notificationv1beta3.Provider{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !owns(r.Shard, p) {
		return ctrl.Result{}, nil
	}
	fields := status.Fields{ObservedGeneration: &p.Status.ObservedGeneration, Conditions: &p.Status.Conditions}
	return ctrl.Result{}, writeReadiness(ctx, r.Client, r.Events, r.Dispatcher, p, fromProvider(p), fields)
}

// owns reports whether shard (nil for all) picks obj: another shard's
// replica writes the status of those it does not.
func owns(shard labels.Selector, obj client.Object) bool {
	return shard == nil || shard.Matches(labels.Set(obj.GetLabels()))
}

// setupReadiness registers a readiness controller for a provider kind: it
// runs when a provider changes, when a Secret it reads changes, and when a
// delivery to it ends.
func setupReadiness[T client.Object](ctx context.Context, mgr ctrl.Manager, name string, obj T, list func() client.ObjectList,
	spec func(T) providerSpec, delivered chan event.GenericEvent, r reconcile.Reconciler,
) error {
	if err := index.Add(ctx, mgr.GetFieldIndexer(), obj, secretIndex, func(p T) []types.NamespacedName {
		var out []types.NamespacedName
		for _, name := range []string{spec(p).secretRef, spec(p).certSecretRef} {
			if name != "" {
				out = append(out, types.NamespacedName{Namespace: p.GetNamespace(), Name: name})
			}
		}
		return out
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, secretIndex))).
		WatchesRawSource(source.Channel(delivered, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// writeReadiness writes a provider's Ready condition, and a Warning Event
// when it turns false or says something new.
func writeReadiness(ctx context.Context, c client.Client, events clientevents.EventRecorder, d *Dispatcher, obj client.Object, spec providerSpec, fields status.Fields) error {
	ready, stalled, err := d.readiness(ctx, spec)
	if err != nil {
		return err
	}
	before := obj.DeepCopyObject().(client.Object)
	// Whether it changed is decided before status.Write changes the
	// condition in place.
	previous := meta.FindStatusCondition(*fields.Conditions, sluicev1beta1.ReadyCondition)
	changed := previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message
	if err := status.Write(ctx, c, spec.key.kind, obj, before, fields, ready, stalled); err != nil {
		return err
	}
	if ready.Status == metav1.ConditionFalse && changed {
		events.Eventf(obj, nil, corev1.EventTypeWarning, ready.Reason, "Check", "%s", ready.Message)
	}
	return nil
}

// readiness is a provider's Ready condition: whether a notification can
// be built for it now, then how its last delivery since its last change
// went. A provider that cannot work until its spec or Secret changes is
// stalled; one whose service failed may recover by itself.
func (d *Dispatcher) readiness(ctx context.Context, spec providerSpec) (ready metav1.Condition, stalled bool, err error) {
	res, err := d.resolve(ctx, spec)
	var re *resolveError
	if errors.As(err, &re) {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: re.reason, Message: re.Error()}, true, nil
	} else if err != nil {
		return metav1.Condition{}, false, err
	}
	last, ok := d.lastOutcome(spec.key)
	if ok && last.err != nil && last.generation == spec.generation && last.secretVersion == res.secretVersion {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: notificationv1beta3.ReasonDeliveryFailed, Message: last.err.Error()}, false, nil
	}
	msg := "The Secret and the address resolve"
	if ok && last.err == nil {
		msg = "The last notification was delivered"
	}
	reason := notificationv1beta3.ReasonResolved
	if spec.suspend {
		reason, msg = notificationv1beta3.ReasonSuspended, msg+"; suspended, nothing is sent"
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: reason, Message: msg}, false, nil
}
