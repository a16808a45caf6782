package canary

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/egress"
	"sluice.dev/sluice/pkg/hook"
	"sluice.dev/sluice/router"
)

// Reconciler drives Canaries. Build it with New.
type Reconciler struct {
	Client client.Client
	// Scheme resolves the kinds of owner references.
	Scheme *runtime.Scheme
	Events clientevents.EventRecorder
	// RouterDeps build the routers.
	RouterDeps router.Deps
	// Hooks calls webhooks.
	Hooks *hook.Caller
	// Metrics evaluates analysis metrics; nil until a metric provider is
	// available, and then Canaries with metrics wait with a condition.
	Metrics MetricChecker
	// Notifier sends alerts; nil sends none.
	Notifier Notifier
	// Recorder exports Prometheus metrics about Canaries.
	Recorder *Recorder
	// Clock reads the time of each decision.
	Clock clock.PassiveClock

	// DefaultProvider routes Canaries that name no provider.
	DefaultProvider sluicev1beta1.Provider
	// IncludeLabelPrefixes are the label and annotation prefixes copied
	// from a target to its primary.
	IncludeLabelPrefixes []string
	// ConfigTracking turns the tracking of ConfigMaps and Secrets on.
	ConfigTracking bool
	// Workers is the number of Canaries reconciled at once.
	Workers int
	// Admissions decides, one at a time, which new revisions may start
	// under the ReleasePolicies that limit concurrent releases.
	Admissions *Admissions

	inflight *inflight
	// written holds, per Canary, the resource versions of the objects its
	// reconciles last wrote, so that no decision is made from a cache that
	// has not seen them yet.
	written sync.Map // types.NamespacedName -> *versions
}

// versions are the resource versions of the objects one Canary's
// reconciles wrote, by object UID.
type versions struct {
	mu  sync.Mutex
	rvs map[types.UID]uint64
}

// Options configure a Reconciler.
type Options struct {
	// Events records the Canaries' Kubernetes Events.
	Events                   clientevents.EventRecorder
	DefaultProvider          sluicev1beta1.Provider
	IngressAnnotationsPrefix string
	IncludeLabelPrefixes     []string
	ConfigTracking           bool
	Workers                  int
	Metrics                  MetricChecker
	Notifier                 Notifier
	// Egress keeps webhook calls off the operator's own listeners; nil
	// keeps them off nothing.
	Egress *egress.Guard
	// Admissions is shared with the ReleasePolicy controller; nil makes
	// one of its own.
	Admissions *Admissions
}

// Reconcile moves one Canary a step forward.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &sluicev1beta1.Canary{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			r.inflight.forget(req.NamespacedName)
			r.written.Delete(req.NamespacedName)
			r.Recorder.forget(req.NamespacedName)
			r.forgetRelease(ctx, req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get Canary: %w", err)
	}
	if r.behind(c, c) {
		// Our last write has not reached the cache yet; deciding now would
		// repeat the last step. Status writes do not trigger reconciles, so
		// come back shortly rather than lose whatever triggered this one.
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	deleting := !c.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(c, sluicev1beta1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if !deleting {
		if err := r.patchCanary(ctx, c, func() {
			if c.Spec.RevertOnDeletion {
				controllerutil.AddFinalizer(c, sluicev1beta1.Finalizer)
			} else {
				controllerutil.RemoveFinalizer(c, sluicev1beta1.Finalizer)
			}
		}); err != nil {
			return ctrl.Result{}, err
		}
	}

	o, err := r.observe(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if r.behind(c, o.target, o.primary) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	if o.router != nil && o.target != nil && !deleting && o.in.Blocked == nil {
		if err := o.router.Initialize(ctx, c); err != nil && !o.blockOn(err) {
			return retryConflict(ctx, fmt.Errorf("initialize routing: %w", err))
		}
	}

	out, ready, err := r.decide(ctx, c, o)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !ready {
		// Checks are running; their end wakes this Canary. The requeue only
		// covers a lost wake-up.
		return ctrl.Result{RequeueAfter: r.checkTimeout(o.in.Spec) + 5*time.Second}, nil
	}
	before := summarize(&c.Status)
	if err := r.execute(ctx, c, o, out); err != nil {
		if !o.blockOn(err) {
			r.settle(ctx, c, o, before, false)
			return retryConflict(ctx, err)
		}
		// The router met a field it cannot work with: decide again as
		// blocked, which moves nothing and says which field.
		r.settle(ctx, c, o, before, false)
		if out, _, err = r.decide(ctx, c, o); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.execute(ctx, c, o, out); err != nil {
			r.settle(ctx, c, o, before, false)
			return retryConflict(ctx, err)
		}
	}
	r.settle(ctx, c, o, before, true)
	if o.in.Blocked != nil && o.in.Blocked.Reason == plan.ReasonRoutingInvalid {
		// What the field names (an ApisixRoute, an Upstream) is not
		// watched: look again each interval.
		return ctrl.Result{RequeueAfter: r.checkTimeout(o.in.Spec)}, nil
	}
	return ctrl.Result{RequeueAfter: out.RequeueAfter}, nil
}

// retryConflict turns a write conflict into a quick retry: the write was
// computed from a cache that had not caught up, and every write is
// idempotent, so deciding again once it has is all there is to do. Other
// errors go back to the workqueue, which logs them and backs off.
func retryConflict(ctx context.Context, err error) (ctrl.Result, error) {
	if !apierrors.IsConflict(err) {
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).V(1).Info("Write conflict; deciding again", "error", err.Error())
	return ctrl.Result{RequeueAfter: staleRetry}, nil
}

// decide runs the state machine, gathering the checks it asks for and,
// for a new revision that policies limit, its admission. It reports false
// while checks are still running.
func (r *Reconciler) decide(ctx context.Context, c *sluicev1beta1.Canary, o *observed) (plan.Output, bool, error) {
	in := o.in
	snapshot := c.DeepCopy()
	for {
		out := plan.Step(in)
		if out.Need == nil {
			return out, true, nil
		}
		if out.Need.Admission {
			if in.Release == nil || in.Release.Admission != nil {
				// Step asks once, and only under a policy that limits.
				return plan.Output{}, false, fmt.Errorf("canary %s: the state machine asked for an admission twice, or with no ReleasePolicy", client.ObjectKeyFromObject(c))
			}
			a, err := r.admit(ctx, c, in)
			if err != nil {
				return plan.Output{}, false, err
			}
			gate := *in.Release
			gate.Admission = &a
			in.Release = &gate
			continue
		}
		results, ok := r.inflight.checks(c, out.Need.Step, out.Need.Checks, r.checkTimeout(in.Spec), func(ctx context.Context, checks []plan.Check) plan.Checks {
			return r.runChecks(ctx, snapshot, checks)
		})
		if !ok {
			return plan.Output{}, false, nil
		}
		in.Checks = results
	}
}

// checkTimeout bounds the checks of one step: an analysis interval, so
// that a step never runs into the next.
func (r *Reconciler) checkTimeout(s plan.Spec) time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	return time.Minute
}

// staleRetry is how soon a reconcile that met a stale cache runs again.
const staleRetry = 50 * time.Millisecond

// behind reports whether any of the cached objects is older than what a
// reconcile of Canary c last wrote to it. Resource versions are compared
// as the etcd revisions they are; an unparsable one is never behind.
func (r *Reconciler) behind(c *sluicev1beta1.Canary, objs ...client.Object) bool {
	v, ok := r.written.Load(client.ObjectKeyFromObject(c))
	if !ok {
		return false
	}
	vs := v.(*versions)
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for _, o := range objs {
		if o == nil || reflect.ValueOf(o).IsNil() {
			continue
		}
		written, ok := vs.rvs[o.GetUID()]
		cached, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
		if ok && err == nil && cached < written {
			return true
		}
	}
	return false
}

// wrote records the resource version of an object a reconcile of Canary c
// just wrote.
func (r *Reconciler) wrote(c *sluicev1beta1.Canary, o client.Object) {
	rv, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	v, _ := r.written.LoadOrStore(client.ObjectKeyFromObject(c), &versions{rvs: map[types.UID]uint64{}})
	vs := v.(*versions)
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.rvs[o.GetUID()] = rv
}

// NewRouter returns the router of a provider.
func (r *Reconciler) NewRouter(provider sluicev1beta1.Provider) (router.Router, error) {
	return router.New(provider, r.RouterDeps)
}
