// Package analysis tests metric analysis end to end: the operator on a real
// control plane decides releases from a real Prometheus that scrapes an
// exporter whose error rate and latency each test controls.
package analysis

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}
