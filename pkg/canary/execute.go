package canary

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/hook"
	"sluice.dev/sluice/pkg/workload"
	"sluice.dev/sluice/router"
)

// execute carries out a decision in three stages: first the changes to
// workloads and routes, in the order the state machine gave; then the
// status, written once; then what only reports (events, alerts, hooks that
// need no answer, metrics), so that a failure in the first stage never
// announces what did not happen. Every change is idempotent: after a crash
// anywhere, the next reconcile decides again from the same status.
func (r *Reconciler) execute(ctx context.Context, c *sluicev1beta1.Canary, o *observed, out plan.Output) error {
	// Routers see the status being decided: the session affinity cookies
	// of a new rollout, for one.
	next := c.DeepCopy()
	next.Status = out.Status
	tookOver := false
	for _, a := range out.Actions {
		var err error
		switch a := a.(type) {
		case plan.CreatePrimary, plan.Promote:
			err = r.syncPrimary(ctx, c, o)
		case plan.TakeOverTraffic:
			err = o.router.Reconcile(ctx, next)
			tookOver = true
		case plan.ScaleTarget:
			err = r.scaleTarget(ctx, c, o, a.Up)
		case plan.SetRoutes:
			err = o.router.SetRoutes(ctx, next, a.Routes)
		case plan.ScalePrimaryForRollback:
			err = r.patchWorkload(ctx, c, o.primary, func(obj client.Object) { workload.SetReplicas(obj, rollbackReplicas(c, o)) })
		case plan.RevertTarget:
			err = r.scaleTarget(ctx, c, o, true)
		case plan.RevertRouting:
			err = r.revertRouting(ctx, next, o)
		}
		if err != nil {
			return err
		}
	}
	// Keep the routing objects as the Canary describes them (and undo
	// edits) once production traffic is the primary's.
	if !tookOver && o.router != nil && o.target != nil && !o.in.Deleting && out.Status.LastPromotedSpec != "" {
		if err := o.router.Reconcile(ctx, next); err != nil {
			return err
		}
	}

	if err := r.writeStatus(ctx, c, out.Status); err != nil {
		return err
	}

	for _, a := range out.Actions {
		switch a := a.(type) {
		case plan.Emit:
			r.announce(ctx, c, a.Event)
		case plan.RecordRelease:
			r.Recorder.release(c, o.in.Spec.Strategy, a.Result, a.Duration)
		case plan.RunHooks:
			r.fireHooks(ctx, c, hooksOfType(c, a.Type), nil)
		case plan.RemoveFinalizer:
			if err := r.patchCanary(ctx, c, func() { controllerutil.RemoveFinalizer(c, sluicev1beta1.Finalizer) }); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	r.Recorder.observe(c)
	return nil
}

func (r *Reconciler) scaleTarget(ctx context.Context, c *sluicev1beta1.Canary, o *observed, up bool) error {
	if o.target == nil {
		return nil
	}
	replicas := canaryReplicas(o)
	// An autoscaler that would scale the canary up from zero (KEDA) is
	// paused before it goes to zero and resumed once it is scaled up.
	if o.autoscaler != nil && !up {
		if err := o.autoscaler.hold(ctx, r, true); err != nil {
			return err
		}
	}
	if err := r.patchWorkload(ctx, c, o.target, func(obj client.Object) {
		if up {
			workload.ScaleUp(obj, replicas)
		} else {
			workload.ScaleToZero(obj)
		}
	}); err != nil {
		return err
	}
	if o.autoscaler != nil && up {
		return o.autoscaler.hold(ctx, r, false)
	}
	return nil
}

// patchWorkload merge-patches a workload when mutate changes it.
func (r *Reconciler) patchWorkload(ctx context.Context, c *sluicev1beta1.Canary, obj client.Object, mutate func(client.Object)) error {
	if obj == nil {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	mutate(obj)
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	if err := r.Client.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patch %s: %w", obj.GetName(), err)
	}
	r.wrote(c, obj)
	return nil
}

func (r *Reconciler) revertRouting(ctx context.Context, c *sluicev1beta1.Canary, o *observed) error {
	if o.router != nil {
		return o.router.Finalize(ctx, c)
	}
	// A Canary whose provider is unavailable still gets its apex Service
	// back.
	return router.Services(r.RouterDeps).Finalize(ctx, c)
}

// writeStatus replaces the status when it changed. The update carries the
// resource version: a decision made from a stale cache is rejected, not
// written over a newer one.
func (r *Reconciler) writeStatus(ctx context.Context, c *sluicev1beta1.Canary, status sluicev1beta1.CanaryStatus) error {
	if equality.Semantic.DeepEqual(c.Status, status) {
		return nil
	}
	c.Status = status
	if err := r.Client.Status().Update(ctx, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("write status: %w", err)
	}
	r.wrote(c, c)
	return nil
}

func (r *Reconciler) patchCanary(ctx context.Context, c *sluicev1beta1.Canary, mutate func()) error {
	before := c.DeepCopy()
	mutate()
	if equality.Semantic.DeepEqual(before.ObjectMeta, c.ObjectMeta) {
		return nil
	}
	if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch Canary: %w", err)
	}
	r.wrote(c, c)
	return nil
}

// announce records an event, posts it to the event hooks and, when it has
// a severity, alerts.
func (r *Reconciler) announce(ctx context.Context, c *sluicev1beta1.Canary, e plan.Event) {
	eventType := "Normal"
	if e.Warning {
		eventType = "Warning"
	}
	r.Events.Eventf(c, nil, eventType, e.Reason, e.Reason, "%s", e.Message)
	if hooks := hooksOfType(c, sluicev1beta1.EventHook); len(hooks) > 0 {
		r.fireHooks(ctx, c, hooks, hook.EventMetadata(e.Message, e.Warning, r.Clock.Now()))
	}
	if e.Severity != "" && r.Notifier != nil {
		obj, alert := c.DeepCopy(), alert.Canary{Severity: e.Severity, Reason: e.Reason, Message: e.Message}
		if e.Warning {
			alert.Metric = failedMetric(c)
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := r.Notifier.Notify(ctx, obj, alert); err != nil {
				log.FromContext(ctx).Error(err, "send alert", "reason", alert.Reason)
			}
		}()
	}
}

// fireHooks calls hooks whose answer decides nothing (post-rollout,
// event) in the background; failures are logged.
func (r *Reconciler) fireHooks(ctx context.Context, c *sluicev1beta1.Canary, hooks []sluicev1beta1.CanaryWebhook, metadata map[string]string) {
	if len(hooks) == 0 {
		return
	}
	p := payload(c, metadata)
	logger := log.FromContext(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, res := range r.Hooks.Call(ctx, hooks, p) {
			if !res.OK() {
				logger.Error(res.Err, "webhook failed", "hook", res.Hook)
			}
		}
	}()
}

// failedMetric is the first metric that did not pass the last step, for
// alerts about a failure.
func failedMetric(c *sluicev1beta1.Canary) *alert.FailedMetric {
	for _, m := range c.Status.Metrics {
		if m.Outcome == sluicev1beta1.MetricPass || m.Outcome == sluicev1beta1.MetricSkipped {
			continue
		}
		out := &alert.FailedMetric{Name: m.Name, Value: m.Value}
		for _, spec := range c.Spec.Analysis.Metrics {
			if spec.Name == m.Name {
				out.Min, out.Max = spec.Range()
			}
		}
		return out
	}
	return nil
}
