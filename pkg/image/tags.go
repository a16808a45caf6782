// Package image runs the image automation kinds of the embedded sync
// core: ImageRepository scans a registry's tags into a TagStore,
// ImagePolicy chooses the latest tag by a rule, and ImageUpdateAutomation
// writes the chosen tags into Git and, when a Canary rolls one back, writes
// the last promoted tag back.
package image

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// TagStore keeps the tags of each ImageRepository's last scan, by
// namespace and name. The tags live in memory only: a restarted operator
// scans again before its policies choose.
type TagStore struct {
	mu   sync.RWMutex
	tags map[types.NamespacedName][]string
}

// NewTagStore returns an empty TagStore.
func NewTagStore() *TagStore {
	return &TagStore{tags: map[types.NamespacedName][]string{}}
}

// Get returns a repository's tags and whether it was scanned. The slice
// is shared: callers must not change it.
func (s *TagStore) Get(key types.NamespacedName) ([]string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tags[key]
	return t, ok
}

func (s *TagStore) put(key types.NamespacedName, tags []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tags[key] = tags
}

func (s *TagStore) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tags, key)
}
