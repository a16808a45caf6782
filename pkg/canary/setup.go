package canary

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/configtrack"
	"sluice.dev/sluice/pkg/hook"
	"sluice.dev/sluice/pkg/workload"
	"sluice.dev/sluice/router"
)

// Field indexes on Canaries, for mapping watched objects to them.
const (
	targetIndex     = ".spec.targetRef"
	autoscalerIndex = ".spec.autoscalerRef"
	templateIndex   = ".spec.analysis.metrics.templateRef"
	alertIndex      = ".spec.analysis.alerts.providerRef"
)

// templateKeys are the namespace/name of the MetricTemplates a Canary's
// metrics use.
func templateKeys(c *sluicev1beta1.Canary) []string {
	if c.Spec.Analysis == nil {
		return nil
	}
	var keys []string
	for _, m := range c.Spec.Analysis.Metrics {
		if ref := m.TemplateRef; ref != nil {
			ns := ref.Namespace
			if ns == "" {
				ns = c.Namespace
			}
			keys = append(keys, ns+"/"+ref.Name)
		}
	}
	return keys
}

// New builds a Reconciler on a manager.
func New(mgr manager.Manager, recorder *Recorder, opts Options) *Reconciler {
	workers := opts.Workers
	if workers <= 0 {
		workers = 8
	}
	admissions := opts.Admissions
	if admissions == nil {
		admissions = NewAdmissions()
	}
	return &Reconciler{
		Client:               mgr.GetClient(),
		Scheme:               mgr.GetScheme(),
		Events:               opts.Events,
		RouterDeps:           router.Deps{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), IngressAnnotationsPrefix: opts.IngressAnnotationsPrefix},
		Hooks:                hook.NewCaller(opts.Egress),
		Metrics:              opts.Metrics,
		Notifier:             opts.Notifier,
		Recorder:             recorder,
		Clock:                clock.RealClock{},
		DefaultProvider:      opts.DefaultProvider,
		IncludeLabelPrefixes: opts.IncludeLabelPrefixes,
		ConfigTracking:       opts.ConfigTracking,
		Workers:              workers,
		Admissions:           admissions,
		inflight:             newInflight(),
	}
}

// SetupWithManager registers the controller. A Canary is reconciled when
// it changes, when its target, primary, Services, autoscalers or tracked
// configs change, and when the checks of its step are answered.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	if r.inflight == nil {
		r.inflight = newInflight()
	}
	r.inflight.base = ctx
	if r.Admissions == nil {
		r.Admissions = NewAdmissions()
	}
	r.Admissions.base = ctx
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &sluicev1beta1.Canary{}, targetIndex, func(o client.Object) []string {
		ref := o.(*sluicev1beta1.Canary).Spec.TargetRef
		return []string{ref.Kind + "/" + ref.Name}
	}); err != nil {
		return fmt.Errorf("index Canaries by target: %w", err)
	}
	if err := indexer.IndexField(ctx, &sluicev1beta1.Canary{}, autoscalerIndex, func(o client.Object) []string {
		if ref := o.(*sluicev1beta1.Canary).Spec.AutoscalerRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Canaries by autoscaler: %w", err)
	}
	if err := indexer.IndexField(ctx, &sluicev1beta1.Canary{}, templateIndex, func(o client.Object) []string {
		return templateKeys(o.(*sluicev1beta1.Canary))
	}); err != nil {
		return fmt.Errorf("index Canaries by MetricTemplate: %w", err)
	}

	if err := indexer.IndexField(ctx, &sluicev1beta1.Canary{}, alertIndex, func(o client.Object) []string {
		if r.Notifier == nil {
			return nil
		}
		var keys []string
		for _, p := range r.Notifier.Providers(o.(*sluicev1beta1.Canary)) {
			keys = append(keys, p.String())
		}
		return keys
	}); err != nil {
		return fmt.Errorf("index Canaries by AlertProvider: %w", err)
	}

	b := ctrl.NewControllerManagedBy(mgr).
		Named("canary").
		// Status writes are the controller's own; spec, metadata and
		// deletion changes are what it must act on.
		For(&sluicev1beta1.Canary{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.byIndex(targetIndex, func(o client.Object) string { return "Deployment/" + o.GetName() }))).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.byIndex(targetIndex, func(o client.Object) string { return "DaemonSet/" + o.GetName() }))).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.byIndex(targetIndex, func(o client.Object) string { return "Service/" + o.GetName() }))).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.byIndex(autoscalerIndex, client.Object.GetName))).
		Watches(&sluicev1beta1.MetricTemplate{}, handler.EnqueueRequestsFromMapFunc(r.byReference(templateIndex))).
		Watches(&sluicev1beta1.AlertProvider{}, handler.EnqueueRequestsFromMapFunc(r.byReference(alertIndex))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.byConfig(configtrack.ConfigMap))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.byConfig(configtrack.Secret))).
		WatchesRawSource(source.Channel(r.inflight.done, &handler.EnqueueRequestForObject{})).
		// A ReleasePolicy's spec (a freeze, a stop, a limit) reaches the
		// Canaries it matches at once; its status, which changes with
		// theirs, does not.
		Watches(&sluicev1beta1.ReleasePolicy{}, handler.EnqueueRequestsFromMapFunc(r.byReleasePolicy), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.Admissions.wake, &handler.EnqueueRequestForObject{})).
		// A namespace relabelled may come into, or go out of, the reach
		// of a ReleasePolicy's namespaceSelector.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.byNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers})
	// KEDA's ScaledObjects are watched where KEDA is installed: a watch of
	// a kind the API server does not serve would keep the controller from
	// starting.
	if _, err := mgr.GetRESTMapper().RESTMapping(scaledObjectGVK.GroupKind(), scaledObjectGVK.Version); err == nil {
		so := &unstructured.Unstructured{}
		so.SetGroupVersionKind(scaledObjectGVK)
		b = b.Watches(so, handler.EnqueueRequestsFromMapFunc(r.byIndex(autoscalerIndex, client.Object.GetName)))
	}
	// Knative Services likewise, where Knative Serving is installed.
	if _, err := mgr.GetRESTMapper().RESTMapping(workload.KnativeService.GroupKind(), workload.KnativeService.Version); err == nil {
		ksvc := &unstructured.Unstructured{}
		ksvc.SetGroupVersionKind(workload.KnativeService)
		b = b.Watches(ksvc, handler.EnqueueRequestsFromMapFunc(r.byIndex(targetIndex, func(o client.Object) string { return "Service/" + o.GetName() })))
	}
	return b.Complete(r)
}

// byIndex maps an object to the Canaries in its namespace whose index
// holds key(object).
func (r *Reconciler) byIndex(index string, key func(client.Object) string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list sluicev1beta1.CanaryList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: key(o)}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list Canaries", "index", index)
			return nil
		}
		return requests(list.Items, func(*sluicev1beta1.Canary) bool { return true })
	}
}

// byReference maps an object to the Canaries of every namespace whose
// index holds its namespace/name: MetricTemplates and AlertProviders may
// sit in another namespace than their Canaries. A fixed template unblocks
// them at once; a provider's readiness shows on them.
func (r *Reconciler) byReference(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list sluicev1beta1.CanaryList
		if err := r.Client.List(ctx, &list, client.MatchingFields{index: o.GetNamespace() + "/" + o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list Canaries", "index", index)
			return nil
		}
		return requests(list.Items, func(*sluicev1beta1.Canary) bool { return true })
	}
}

// byConfig maps a ConfigMap or Secret to the Canaries that track it, and
// to those waiting for a config to appear.
func (r *Reconciler) byConfig(kind configtrack.Kind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list sluicev1beta1.CanaryList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list Canaries")
			return nil
		}
		key := configtrack.Ref{Kind: kind, Name: o.GetName()}.Key()
		return requests(list.Items, func(c *sluicev1beta1.Canary) bool {
			if _, ok := c.Status.TrackedConfigs[key]; ok {
				return true
			}
			for _, cond := range c.Status.Conditions {
				if cond.Type == sluicev1beta1.ReadyCondition && (cond.Reason == "ConfigNotFound" || cond.Reason == "MetricSecretNotFound") {
					return true
				}
			}
			return false
		})
	}
}

func requests(canaries []sluicev1beta1.Canary, keep func(*sluicev1beta1.Canary) bool) []reconcile.Request {
	var out []reconcile.Request
	for i := range canaries {
		if keep(&canaries[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&canaries[i])})
		}
	}
	return out
}
