package cli_test

import (
	"os/exec"
	"strings"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

// TestTheCLILinksNoControllers keeps sluicectl small: it reads and
// writes the API, and leaves the work to the operator.
func TestTheCLILinksNoControllers(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/sluicectl")
	cmd.Dir = controlplane.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{
		"sluice.dev/sluice/pkg/operator", "sluice.dev/sluice/pkg/canary", "sluice.dev/sluice/pkg/source",
		"sluice.dev/sluice/pkg/sync/kustomization", "sluice.dev/sluice/pkg/sync/helmrelease", "sluice.dev/sluice/pkg/image",
		"sluice.dev/sluice/router", "sluice.dev/sluice/metrics", "helm.sh/helm/v4/pkg/action",
		"github.com/aws/aws-sdk-go-v2", "github.com/DataDog/datadog-api-client-go/v2",
	} {
		for _, d := range deps {
			// The plan of a release, OCI packing and Git clone, commit
			// and push (bootstrap) are leaves the CLI shares with the
			// operator.
			if d == banned || strings.HasPrefix(d, banned+"/") && !strings.HasPrefix(d, "sluice.dev/sluice/pkg/canary/plan") && d != "sluice.dev/sluice/pkg/source/oci" && d != "sluice.dev/sluice/pkg/source/git" {
				t.Errorf("sluicectl links %s", d)
			}
		}
	}
}
