// Package notifybench measures the notification layer on a real control
// plane: Events through an Alert to a Provider, delivered to a loopback
// service. The Dispatcher runs in the benchmark's process, with the same
// cache the operator reads through. Run with `make bench`.
package notifybench

import (
	"flag"
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		// `go test ./...` without -bench: nothing here runs.
		os.Exit(m.Run())
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}
