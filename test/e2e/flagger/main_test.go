// Package flagger is the Flagger conformance suite: the scenarios of
// Flagger's own end-to-end tests (fluxcd/flagger test/kubernetes,
// test/gatewayapi, test/keda, test/istio), rewritten as Go tests against
// Sluice. Each scenario applies manifests written as Flagger documents
// them, from test/fixtures/flagger/conformance, after changing only their
// apiVersion from flagger.app/v1beta1 to sluice.dev/v1beta1, and drives
// releases as a Flagger user does: by changing a workload's image, a
// ConfigMap or a Secret, and by opening and closing flagger-loadtester's
// gates. The assertions are Flagger's documented behaviour.
package flagger

import (
	"fmt"
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The Gateway API's CRDs for provider gatewayapi:v1 and KEDA's
	// ScaledObject for autoscalerRef; no gateway or KEDA runs: the tests
	// read the objects Sluice writes.
	gatewayAPI, err := controlplane.GatewayAPICRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keda, err := controlplane.KEDACRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	crds := append(append([]string{controlplane.SluiceCRDs()}, gatewayAPI...), keda...)
	return controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: crds}, &cp)
}
