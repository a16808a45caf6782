package notify

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/sync/index"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// secretIndex indexes AlertProviders by the namespace/name of the Secret
// they read.
const secretIndex = ".spec.secretRef"

// ProviderReconciler writes each AlertProvider's Ready condition, its
// one writer: whether its Secret and address resolve, checked when it is
// created and whenever it or its Secret changes, and how its last
// delivery went. A provider that goes wrong gets a Warning Event, so that
// a broken chat service is seen before the alert that matters is lost.
type ProviderReconciler struct {
	Client     client.Client
	Events     clientevents.EventRecorder
	Dispatcher *Dispatcher
}

// SetupWithManager registers the controller.
func (r *ProviderReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := index.Add(ctx, mgr.GetFieldIndexer(), &sluicev1beta1.AlertProvider{}, secretIndex, func(p *sluicev1beta1.AlertProvider) []types.NamespacedName {
		if ref := p.Spec.SecretRef; ref != nil {
			return []types.NamespacedName{{Namespace: p.Namespace, Name: ref.Name}}
		}
		return nil
	}); err != nil {
		return err
	}
	list := func() client.ObjectList { return &sluicev1beta1.AlertProviderList{} }
	return ctrl.NewControllerManagedBy(mgr).
		Named("alertprovider").
		For(&sluicev1beta1.AlertProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(index.Mapper(mgr.GetClient(), list, secretIndex))).
		WatchesRawSource(source.Channel(r.Dispatcher.delivered, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// Reconcile writes one AlertProvider's Ready condition.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &sluicev1beta1.AlertProvider{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ready, stalled, err := r.Dispatcher.readiness(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := p.DeepCopy()
	// Whether it changed is decided before SetReady changes the condition
	// in place.
	previous := meta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition)
	changed := previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message
	fields := status.Fields{ObservedGeneration: &p.Status.ObservedGeneration, Conditions: &p.Status.Conditions}
	if err := status.Write(ctx, r.Client, "AlertProvider", p, before, fields, ready, stalled); err != nil {
		return ctrl.Result{}, err
	}
	if ready.Status == metav1.ConditionFalse && changed {
		r.Events.Eventf(p, nil, corev1.EventTypeWarning, ready.Reason, "Check", "%s", ready.Message)
	}
	return ctrl.Result{}, nil
}

// readiness is an AlertProvider's Ready condition: whether an alert can
// be built for it now, then how its last delivery since its last change
// went. A provider that cannot work until its spec or Secret changes is
// stalled; one whose service failed may recover by itself.
func (d *Dispatcher) readiness(ctx context.Context, p *sluicev1beta1.AlertProvider) (ready metav1.Condition, stalled bool, err error) {
	notReady := func(reason, msg string) (metav1.Condition, bool, error) {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg}, reason != sluicev1beta1.AlertProviderReasonDeliveryFailed, nil
	}
	ep, err := d.endpoint(ctx, p)
	if apierrors.IsNotFound(err) {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SecretRef.Name}
		return notReady(sluicev1beta1.AlertProviderReasonSecretNotFound, fmt.Sprintf("spec.secretRef: Secret %s not found", key))
	} else if err != nil {
		return metav1.Condition{}, false, err
	}
	sample := newMessage(&sluicev1beta1.Canary{}, canary.Alert{Severity: sluicev1beta1.SeverityInfo}, d.opts.ClusterName, p.Spec.Type, p.Spec.MessageTemplate)
	if _, err := build(p, ep, sample); err != nil {
		reason := sluicev1beta1.AlertProviderReasonInvalidSpec
		switch {
		case errors.Is(err, errNoAddress):
			reason = sluicev1beta1.AlertProviderReasonAddressNotFound
		case errors.Is(err, errInvalidAddress):
			reason = sluicev1beta1.AlertProviderReasonInvalidAddress
		}
		return notReady(reason, err.Error())
	}
	if _, err := d.client(p.Spec.Proxy); err != nil {
		return notReady(sluicev1beta1.AlertProviderReasonInvalidSpec, err.Error())
	}
	last, ok := d.lastOutcome(client.ObjectKeyFromObject(p))
	if ok && last.err != nil && last.generation == p.Generation && last.secretVersion == ep.secretVersion {
		return notReady(sluicev1beta1.AlertProviderReasonDeliveryFailed, last.err.Error())
	}
	msg := "The Secret and the address resolve"
	if ok && last.err == nil {
		msg = "The last alert was delivered"
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: sluicev1beta1.AlertProviderReasonResolved, Message: msg}, false, nil
}
