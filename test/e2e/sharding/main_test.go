// Package sharding runs several operator replicas, each owning the
// objects of its shard, on one real control plane: each reconciles only
// its own Canaries and sync objects, each holds its own lease at the same
// time, and sluicectl check names the objects of a shard that does not
// run.
package sharding

import (
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}
