// Package validation sends the API server specs that Sluice's CRDs must
// refuse, as a Flagger or Flux user would write them by mistake, and
// checks that each is refused naming the field to fix.
package validation

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}
