package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// scriptedWatches answers each Watch with a watch the test drives, and
// records the resource version each one started from.
type scriptedWatches struct {
	client.WithWatch
	mu       sync.Mutex
	versions []string
	watches  chan *watch.FakeWatcher
}

func (s *scriptedWatches) Watch(_ context.Context, _ client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
	o := client.ListOptions{}
	o.ApplyOptions(opts)
	s.mu.Lock()
	s.versions = append(s.versions, o.Raw.ResourceVersion)
	s.mu.Unlock()
	w := watch.NewFake()
	s.watches <- w
	return w, nil
}

func (s *scriptedWatches) started() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.versions)
}

func TestAnExpiredWatchIsListedAgainAndAClosedOneResumes(t *testing.T) {
	h := newTestHandler(t)
	watches := &scriptedWatches{WithWatch: h.c, watches: make(chan *watch.FakeWatcher, 1)}
	h.c = watches
	stream, err := startStream(httptest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	relists := 0
	wt := &watcher{
		h:       h,
		newList: func() client.ObjectList { return &sluicev1beta1.CanaryList{} },
		relist: func(context.Context) (string, error) {
			relists++
			return "200", nil
		},
		changed: func(_ context.Context, typ watch.EventType, obj client.Object) error {
			changed = append(changed, string(typ)+" "+obj.GetResourceVersion())
			return nil
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- wt.run(ctx, stream, "100") }()

	next := func() *watch.FakeWatcher {
		select {
		case w := <-watches.watches:
			return w
		case <-time.After(10 * time.Second):
			t.Fatalf("no watch started; started from %v", watches.started())
			return nil
		}
	}
	// The page's version is watched from, and changes go through.
	w := next()
	w.Modify(&sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "cart", ResourceVersion: "105"}})
	// The API server says the version expired: the state is listed
	// again and watched from the list's version.
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 100"})
	w = next()
	// The API server closes a watch at its timeout: it resumes from the
	// last version seen, with no list.
	w.Modify(&sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "cart", ResourceVersion: "210"}})
	w.Stop()
	next()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the watch ended with %v", err)
	}
	if got, want := watches.started(), []string{"100", "200", "210"}; !slices.Equal(got, want) {
		t.Errorf("watches started from %v, want %v", got, want)
	}
	if relists != 1 || !slices.Equal(changed, []string{"MODIFIED 105", "MODIFIED 210"}) {
		t.Errorf("%d lists and changes %v, want 1 list and the two changes", relists, changed)
	}
}
