package helmrelease

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"sluice.dev/sluice/test/helmrepo"
)

// markingPostRenderer labels every object it is given and counts its
// runs, to show which objects reach the post-renderers.
type markingPostRenderer struct{ runs int }

func (m *markingPostRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	m.runs++
	out := strings.ReplaceAll(in.String(), "\nmetadata:\n", "\nmetadata:\n  labels: {post-rendered: \"yes\"}\n")
	return bytes.NewBufferString(out), nil
}

const preInstallHook = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: pre-install
data: {}
`

// TestPostRenderStrategyDecidesWhetherTheHooksArePostRendered installs,
// with Helm's SDK over a client that prints instead of applying, a chart
// with a hook, and reads what Helm stored: the hooks reach the
// post-renderers with the other templates (combined, the default), in a
// run of their own (separate), or not at all (nohooks).
func TestPostRenderStrategyDecidesWhetherTheHooksArePostRendered(t *testing.T) {
	tests := []struct {
		name         string
		strategy     string
		hookRendered bool
		runs         int
	}{
		{"unset is combined: one run for the hooks and the templates", "", true, 1},
		{"combined post-renders the hooks with the templates", "combined", true, 1},
		{"separate post-renders the hooks in a run of their own", "separate", true, 2},
		{"nohooks leaves the hooks as the chart renders them", "nohooks", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := action.NewConfiguration()
			cfg.Releases = storage.Init(driver.NewMemory())
			cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
			cfg.Capabilities = chartcommon.DefaultCapabilities
			r := &runner{cfg: cfg, name: "web", namespace: "apps"}
			post := &markingPostRenderer{}
			ch := helmrepo.NewChart("app", "1.0.0", map[string]string{"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata: {}\n", "hook.yaml": preInstallHook}, nil)
			got, err := r.newInstall(actionOptions{post: post, postRenderStrategy: tt.strategy, disableWait: true}).RunWithContext(t.Context(), ch, nil)
			if err != nil {
				t.Fatal(err)
			}
			rel, err := asRelease(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(rel.Hooks) != 1 {
				t.Fatalf("%d hooks, want the pre-install one", len(rel.Hooks))
			}
			if marked := strings.Contains(rel.Hooks[0].Manifest, "post-rendered"); marked != tt.hookRendered {
				t.Errorf("the hook post-rendered: %v, want %v:\n%s", marked, tt.hookRendered, rel.Hooks[0].Manifest)
			}
			if !strings.Contains(rel.Manifest, "post-rendered") {
				t.Errorf("the templates were not post-rendered:\n%s", rel.Manifest)
			}
			if post.runs != tt.runs {
				t.Errorf("the post-renderers ran %d times, want %d", post.runs, tt.runs)
			}
		})
	}
}

// TestServerSideApplyAutoFollowsHowTheReleaseWasApplied: auto, the
// default of upgrade.serverSideApply and rollback.serverSideApply, is
// Helm's record of the revision; enabled and disabled override it.
func TestServerSideApplyAutoFollowsHowTheReleaseWasApplied(t *testing.T) {
	ssa, csa := string(releasev1.ApplyMethodServerSideApply), string(releasev1.ApplyMethodClientSideApply)
	tests := []struct {
		name, mode, method string
		want               bool
	}{
		{"unset follows a server-side release", "", ssa, true},
		{"auto follows a server-side release", "auto", ssa, true},
		{"auto follows a client-side release", "auto", csa, false},
		{"auto applies a release recorded before Helm 4 client-side", "auto", "", false},
		{"enabled applies server-side whatever the release did", "enabled", csa, true},
		{"disabled applies client-side whatever the release did", "disabled", ssa, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverSideApply(tt.mode, tt.method); got != tt.want {
				t.Fatalf("serverSideApply(%q, %q) = %v, want %v", tt.mode, tt.method, got, tt.want)
			}
		})
	}
}
