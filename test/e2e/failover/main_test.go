// Package failover runs two replicas of the sluice binary with leader
// election on a real control plane, kills the leader in the middle of a
// weighted canary release, and checks that the standby takes the lease and
// finishes the release with no step skipped or run twice.
package failover

import (
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// The recorder's informers log through controller-runtime.
	ctrllog.SetLogger(logr.Discard())
	gateway, err := controlplane.GatewayAPICRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, gateway...)}, &cp))
}
