package build

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

// cp serves Variables' reads of ConfigMaps and Secrets; the build
// itself reads no cluster.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}
