package index

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

// cp serves the reads of dependencies.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}
