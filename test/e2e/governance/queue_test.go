package governance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/governance"
	"sluice.dev/sluice/test/controlplane"
)

// observer follows the Canaries of a namespace through a watch, in the
// order the API server stored their changes: how many held a slot at
// once, in which order they started, and what their queue said.
type observer struct {
	mu      sync.Mutex
	phases  map[string]sluicev1beta1.CanaryPhase
	most    int
	started []string
	queued  map[string][]string
}

func observe(t *testing.T, ns string) *observer {
	t.Helper()
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &sluicev1beta1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	o := &observer{phases: map[string]sluicev1beta1.CanaryPhase{}, queued: map[string][]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.ResultChan() {
			c, ok := e.Object.(*sluicev1beta1.Canary)
			if !ok || e.Type == watch.Error {
				continue
			}
			o.see(c)
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
	return o
}

func (o *observer) see(c *sluicev1beta1.Canary) {
	o.mu.Lock()
	defer o.mu.Unlock()
	before := o.phases[c.Name]
	o.phases[c.Name] = c.Status.Phase
	if c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing && before != sluicev1beta1.CanaryPhaseProgressing {
		o.started = append(o.started, c.Name)
	}
	running := 0
	for _, p := range o.phases {
		if governance.Occupies(p) {
			running++
		}
	}
	o.most = max(o.most, running)
	if r := ready(c); r.Reason == sluicev1beta1.ReasonQueued {
		if msgs := o.queued[c.Name]; len(msgs) == 0 || msgs[len(msgs)-1] != r.Message {
			o.queued[c.Name] = append(msgs, r.Message)
		}
	}
}

func (o *observer) report() (most int, started []string, queued map[string][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.most, slices.Clone(o.started), o.queued
}

func TestFiveCanariesUnderALimitOfTwoStartInArrivalOrderNeverMoreThanTwoAtOnce(t *testing.T) {
	ns := namespace(t, "queue")
	names := []string{"app-0", "app-1", "app-2", "app-3", "app-4"}
	for _, name := range names {
		app(t, ns, name, nil)
	}
	policy(t, "two-at-a-time", ns, sluicev1beta1.ReleasePolicySpec{MaxConcurrentCanaries: ptr.To[int32](2)})
	operator(t, ns)
	for _, name := range names {
		waitCanary(t, ns, name, "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))
	}

	o := observe(t, ns)
	for _, name := range names {
		release(t, ns, name, "app:2")
	}

	t.Run("while three wait, the policy's status shows two running and its queue in order", func(t *testing.T) {
		controlplane.Eventually(t, 20*time.Second, "the policy's queue", func(ctx context.Context) (bool, string) {
			rp := &sluicev1beta1.ReleasePolicy{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: "two-at-a-time"}, rp); err != nil {
				return false, err.Error()
			}
			s := rp.Status
			ordered := slices.IsSortedFunc(s.Queue, func(a, b sluicev1beta1.QueuedCanary) int { return a.ArrivedAt.Compare(b.ArrivedAt.Time) })
			return s.Running == 2 && s.Queued == 3 && len(s.Queue) == 3 && ordered, fmt.Sprintf("%+v", s)
		})
	})
	for _, name := range names {
		waitCanary(t, ns, name, "promoted app:2", 5*time.Minute, func(c *sluicev1beta1.Canary) bool {
			return c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded && c.Status.Admission != nil
		})
		if image := primaryImage(t, ns, name); image != "app:2" {
			t.Fatalf("%s: primary runs %s, want app:2", name, image)
		}
	}
	most, started, queued := o.report()

	t.Run("never more than two hold a slot at once, and two did", func(t *testing.T) {
		if most != 2 {
			t.Fatalf("at most %d Canaries held a slot at once, want 2", most)
		}
	})

	// A release starts when it is admitted: admissions are decided one at
	// a time and recorded to the microsecond. Two Canaries admitted in
	// the same instant, when two slots free at once, may write their
	// Progressing status in either order; their admissions may not.
	t.Run("they start in the order they arrived", func(t *testing.T) {
		type record struct {
			name              string
			arrived, admitted time.Time
		}
		var records []record
		for _, name := range names {
			a := canary(t, ns, name).Status.Admission
			if a.AdmittedAt == nil {
				t.Fatalf("%s: admission %+v has no admission time", name, a)
			}
			records = append(records, record{name, a.ArrivedAt.Time, a.AdmittedAt.Time})
		}
		order := func(at func(record) time.Time) []string {
			sorted := slices.Clone(records)
			slices.SortStableFunc(sorted, func(a, b record) int {
				if c := at(a).Compare(at(b)); c != 0 {
					return c
				}
				return strings.Compare(a.name, b.name)
			})
			var names []string
			for _, r := range sorted {
				names = append(names, r.name)
			}
			return names
		}
		arrived, admitted := order(func(r record) time.Time { return r.arrived }), order(func(r record) time.Time { return r.admitted })
		if !slices.Equal(arrived, admitted) {
			t.Fatalf("admitted %v, arrived %v (%+v)", admitted, arrived, records)
		}
		if slices.Sort(started); !slices.Equal(started, names) {
			t.Fatalf("the watch saw %v start, want each of %v once", started, names)
		}
	})

	t.Run("the three that waited said in which policy and where in the queue", func(t *testing.T) {
		if len(queued) != 3 {
			t.Fatalf("%d Canaries queued, want 3: %v", len(queued), queued)
		}
		var first []string
		for name, msgs := range queued {
			for _, m := range msgs {
				if !strings.Contains(m, "waits for a slot in ReleasePolicy two-at-a-time: ") || !strings.Contains(m, " of 2 running, ") || !strings.Contains(m, " in the queue") {
					t.Errorf("%s said %q", name, m)
				}
			}
			first = append(first, msgs[0])
		}
		var places []string
		for _, m := range first {
			places = append(places, m[strings.LastIndex(m, ", ")+2:])
		}
		slices.Sort(places)
		if want := []string{"1st in the queue", "2nd in the queue", "3rd in the queue"}; !slices.Equal(places, want) {
			t.Errorf("first places %v, want %v", places, want)
		}
	})

	t.Run("the policy's status shows nothing running or queued once all are done", func(t *testing.T) {
		controlplane.Eventually(t, 30*time.Second, "the policy's counts", func(ctx context.Context) (bool, string) {
			rp := &sluicev1beta1.ReleasePolicy{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: "two-at-a-time"}, rp); err != nil {
				return false, err.Error()
			}
			s := rp.Status
			return s.Running == 0 && s.Queued == 0 && len(s.Queue) == 0 && s.ObservedGeneration == rp.Generation,
				fmt.Sprintf("%+v", s)
		})
	})
}
