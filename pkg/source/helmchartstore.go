package source

import (
	"sync"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"k8s.io/apimachinery/pkg/types"
)

// StoredChart is the chart a HelmChart last loaded, ready for Helm.
type StoredChart struct {
	// Chart is the loaded chart, with spec.valuesFiles merged into its
	// Values. It is shared: readers must not change it.
	Chart *chart.Chart
	// Revision is the chart's version or, for a chart from a
	// GitRepository under reconcileStrategy Revision,
	// <version>+<first 12 hex of the commit>; the chart's own
	// Metadata.Version says the same.
	Revision string
	// Digest is sha256:<hex> of the chart archive (HelmRepository) or of
	// the chart's files (GitRepository), and of the merged values when
	// spec.valuesFiles is set: it changes with the content even when
	// Revision does not.
	Digest string
	// OCIDigest is the manifest digest (sha256:<hex>) of the OCI artifact
	// the chart came from, for a chart an OCIRepository holds; empty
	// otherwise.
	OCIDigest string
}

// ChartStore keeps the last chart of each HelmChart, by namespace and
// name.
type ChartStore struct {
	mu     sync.RWMutex
	charts map[types.NamespacedName]*StoredChart
}

// NewChartStore returns an empty ChartStore.
func NewChartStore() *ChartStore {
	return &ChartStore{charts: map[types.NamespacedName]*StoredChart{}}
}

// Get returns a HelmChart's chart, if one was loaded.
func (s *ChartStore) Get(key types.NamespacedName) (*StoredChart, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.charts[key]
	return c, ok
}

func (s *ChartStore) put(key types.NamespacedName, c *StoredChart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.charts[key] = c
}

func (s *ChartStore) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.charts, key)
}
