// Package gitops tests the one hop from a Git commit to a canary release:
// the sync core applies the commit, the canary engine releases it, and the
// Kustomization is Ready only once the release is promoted.
package gitops

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}
