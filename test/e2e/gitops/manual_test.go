package gitops

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

// hook is a webhook that answers 200 while it passes and 403 otherwise.
type hook struct {
	*httptest.Server
	passing atomic.Bool
}

func newHook(t *testing.T, passing bool) *hook {
	h := &hook{}
	h.passing.Store(passing)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !h.passing.Load() {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// manual is a namespace whose podinfo Deployment and Canary come from Git
// through a Kustomization, with its own operator, for driving a release
// by hand with sluicectl.
type manual struct {
	*fixture.Namespace
	git *gitserver.Server
}

// newManual applies podinfo:1 with a blue/green Canary whose analysis
// holds the given YAML lines (webhooks may use ${LOAD} and ${GATE}), waits
// for its initialization, then commits podinfo:2.
func newManual(t *testing.T, name, analysis string, load, gate *hook) *manual {
	t.Helper()
	m := &manual{Namespace: &fixture.Namespace{T: t, Client: cp.Client, Name: name}, git: gitserver.New(t)}
	canary := `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 10s
    threshold: 1
` + analysis
	m.git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:1"), "app/canary.yaml": canary})
	secret, repo := m.git.Source(name, "repo", time.Second)
	m.Create(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
		secret, repo,
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: name}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      "app", Prune: true, TargetNamespace: name, Interval: metav1.Duration{Duration: time.Hour},
			PostBuild: &syncv1.PostBuild{Substitute: map[string]string{"LOAD": load.URL, "GATE": gate.URL}},
		}},
	)
	inprocess.Start(t, cp.Config, name, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	controlplane.Eventually(t, 2*time.Minute, "the Canary applied from Git", func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: name, Name: fixture.Name}, &sluicev1beta1.Canary{})
		return err == nil, fmt.Sprint(err)
	})
	m.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
	m.git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:2")})
	return m
}

// sluicectl runs the CLI in the namespace and returns what it printed and
// its exit code.
func (m *manual) sluicectl(args ...string) (string, int) {
	m.T.Helper()
	var out bytes.Buffer
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &out})
	root.SetArgs(append([]string{"--kubeconfig", cp.Kubeconfig, "-n", m.Name}, args...))
	err := root.ExecuteContext(m.T.Context())
	if err != nil {
		fmt.Fprintln(&out, err)
	}
	m.T.Logf("sluicectl %s:\n%s", strings.Join(args, " "), out.String())
	return out.String(), cli.ExitCode(err)
}

// mustRun runs sluicectl and fails the test unless it exits 0 and says
// want.
func (m *manual) mustRun(want string, args ...string) {
	m.T.Helper()
	out, code := m.sluicectl(args...)
	if code != 0 || !strings.Contains(out, want) {
		m.T.Fatalf("sluicectl %s: exit %d, want 0 and %q in:\n%s", strings.Join(args, " "), code, want, out)
	}
}

// resync makes the sync core apply the same Git revision again, as its
// interval or a webhook would.
func (m *manual) resync() {
	m.T.Helper()
	out, _ := m.sluicectl("reconcile", "kustomization", "app")
	if !strings.Contains(out, "reconciled") {
		m.T.Fatalf("the Kustomization was not reconciled:\n%s", out)
	}
	c := m.Canary()
	if _, ok := c.Annotations[sluicev1beta1.RequestAnnotation]; !ok {
		m.T.Fatalf("the re-apply removed the request annotation: %v", c.Annotations)
	}
}

// requested checks that the last request was accepted and that an Event
// names who asked.
func (m *manual) requested(reason string) {
	m.T.Helper()
	r := m.Canary().Status.LastRequest
	if r == nil || r.Outcome != sluicev1beta1.RequestAccepted || r.By == "" {
		m.T.Fatalf("lastRequest %+v, want accepted and named", r)
	}
	controlplane.Eventually(m.T, 30*time.Second, "a "+reason+" event naming "+r.By, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(m.Name)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == reason && strings.Contains(e.Note, r.By) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, "\n")
	})
}

func (m *manual) targetGeneration() int64 {
	m.T.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(m.T.Context(), client.ObjectKey{Namespace: m.Name, Name: fixture.Name}, d); err != nil {
		m.T.Fatal(err)
	}
	return d.Generation
}

const gated = `    iterations: 1
    webhooks:
    - {name: load, type: rollout, url: "${LOAD}"}
    - {name: approval, type: confirm-promotion, url: "${GATE}"}
`

const long = `    iterations: 20
    webhooks: [{name: load, type: rollout, url: "${LOAD}"}]
`

func TestManualControls(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{"promote at a confirm-promotion gate promotes", func(t *testing.T, ns string) {
			m := newManual(t, ns, gated, newHook(t, true), newHook(t, false))
			m.WaitPhase(sluicev1beta1.CanaryPhaseWaitingPromotion, 2*time.Minute)
			m.mustRun("approved by", "promote", "podinfo")
			m.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, time.Minute)
			m.requested("PromoteRequested")
			m.resync()
			if c := m.Canary(); c.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded || m.PrimaryImage() != "podinfo:2" {
				t.Fatalf("after the re-apply: %s with primary %s", c.Status.Phase, m.PrimaryImage())
			}
		}},
		{"promote --full mid-analysis skips the remaining steps", func(t *testing.T, ns string) {
			m := newManual(t, ns, long, newHook(t, true), newHook(t, true))
			m.WaitFor("the first iteration", 2*time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })
			m.mustRun("Full promotion", "promote", "podinfo", "--full")
			c := m.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, time.Minute)
			m.requested("PromoteRequested")
			if m.PrimaryImage() != "podinfo:2" {
				t.Fatalf("primary runs %s", m.PrimaryImage())
			}
			m.resync()
			if after := m.Canary(); after.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded || after.Status.LastPromotedSpec != c.Status.LastPromotedSpec {
				t.Fatalf("after the re-apply: %s, promoted %s", after.Status.Phase, after.Status.LastPromotedSpec)
			}
		}},
		{"abort mid-analysis rolls back and stays rolled back", func(t *testing.T, ns string) {
			m := newManual(t, ns, long, newHook(t, true), newHook(t, true))
			m.WaitFor("the first iteration", 2*time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })
			m.mustRun("Abort", "abort", "podinfo")
			c := m.WaitPhase(sluicev1beta1.CanaryPhaseFailed, time.Minute)
			m.requested("AbortRequested")
			if m.PrimaryImage() != "podinfo:1" {
				t.Fatalf("primary runs %s after the abort", m.PrimaryImage())
			}
			m.resync()
			time.Sleep(12 * time.Second) // more than an interval: a restarted rollout would show
			if after := m.Canary(); after.Status.Phase != sluicev1beta1.CanaryPhaseFailed || after.Status.LastTransitionTime != c.Status.LastTransitionTime {
				t.Fatalf("after the re-apply the Canary is %s since %s, want Failed since %s", after.Status.Phase, after.Status.LastTransitionTime, c.Status.LastTransitionTime)
			}
			out, code := m.sluicectl("abort", "podinfo")
			if code != cli.ExitFailure || !strings.Contains(out, "nothing to abort") {
				t.Fatalf("a second abort: exit %d:\n%s", code, out)
			}
		}},
		{"retry after a failure analyses the same revision again", func(t *testing.T, ns string) {
			load := newHook(t, false)
			m := newManual(t, ns, `    iterations: 1
    webhooks: [{name: load, type: rollout, url: "${LOAD}"}]
`, load, newHook(t, true))
			m.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
			generation := m.targetGeneration()
			load.passing.Store(true)
			m.mustRun("Retry", "retry", "podinfo")
			m.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
			m.requested("RetryRequested")
			if m.PrimaryImage() != "podinfo:2" {
				t.Fatalf("primary runs %s after the retry", m.PrimaryImage())
			}
			// Scaling is the engine's; the pod template is untouched.
			if got := m.targetGeneration(); got-generation > 2 {
				t.Fatalf("the Deployment went from generation %d to %d", generation, got)
			}
			m.resync()
			if c := m.Canary(); c.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded {
				t.Fatalf("after the re-apply: %s", c.Status.Phase)
			}
		}},
		{"pause holds the analysis until resume", func(t *testing.T, ns string) {
			m := newManual(t, ns, `    iterations: 3
    webhooks: [{name: load, type: rollout, url: "${LOAD}"}]
`, newHook(t, true), newHook(t, true))
			m.WaitFor("the first iteration", 2*time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })
			m.mustRun("Paused", "pause", "canary", "podinfo")
			held := m.Canary().Status
			m.requested("Paused")
			m.resync()
			time.Sleep(25 * time.Second) // two intervals
			c := m.Canary()
			if c.Status.Iterations != held.Iterations || c.Status.Phase != sluicev1beta1.CanaryPhaseProgressing || c.Status.Paused == nil {
				t.Fatalf("while paused: %s at iteration %d (held at %d), paused %+v", c.Status.Phase, c.Status.Iterations, held.Iterations, c.Status.Paused)
			}
			m.mustRun("Progressing (paused)", "get", "canaries")
			m.mustRun("Resumed", "resume", "canary", "podinfo")
			m.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
			m.requested("Resumed")
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, fmt.Sprintf("manual-%d", i))
		})
	}
}
