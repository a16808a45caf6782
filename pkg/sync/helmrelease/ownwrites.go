package helmrelease

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// cacheLagPoll is how soon a HelmRelease read from a cache that has not
// caught up with the reconcile's own last write is looked at again.
const cacheLagPoll = 100 * time.Millisecond

// cacheLagLimit is how long a cache that has not caught up is waited
// for, as Flux waits for its own: past it, the object is acted on as read.
const cacheLagLimit = 10 * time.Second

// ownWrites remembers, for each HelmRelease, the resourceVersion it had
// when a reconcile read it and then wrote to it (a finalizer, its
// status). The cache serves the next reconcile; should it still hold
// that version, the counters, the history and the handled requests it
// shows are from before the write, and acting on them would count a
// failure twice or handle a forceAt request again. Such a reconcile
// waits for the cache instead.
type ownWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]ownWrite
}

// ownWrite is the resourceVersion an object had before a reconcile wrote
// to it, and when.
type ownWrite struct {
	before string
	at     time.Time
}

// wrote records that a reconcile read key at resourceVersion before and
// left it at after; nothing when it wrote nothing.
func (w *ownWrites) wrote(key types.NamespacedName, before, after string, now time.Time) {
	if before == after || before == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]ownWrite{}
	}
	w.m[key] = ownWrite{before: before, at: now}
}

// stale tells whether key read at resourceVersion is from before the
// last write of a reconcile, no longer ago than cacheLagLimit. A newer
// version, or an old write, is forgotten.
func (w *ownWrites) stale(key types.NamespacedName, resourceVersion string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.m[key]
	if !ok {
		return false
	}
	if last.before == resourceVersion && now.Sub(last.at) < cacheLagLimit {
		return true
	}
	delete(w.m, key)
	return false
}

// forget drops what is kept of a deleted object.
func (w *ownWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
