// Package syncbench measures the sync core at scale on a real control
// plane: a thousand Kustomizations, hundreds of HelmReleases. Run with
// `make bench`. Its control plane's controllers may send 200 requests a
// second, so that the Deployments it applies are reported Available as a
// control plane sized for them would, rather than at 20 a second.
package syncbench

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		// `go test ./...` without -bench: nothing here runs.
		os.Exit(m.Run())
	}
	ctrl.SetLogger(inprocess.ErrorLogger())
	qps := 200
	if v := os.Getenv(controllerQPSEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "%s=%q is not a rate\n", controllerQPSEnv, v)
			os.Exit(2)
		}
		qps = n
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{ControllerQPS: qps}, &cp))
}

// controllerQPSEnv overrides the controllers' rate: 0 is
// kube-controller-manager's own default.
const controllerQPSEnv = "SLUICE_BENCH_CONTROLLER_QPS"
