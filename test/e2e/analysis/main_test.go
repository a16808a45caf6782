// Package analysis tests metric analysis end to end: the operator on a real
// control plane decides releases from a real Prometheus that scrapes an
// exporter whose error rate and latency each test controls.
package analysis

import (
	"os"
	"path/filepath"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// The Keptn metrics operator's CRDs, for the keptn provider: pinned
	// copies naming their source.
	keptn := filepath.Join(controlplane.RepoRoot(), "test", "fixtures", "crds", "keptn")
	os.Exit(controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: []string{controlplane.SluiceCRDs(), keptn}}, &cp))
}
