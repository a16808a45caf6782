// Package imagebench measures image automation on a real control plane,
// with the sluice binary out of process: the time from a new tag to its
// commit in Git, and the memory of scanning many large repositories. Run
// with `make bench`.
package imagebench

import (
	"flag"
	"os"
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
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}
