package scale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/controlplane"
)

// tracker follows every Canary through a watch of the benchmark's own,
// and notes when each status it waits for arrives: polling 10,000
// Canaries would load the API server the operator needs, and would
// measure the poll's period rather than the operator.
type tracker struct {
	mu      sync.Mutex
	want    int
	latest  map[types.NamespacedName]*sluicev1beta1.Canary
	settled map[types.NamespacedName]bool
	// nSettled counts the true values of settled.
	nSettled int
	waits    map[types.NamespacedName][]*await
	// all is closed, and doneAt set, when want Canaries have first been
	// settled at once.
	all    chan struct{}
	doneAt time.Time
}

// await is a status a Canary is expected to reach.
type await struct {
	match func(*sluicev1beta1.Canary) bool
	// done is closed when the watch delivered a status that matches, at
	// at.
	done chan struct{}
	at   time.Time
}

// settled reports whether a Canary is initialised, or done with its last
// release, and Ready.
func settled(c *sluicev1beta1.Canary) bool {
	phase := c.Status.Phase
	return (phase == sluicev1beta1.CanaryPhaseInitialized || phase == sluicev1beta1.CanaryPhaseSucceeded) &&
		meta.IsStatusConditionTrue(c.Status.Conditions, sluicev1beta1.ReadyCondition)
}

func newTracker(want int) *tracker {
	return &tracker{
		want:    want,
		latest:  map[types.NamespacedName]*sluicev1beta1.Canary{},
		settled: map[types.NamespacedName]bool{},
		waits:   map[types.NamespacedName][]*await{},
		all:     make(chan struct{}),
	}
}

// startTracker starts an informer of Canaries that feeds a tracker of
// want Canaries, until ctx ends.
func startTracker(ctx context.Context, cp *controlplane.ControlPlane, want int) (*tracker, error) {
	t := newTracker(want)
	c, err := cache.New(cp.Config, cache.Options{Scheme: cp.Scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, fmt.Errorf("create the benchmark's cache: %w", err)
	}
	inf, err := c.GetInformer(ctx, &sluicev1beta1.Canary{})
	if err != nil {
		return nil, fmt.Errorf("get the Canary informer: %w", err)
	}
	seen := func(o any) {
		if canary, ok := o.(*sluicev1beta1.Canary); ok {
			t.seen(canary, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, o any) { seen(o) },
	}); err != nil {
		return nil, fmt.Errorf("watch Canaries: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("the benchmark's Canary informer did not sync")
	}
	return t, nil
}

// seen takes a Canary's status as the watch delivered it at now.
func (t *tracker) seen(c *sluicev1beta1.Canary, now time.Time) {
	k := client.ObjectKeyFromObject(c)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latest[k] = c
	if s := settled(c); s != t.settled[k] {
		t.settled[k] = s
		if s {
			t.nSettled++
		} else {
			t.nSettled--
		}
	}
	if t.doneAt.IsZero() && t.nSettled >= t.want {
		t.doneAt = now
		close(t.all)
	}
	waits := t.waits[k][:0]
	for _, w := range t.waits[k] {
		if w.match(c) {
			w.at = now
			close(w.done)
			continue
		}
		waits = append(waits, w)
	}
	t.waits[k] = waits
}

// count is how many Canaries are settled now.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nSettled
}

// get is the last status seen of a Canary, nil if none; read only.
func (t *tracker) get(k types.NamespacedName) *sluicev1beta1.Canary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.latest[k]
}

// await registers a status to wait for; one seen already counts at once.
func (t *tracker) await(k types.NamespacedName, match func(*sluicev1beta1.Canary) bool) *await {
	w := &await{match: match, done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.latest[k]; c != nil && match(c) {
		w.at = time.Now()
		close(w.done)
		return w
	}
	t.waits[k] = append(t.waits[k], w)
	return w
}

// allAt is when all the Canaries were first settled at once.
func (t *tracker) allAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.doneAt
}

// waitAll waits until all the Canaries are settled, calling report with
// the count every 30 s.
func (t *tracker) waitAll(ctx context.Context, op *binary.Operator, timeout time.Duration, report func(settled int)) error {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		select {
		case <-t.all:
			return nil
		case <-tick.C:
			report(t.count())
		case <-op.Exited():
			return fmt.Errorf("the operator exited with %d of %d Canaries settled: %w", t.count(), t.want, op.Err())
		case <-deadline:
			return fmt.Errorf("%d of %d Canaries Initialized and Ready after %s", t.count(), t.want, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
