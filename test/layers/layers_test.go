// Package layers_test keeps the imports pointing one way: the leaves that
// the engine, the routers and the notification layer share import none of
// them, so each can change without dragging the others along.
package layers_test

import (
	"os/exec"
	"strings"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

func TestLeavesImportNoEngine(t *testing.T) {
	engine := []string{
		"sluice.dev/sluice/pkg/canary", "sluice.dev/sluice/pkg/operator", "sluice.dev/sluice/pkg/notify",
		"sluice.dev/sluice/pkg/analysis", "sluice.dev/sluice/router", "sluice.dev/sluice/metrics",
		"sluice.dev/sluice/pkg/sync", "sluice.dev/sluice/pkg/source", "sluice.dev/sluice/pkg/image",
	}
	tests := []struct {
		leaf string
		// may lists engine packages the leaf is allowed to reach.
		may []string
	}{
		{leaf: "./pkg/traffic"},
		{leaf: "./pkg/alert"},
		{leaf: "./pkg/workload"},
		{leaf: "./pkg/hook"},
		{leaf: "./pkg/canary/plan"},
		{leaf: "./api/..."},
		{leaf: "./pkg/analysis", may: []string{"sluice.dev/sluice/pkg/analysis", "sluice.dev/sluice/metrics"}},
		// pkg/sync/index reads dependencies' readyExpr through celexpr,
		// a leaf over cel-go that imports nothing of Sluice's.
		{leaf: "./pkg/notify", may: []string{"sluice.dev/sluice/pkg/notify", "sluice.dev/sluice/pkg/sync/status", "sluice.dev/sluice/pkg/sync/index", "sluice.dev/sluice/pkg/sync/celexpr"}},
		{leaf: "./pkg/sync/celexpr", may: []string{"sluice.dev/sluice/pkg/sync/celexpr"}},
		{leaf: "./router", may: []string{"sluice.dev/sluice/router"}},
	}
	for _, tt := range tests {
		t.Run(tt.leaf+" imports no engine package", func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", tt.leaf)
			cmd.Dir = controlplane.RepoRoot()
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list %s: %v", tt.leaf, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				if allowed(dep, tt.may) {
					continue
				}
				for _, e := range engine {
					if dep == e || strings.HasPrefix(dep, e+"/") {
						t.Errorf("%s imports %s", tt.leaf, dep)
					}
				}
			}
		})
	}
}

// allowed reports whether dep is in may, or is the canary plan: a pure
// leaf every layer may share.
func allowed(dep string, may []string) bool {
	for _, m := range append(may, "sluice.dev/sluice/pkg/canary/plan") {
		if dep == m || strings.HasPrefix(dep, m+"/") {
			return true
		}
	}
	return false
}
