// Package bootstrap tests `sluicectl bootstrap git` end to end: a real
// Git server, a real control plane whose kwok node runs the operator
// Deployment it installs, and the operator itself in process, so that
// the cluster then manages itself from the branch.
package bootstrap

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}
