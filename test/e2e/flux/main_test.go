// Package flux holds Sluice to Flux's APIs: the field table in
// docs/flux-fields.md must name every field of Flux's CRDs, each supported
// field must exist in Sluice's CRDs, and manifests written in Flux's groups
// (the examples of Flux's own spec documents, and manifests that use every
// supported field) must be accepted by the API server with only the group
// changed and strict field validation.
package flux

import (
	"fmt"
	"os"
	"testing"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/fluxapi"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// Flux's own CRDs are installed beside Sluice's, so that each example
	// is first put to Flux's API server: one Flux refuses, such as a
	// fragment of a document, holds Sluice to nothing.
	flux, err := fluxapi.CRDFiles()
	if err != nil {
		fmt.Fprintf(os.Stderr, "read Flux's CRDs: %v\n", err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true, CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, flux...)}, &cp))
}
