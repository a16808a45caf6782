package helmrelease

import (
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestAHelmReleaseReadBeforeItsOwnLastWriteWaitsForTheCache: a reconcile
// that wrote to a HelmRelease leaves the resourceVersion it read; the
// next one, served that version by a cache that has not caught up, waits
// (for at most cacheLagLimit) instead of acting on counters and handled
// requests from before the write.
func TestAHelmReleaseReadBeforeItsOwnLastWriteWaitsForTheCache(t *testing.T) {
	key := types.NamespacedName{Namespace: "apps", Name: "web"}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		write func(*ownWrites)
		read  string
		after time.Duration
		stale bool
	}{
		{"a HelmRelease never written to is fresh", func(*ownWrites) {}, "1", 0, false},
		{"the version read before the write is stale", func(w *ownWrites) { w.wrote(key, "1", "2", now) }, "1", 0, true},
		{"the version the write made is fresh", func(w *ownWrites) { w.wrote(key, "1", "2", now) }, "2", 0, false},
		{"a later version, someone else's write, is fresh", func(w *ownWrites) { w.wrote(key, "1", "2", now) }, "3", 0, false},
		{"a reconcile that wrote nothing leaves nothing to wait for", func(w *ownWrites) { w.wrote(key, "1", "1", now) }, "1", 0, false},
		{"a cache that never catches up is waited for no longer than the limit", func(w *ownWrites) { w.wrote(key, "1", "2", now) }, "1", cacheLagLimit, false},
		{"a deleted HelmRelease is forgotten", func(w *ownWrites) { w.wrote(key, "1", "2", now); w.forget(key) }, "1", 0, false},
		{"another HelmRelease's write does not count", func(w *ownWrites) {
			w.wrote(types.NamespacedName{Namespace: "apps", Name: "db"}, "1", "2", now)
		}, "1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ownWrites
			tt.write(&w)
			if got := w.stale(key, tt.read, now.Add(tt.after)); got != tt.stale {
				t.Fatalf("stale = %v, want %v", got, tt.stale)
			}
		})
	}
}

func TestOwnWritesServeConcurrentReconciles(t *testing.T) {
	var w ownWrites
	var wg sync.WaitGroup
	now := time.Now()
	for i := range 16 {
		wg.Go(func() {
			key := types.NamespacedName{Namespace: "apps", Name: string(rune('a' + i))}
			w.wrote(key, "1", "2", now)
			if !w.stale(key, "1", now) || w.stale(key, "2", now) {
				t.Errorf("%s: the write was not remembered as its own", key)
			}
			w.forget(key)
		})
	}
	wg.Wait()
}
