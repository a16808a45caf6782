package kustomization

import (
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
)

// wait is what a Kustomization applied and still waits on: the health of
// its objects, or the Canaries of its workloads. It lives in memory; after
// a restart the next reconcile applies again (changing nothing) and waits
// afresh.
type wait struct {
	// generation, revision and requestedAt are what was applied: a new
	// spec, commit or reconcile request applies again.
	generation  int64
	revision    string
	requestedAt string
	// objs are the objects applied, for the Canary hand-off.
	objs []*unstructured.Unstructured
	// snapshot is the apply, for status.history.
	snapshot *snapshot
	// checks are the objects whose kstatus must be Current.
	checks object.ObjMetadataSet
	// health judges them, as the account that applied them.
	health *health.Checker
	// guard reads the Canaries of the cluster they were applied to.
	guard handoff.Guard
	// deadline ends the wait for kstatus health.
	deadline time.Time
	// polls counts the looks taken, for the backoff of nextPoll.
	polls int
}

// of reports whether w is the wait of ks at revision: nothing changed
// since the apply.
func (w *wait) of(ks *syncv1.Kustomization, revision string) bool {
	return w != nil && w.generation == ks.Generation && w.revision == revision &&
		w.requestedAt == ks.Annotations[sourcev1.ReconcileRequestAnnotation]
}

// firstPoll is the first look after an apply, when the cache is catching
// up with what was just written; each next look waits twice as long, up
// to healthPoll.
const firstPoll = 125 * time.Millisecond

// nextPoll is when to look again.
func (w *wait) nextPoll() time.Duration {
	d := healthPoll
	if w.polls < 8 {
		d = min(firstPoll<<w.polls, healthPoll)
	}
	w.polls++
	return d
}

// waits are the Kustomizations waiting, by name; the workload watches read
// them to wake only those.
type waits struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*wait
}

func (ws *waits) get(key types.NamespacedName) *wait {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.m[key]
}

func (ws *waits) put(key types.NamespacedName, w *wait) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[types.NamespacedName]*wait{}
	}
	ws.m[key] = w
}

func (ws *waits) drop(key types.NamespacedName) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.m, key)
}
