package canary

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/governance"
	"sluice.dev/sluice/pkg/canary/plan"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=releasepolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Admissions is the one place an operator process decides whether a new
// revision may start under the ReleasePolicies that limit concurrent
// releases. Decisions are made one at a time, under its lock, so that
// workers reconciling Canaries at once never admit more than the limit.
// Each counts from the informer cache, overlaid with what this process
// decided or wrote and the cache does not show yet. It also wakes the
// Canaries waiting in a queue when a slot frees or the queue moves. Build
// it with NewAdmissions and share it between the Canary and ReleasePolicy
// controllers of one manager.
type Admissions struct {
	mu sync.Mutex
	// overlay holds, per Canary, its status as this process last decided
	// or wrote it, until the cache shows that write.
	overlay map[types.NamespacedName]written
	// wake receives the Canaries to reconcile because their queue moved.
	wake chan event.GenericEvent
	// base bounds the wake-ups; cancelled when the manager stops.
	base context.Context

	policiesMu sync.Mutex
	// compiled keeps each ReleasePolicy read, by UID, for its generation.
	compiled map[types.UID]compiledPolicy
}

// written is a Canary's status as this process decided or wrote it.
type written struct {
	// rv is the resource version of the write; 0 while a decision is not
	// written yet.
	rv uint64
	// at is when it was decided.
	at      time.Time
	summary summary
}

type compiledPolicy struct {
	generation int64
	policy     *governance.Policy
}

// summary is what a queue reads from a Canary's status.
type summary struct {
	phase       sluicev1beta1.CanaryPhase
	readyReason string
	admission   *sluicev1beta1.AdmissionStatus
}

func summarize(s *sluicev1beta1.CanaryStatus) summary {
	out := summary{phase: s.Phase}
	if c := meta.FindStatusCondition(s.Conditions, sluicev1beta1.ReadyCondition); c != nil {
		out.readyReason = c.Reason
	}
	if s.Admission != nil {
		out.admission = s.Admission.DeepCopy()
	}
	return out
}

func (s summary) equal(o summary) bool {
	return s.phase == o.phase && s.readyReason == o.readyReason && equality.Semantic.DeepEqual(s.admission, o.admission)
}

// pendingTTL is how long an admission that was never written counts: a
// reconcile that failed after it forgets it at once; this covers one that
// never returned.
const pendingTTL = time.Minute

// NewAdmissions returns an empty tracker.
func NewAdmissions() *Admissions {
	return &Admissions{
		overlay:  map[types.NamespacedName]written{},
		wake:     make(chan event.GenericEvent, 1024),
		base:     context.Background(),
		compiled: map[types.UID]compiledPolicy{},
	}
}

// policies reads every ReleasePolicy from the cache, compiled once per
// generation.
func (a *Admissions) policies(ctx context.Context, c client.Reader) ([]*governance.Policy, error) {
	var list sluicev1beta1.ReleasePolicyList
	if err := c.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ReleasePolicies: %w", err)
	}
	a.policiesMu.Lock()
	defer a.policiesMu.Unlock()
	out := make([]*governance.Policy, 0, len(list.Items))
	seen := make(map[types.UID]bool, len(list.Items))
	for i := range list.Items {
		rp := &list.Items[i]
		seen[rp.UID] = true
		cp, ok := a.compiled[rp.UID]
		if !ok || cp.generation != rp.Generation {
			cp = compiledPolicy{generation: rp.Generation, policy: governance.Compile(rp)}
			a.compiled[rp.UID] = cp
		}
		out = append(out, cp.policy)
	}
	for uid := range a.compiled {
		if !seen[uid] {
			delete(a.compiled, uid)
		}
	}
	slices.SortFunc(out, func(x, y *governance.Policy) int {
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// namespaceLabels reads the labels of namespaces from the cache, once
// each per call.
type namespaceLabels struct {
	ctx    context.Context
	reader client.Reader
	seen   map[string]labels.Set
}

func newNamespaceLabels(ctx context.Context, reader client.Reader) *namespaceLabels {
	return &namespaceLabels{ctx: ctx, reader: reader, seen: map[string]labels.Set{}}
}

func (n *namespaceLabels) of(name string) (labels.Set, error) {
	if l, ok := n.seen[name]; ok {
		return l, nil
	}
	ns := &corev1.Namespace{}
	var l labels.Set
	if err := n.reader.Get(n.ctx, client.ObjectKey{Name: name}, ns); err == nil {
		l = ns.Labels
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get Namespace %s: %w", name, err)
	}
	n.seen[name] = l
	return l, nil
}

// matching are the policies that govern a Canary.
func matching(policies []*governance.Policy, ns *namespaceLabels, namespace string, canaryLabels map[string]string) ([]*governance.Policy, error) {
	var out []*governance.Policy
	for _, p := range policies {
		var nsLabels labels.Set
		if p.SelectsNamespaces() {
			l, err := ns.of(namespace)
			if err != nil {
				return nil, err
			}
			nsLabels = l
		}
		if p.Matches(nsLabels, canaryLabels) {
			out = append(out, p)
		}
	}
	return out, nil
}

// limiting are the policies among ps that set maxConcurrentCanaries.
func limiting(ps []*governance.Policy) []*governance.Policy {
	var out []*governance.Policy
	for _, p := range ps {
		if p.Limit > 0 {
			out = append(out, p)
		}
	}
	return out
}

// observeRelease reads what the ReleasePolicies that match c say now.
func (r *Reconciler) observeRelease(ctx context.Context, c *sluicev1beta1.Canary, o *observed) error {
	policies, err := r.Admissions.policies(ctx, r.Client)
	if err != nil || len(policies) == 0 {
		return err
	}
	matched, err := matching(policies, newNamespaceLabels(ctx, r.Client), c.Namespace, c.Labels)
	if err != nil {
		return err
	}
	o.in.Release = governance.GateOf(matched, o.in.Now)
	return nil
}

// admit decides, under the lock, whether c's new revision may start under
// every policy that limits it. An admitted revision counts as holding its
// slot from now on, until the cache shows the status that says so, or
// the reconcile fails and forgets it.
func (r *Reconciler) admit(ctx context.Context, c *sluicev1beta1.Canary, in plan.Input) (plan.Admission, error) {
	a := r.Admissions
	policies, err := a.policies(ctx, r.Client)
	if err != nil {
		return plan.Admission{}, err
	}
	ns := newNamespaceLabels(ctx, r.Client)
	matched, err := matching(policies, ns, c.Namespace, c.Labels)
	if err != nil {
		return plan.Admission{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := r.Clock.Now()
	arrived := now
	if rec := c.Status.Admission; rec != nil && rec.Revision == in.Target.Revision {
		arrived = rec.ArrivedAt.Time
	}
	key := client.ObjectKeyFromObject(c)
	self := governance.Candidate{Key: key.String(), ArrivedAt: arrived}
	out := plan.Admission{Admitted: true, ArrivedAt: arrived, DecidedAt: now}
	var canaries sluicev1beta1.CanaryList
	if err := r.Client.List(ctx, &canaries, client.UnsafeDisableDeepCopy); err != nil {
		return plan.Admission{}, fmt.Errorf("list Canaries: %w", err)
	}
	for _, p := range limiting(matched) {
		others, err := a.candidates(canaries.Items, policies, p, ns, now)
		if err != nil {
			return plan.Admission{}, err
		}
		ok, position, running := governance.Place(self, others, p.Limit)
		if !ok {
			out = plan.Admission{ArrivedAt: arrived, DecidedAt: now, Policy: p.Name, Position: position, Running: running, Limit: p.Limit}
			break
		}
	}
	// The decision counts for the next ones before the status that
	// carries it is written: a slot taken, or a place in the queue.
	decided := summary{
		phase:       sluicev1beta1.CanaryPhaseWaiting,
		readyReason: sluicev1beta1.ReasonQueued,
		admission:   &sluicev1beta1.AdmissionStatus{Revision: in.Target.Revision, ArrivedAt: metav1.NewMicroTime(arrived)},
	}
	if out.Admitted {
		admitted := metav1.NewMicroTime(now)
		decided.phase, decided.readyReason, decided.admission.AdmittedAt = sluicev1beta1.CanaryPhaseProgressing, "", &admitted
	}
	a.overlay[key] = written{at: now, summary: decided}
	return out, nil
}

// candidates are the Canaries p governs as its queue sees them. The caller
// holds the lock.
func (a *Admissions) candidates(canaries []sluicev1beta1.Canary, policies []*governance.Policy, p *governance.Policy, ns *namespaceLabels, now time.Time) ([]governance.Candidate, error) {
	var out []governance.Candidate
	for i := range canaries {
		c := &canaries[i]
		var nsLabels labels.Set
		if p.SelectsNamespaces() {
			l, err := ns.of(c.Namespace)
			if err != nil {
				return nil, err
			}
			nsLabels = l
		}
		if !p.Matches(nsLabels, c.Labels) {
			continue
		}
		s := a.current(c, now)
		cand := governance.Candidate{Key: client.ObjectKeyFromObject(c).String(), Occupying: governance.Occupies(s.phase)}
		if rec := s.admission; s.phase == sluicev1beta1.CanaryPhaseWaiting && rec != nil && rec.AdmittedAt == nil {
			cand.ArrivedAt = rec.ArrivedAt.Time
			switch s.readyReason {
			case sluicev1beta1.ReasonQueued:
				cand.Waiting = true
			case sluicev1beta1.ReasonFrozen:
				// A revision whose freeze ended takes its place by its
				// arrival, before it had the chance to say so.
				mine, err := matching(policies, ns, c.Namespace, c.Labels)
				if err != nil {
					return nil, err
				}
				g := governance.GateOf(mine, now)
				cand.Waiting = g == nil || g.Freeze == nil
			}
		}
		out = append(out, cand)
	}
	return out, nil
}

// current is c's status as this process knows it: the cache's, unless
// this process decided or wrote a newer one. The caller holds the lock.
func (a *Admissions) current(c *sluicev1beta1.Canary, now time.Time) summary {
	key := client.ObjectKeyFromObject(c)
	w, ok := a.overlay[key]
	if ok {
		cached, err := strconv.ParseUint(c.ResourceVersion, 10, 64)
		switch {
		case w.rv == 0 && now.Sub(w.at) < pendingTTL:
			return w.summary
		case w.rv != 0 && err == nil && cached < w.rv:
			return w.summary
		}
		delete(a.overlay, key)
	}
	return summarize(&c.Status)
}

// settle records the outcome of a reconcile of c under policies that
// limit it: the status it wrote, with its resource version, or, when it
// failed, nothing, forgetting an admission it did not write. When c took
// or gave up a slot, or joined or left a queue, the Canaries waiting in
// its queues are woken.
func (r *Reconciler) settle(ctx context.Context, c *sluicev1beta1.Canary, o *observed, before summary, ok bool) {
	a := r.Admissions
	key := client.ObjectKeyFromObject(c)
	if !ok {
		a.mu.Lock()
		if w, found := a.overlay[key]; found && w.rv == 0 {
			delete(a.overlay, key)
		}
		a.mu.Unlock()
		return
	}
	if o.in.Release == nil || !o.in.Release.Limited {
		return
	}
	after := summarize(&c.Status)
	a.mu.Lock()
	if rv, err := strconv.ParseUint(c.ResourceVersion, 10, 64); err == nil {
		a.overlay[key] = written{rv: rv, at: r.Clock.Now(), summary: after}
	} else {
		delete(a.overlay, key)
	}
	a.mu.Unlock()
	if queueState(before) != queueState(after) {
		r.wakeQueue(ctx, c)
	}
}

// queueState is how a Canary counts in a queue: holding a slot, waiting,
// or neither.
func queueState(s summary) string {
	switch {
	case governance.Occupies(s.phase):
		return "running"
	case s.phase == sluicev1beta1.CanaryPhaseWaiting && s.admission != nil && s.admission.AdmittedAt == nil:
		return "waiting/" + s.readyReason
	}
	return ""
}

// wakeQueue reconciles the Canaries that wait in a queue of the policies
// that limit c (all waiting Canaries when c is gone), so that they see
// their new place or take the slot that freed.
func (r *Reconciler) wakeQueue(ctx context.Context, c *sluicev1beta1.Canary) {
	policies, err := r.Admissions.policies(ctx, r.Client)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "wake the Canaries waiting for a slot")
		return
	}
	ns := newNamespaceLabels(ctx, r.Client)
	var limits []*governance.Policy
	if c.UID != "" {
		matched, err := matching(policies, ns, c.Namespace, c.Labels)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "wake the Canaries waiting for a slot")
			return
		}
		limits = limiting(matched)
	} else {
		limits = limiting(policies)
	}
	if len(limits) == 0 {
		return
	}
	var list sluicev1beta1.CanaryList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "wake the Canaries waiting for a slot")
		return
	}
	var wake []event.GenericEvent
	for i := range list.Items {
		w := &list.Items[i]
		if w.Name == c.Name && w.Namespace == c.Namespace {
			continue
		}
		if rec := w.Status.Admission; w.Status.Phase != sluicev1beta1.CanaryPhaseWaiting || rec == nil || rec.AdmittedAt != nil {
			continue
		}
		for _, p := range limits {
			var nsLabels labels.Set
			if p.SelectsNamespaces() {
				if nsLabels, err = ns.of(w.Namespace); err != nil {
					ctrl.LoggerFrom(ctx).Error(err, "wake the Canaries waiting for a slot")
					return
				}
			}
			if p.Matches(nsLabels, w.Labels) {
				wake = append(wake, event.GenericEvent{Object: &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name}}})
				break
			}
		}
	}
	if len(wake) == 0 {
		return
	}
	base := r.Admissions.base
	go func() {
		for _, e := range wake {
			select {
			case r.Admissions.wake <- e:
			case <-base.Done():
				return
			}
		}
	}()
}

// forgetRelease drops what is kept about a deleted Canary and, if
// policies limit releases, wakes the queues it may have held a slot in.
func (r *Reconciler) forgetRelease(ctx context.Context, key types.NamespacedName) {
	a := r.Admissions
	a.mu.Lock()
	delete(a.overlay, key)
	a.mu.Unlock()
	r.wakeQueue(ctx, &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
}

// byReleasePolicy maps a ReleasePolicy to the Canaries it matches, so
// that a change of its spec (a freeze, a limit, a stop) reaches them at
// once. An update maps both the old and the new policy: a Canary it no
// longer matches must drop its freeze.
func (r *Reconciler) byReleasePolicy(ctx context.Context, o client.Object) []reconcile.Request {
	rp, ok := o.(*sluicev1beta1.ReleasePolicy)
	if !ok {
		return nil
	}
	p := governance.Compile(rp)
	var list sluicev1beta1.CanaryList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Canaries", "releasePolicy", rp.Name)
		return nil
	}
	ns := newNamespaceLabels(ctx, r.Client)
	return requests(list.Items, func(c *sluicev1beta1.Canary) bool {
		var nsLabels labels.Set
		if p.SelectsNamespaces() {
			l, err := ns.of(c.Namespace)
			if err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "read namespace labels", "releasePolicy", rp.Name)
				return false
			}
			nsLabels = l
		}
		return p.Matches(nsLabels, c.Labels)
	})
}

// byNamespace maps a relabelled Namespace to its Canaries when a
// ReleasePolicy selects namespaces: a freeze or a limit may now reach
// them, or no longer.
func (r *Reconciler) byNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	policies, err := r.Admissions.policies(ctx, r.Client)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "map a Namespace to its Canaries", "namespace", o.GetName())
		return nil
	}
	if !slices.ContainsFunc(policies, (*governance.Policy).SelectsNamespaces) {
		return nil
	}
	var list sluicev1beta1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Canaries", "namespace", o.GetName())
		return nil
	}
	return requests(list.Items, func(*sluicev1beta1.Canary) bool { return true })
}
