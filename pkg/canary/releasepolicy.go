package canary

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/governance"
	"sluice.dev/sluice/pkg/sync/status"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=releasepolicies/status,verbs=get;update;patch

// maxQueueShown bounds status.queue, so that a long queue does not grow
// the object without end; status.queued counts them all.
const maxQueueShown = 100

// ReleasePolicyReconciler writes each ReleasePolicy's status, its one
// writer: whether its spec can be read (Ready, with the field at fault and
// a Warning Event when it cannot), the freeze in force, and how many of
// its Canaries hold a slot and wait for one, in order. It looks again when
// a window opens or closes and when one of its Canaries starts, ends or
// joins or leaves the queue.
type ReleasePolicyReconciler struct {
	Client client.Client
	Events clientevents.EventRecorder
	// Admissions is the Canary controller's, so that the counts are the
	// ones its decisions see.
	Admissions *Admissions
	// Clock reads the time; the real one when nil.
	Clock clock.PassiveClock
	// Shard picks the policies whose status this replica writes, so that
	// each has one writer when replicas shard the Canaries; nil writes
	// every one's. Every replica reads them all: a freeze or a stop holds
	// the Canaries of every shard, and a limit counts those of each shard.
	Shard labels.Selector
}

// SetupWithManager registers the controller.
func (r *ReleasePolicyReconciler) SetupWithManager(_ context.Context, mgr manager.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Admissions == nil {
		r.Admissions = NewAdmissions()
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("releasepolicy").
		// A relabelled policy may move into this replica's shard.
		For(&sluicev1beta1.ReleasePolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(r.byCanary), builder.WithPredicates(queueChanged())).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up the ReleasePolicy controller: %w", err)
	}
	return nil
}

// queueChanged passes the Canary events that change a policy's counts or
// queue: a Canary created or deleted, or one whose phase, Ready reason or
// admission changed. Every other status write, such as a step's, is left
// out.
func queueChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, okBefore := e.ObjectOld.(*sluicev1beta1.Canary)
		after, okAfter := e.ObjectNew.(*sluicev1beta1.Canary)
		if !okBefore || !okAfter {
			return false
		}
		return !summarize(&before.Status).equal(summarize(&after.Status)) || !equality.Semantic.DeepEqual(before.Labels, after.Labels)
	}}
}

// byCanary maps a Canary to the policies that match it.
func (r *ReleasePolicyReconciler) byCanary(ctx context.Context, o client.Object) []reconcile.Request {
	policies, err := r.Admissions.policies(ctx, r.Client)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "map a Canary to its ReleasePolicies")
		return nil
	}
	if len(policies) == 0 {
		return nil
	}
	matched, err := matching(policies, newNamespaceLabels(ctx, r.Client), o.GetNamespace(), o.GetLabels())
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "map a Canary to its ReleasePolicies")
		return nil
	}
	out := make([]reconcile.Request, 0, len(matched))
	for _, p := range matched {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Name}})
	}
	return out
}

// Reconcile writes one ReleasePolicy's status.
func (r *ReleasePolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rp := &sluicev1beta1.ReleasePolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, rp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.Shard != nil && !r.Shard.Matches(labels.Set(rp.Labels)) {
		return ctrl.Result{}, nil
	}
	before := rp.DeepCopy()
	now := r.Clock.Now()
	p := governance.Compile(rp)
	rp.Status.ActiveFreeze = p.ActiveFreeze(now)

	running, queue, err := r.queue(ctx, p, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	rp.Status.Running, rp.Status.Queued = int32(running), int32(len(queue))
	rp.Status.Queue = nil
	for _, c := range queue[:min(len(queue), maxQueueShown)] {
		ns, name, _ := strings.Cut(c.Key, "/")
		rp.Status.Queue = append(rp.Status.Queue, sluicev1beta1.QueuedCanary{Namespace: ns, Name: name, ArrivedAt: metav1.NewMicroTime(c.ArrivedAt)})
	}

	ready := metav1.Condition{Status: metav1.ConditionTrue, Reason: sluicev1beta1.ReleasePolicyReasonSucceeded, Message: policySummary(p, rp, now)}
	stalled := false
	if len(p.Problems) > 0 {
		var problems []string
		for _, pr := range p.Problems {
			problems = append(problems, pr.String())
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, p.Problems[0].Reason, strings.Join(problems, "; ")
		if p.Problems[0].Reason == sluicev1beta1.ReasonInvalidSchedule {
			ready.Message += "; the Canaries it matches are frozen until it is fixed"
		}
		stalled = true
	}
	previous := meta.FindStatusCondition(rp.Status.Conditions, sluicev1beta1.ReadyCondition)
	changed := previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message
	fields := status.Fields{ObservedGeneration: &rp.Status.ObservedGeneration, Conditions: &rp.Status.Conditions}
	if err := status.Write(ctx, r.Client, "ReleasePolicy", rp, before, fields, ready, stalled); err != nil {
		return ctrl.Result{}, err
	}
	if ready.Status == metav1.ConditionFalse && changed {
		r.Events.Eventf(rp, nil, corev1.EventTypeWarning, ready.Reason, "Check", "%s", ready.Message)
	}
	if next := p.NextChange(now); !next.IsZero() {
		return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
	}
	return ctrl.Result{}, nil
}

// queue counts the policy's Canaries that hold a slot and orders those
// that wait for one, as the Canary controller's admissions see them.
func (r *ReleasePolicyReconciler) queue(ctx context.Context, p *governance.Policy, now time.Time) (int, []governance.Candidate, error) {
	policies, err := r.Admissions.policies(ctx, r.Client)
	if err != nil {
		return 0, nil, err
	}
	var list sluicev1beta1.CanaryList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, nil, fmt.Errorf("list Canaries: %w", err)
	}
	a := r.Admissions
	a.mu.Lock()
	defer a.mu.Unlock()
	cands, err := a.candidates(list.Items, policies, p, newNamespaceLabels(ctx, r.Client), now)
	if err != nil {
		return 0, nil, err
	}
	return governance.Running(cands), governance.Queue(cands), nil
}

// policySummary is the Ready message of a policy that can be read.
func policySummary(p *governance.Policy, rp *sluicev1beta1.ReleasePolicy, now time.Time) string {
	var parts []string
	if f := p.FreezeAt(now); f != nil {
		parts = append(parts, f.Message())
	} else {
		parts = append(parts, "No freeze in force")
	}
	if p.Limit > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d running, %d queued", rp.Status.Running, p.Limit, rp.Status.Queued))
	}
	return strings.Join(parts, "; ")
}
