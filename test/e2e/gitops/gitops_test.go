package gitops

import (
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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

const ns = "gitops"

func deployment(image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo}
spec:
  replicas: 2
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers:
      - name: app
        image: ` + image + `
        ports: [{name: http, containerPort: 9898}]
        envFrom: [{configMapRef: {name: podinfo-settings, optional: true}}]
`
}

// settings is the ConfigMap the app reads: a tracked config, so that a
// commit changing only it is a new revision.
func settings(mode string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: podinfo-settings}\ndata: {MODE: " + mode + "}\n"
}

const canary = `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 10s
    iterations: 1
    threshold: 1
    webhooks: [{name: load, type: rollout, url: "${HOOK}"}]
`

func TestACommitIsReleasedByTheCanaryAndTheKustomizationWaitsForIt(t *testing.T) {
	var failing atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	s := gitserver.New(t)
	s.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:1"), "app/canary.yaml": canary, "app/settings.yaml": settings("fast")})
	secret, repo := s.Source(ns, "repo", time.Second)
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		secret, repo,
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      "app", Prune: true, TargetNamespace: ns, Interval: metav1.Duration{Duration: time.Hour},
			PostBuild: &syncv1.PostBuild{Substitute: map[string]string{"HOOK": hook.URL}},
			// Everything else applied must be healthy too, judged beside
			// the Canary.
			Wait: true,
		}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

	// The first commit initializes the Canary; the Kustomization is Ready.
	waitKustomization(t, "the first commit applied and initialized", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ready(ks) == metav1.ConditionTrue && c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized
	})

	// A new image: the Kustomization is not Ready until the promotion.
	good := s.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:2")})
	sawProgressing := false
	waitKustomization(t, "podinfo:2 promoted", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		if ks.Status.LastAppliedRevision == "main@sha1:"+good && ready(ks) == metav1.ConditionUnknown {
			sawProgressing = true
		}
		if ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+good && c.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded {
			t.Fatalf("the Kustomization is Ready while the Canary is %s", c.Status.Phase)
		}
		return ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+good
	})
	if !sawProgressing {
		t.Error("the Kustomization never reported the release in progress")
	}
	if img := primaryImage(t); img != "podinfo:2" {
		t.Fatalf("primary runs %s", img)
	}
	// The sync core does not fight the engine: a new commit leaves the
	// target at zero replicas where the engine put it.
	noop := s.Commit(map[string]string{"README.md": "docs\n"})
	waitKustomization(t, "a commit with no change to the app", func(ks *syncv1.Kustomization, _ *sluicev1beta1.Canary) bool {
		return ks.Status.LastAppliedRevision == "main@sha1:"+noop && ready(ks) == metav1.ConditionTrue
	})
	target := &appsv1.Deployment{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, target); err != nil || *target.Spec.Replicas != 0 {
		t.Fatalf("the sync core scaled the canary target back up: %v %v", target.Spec.Replicas, err)
	}

	// A commit that changes only the tracked ConfigMap is a new revision:
	// the Kustomization is Ready only once the Canary has released it.
	var before string
	waitKustomization(t, "the Canary's revision before the config commit", func(_ *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		before = c.Status.LastPromotedSpec
		return before != ""
	})
	config := s.Commit(map[string]string{"app/settings.yaml": settings("safe")})
	sawProgressing = false
	promoted := waitKustomization(t, "the config-only commit promoted", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		if ks.Status.LastAppliedRevision != "main@sha1:"+config {
			return false
		}
		switch ready(ks) {
		case metav1.ConditionUnknown:
			sawProgressing = true
		case metav1.ConditionTrue:
			if c.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded || c.Status.LastPromotedSpec == before {
				t.Fatalf("the Kustomization is Ready at the config commit while the Canary is %s with revision %s promoted (%s before)",
					c.Status.Phase, c.Status.LastPromotedSpec, before)
			}
			return true
		}
		return false
	})
	if !sawProgressing {
		t.Error("the Kustomization never reported the config-only release in progress")
	}
	if c := meta.FindStatusCondition(promoted.Status.Conditions, "Ready"); c.Reason != "ReconciliationSucceeded" {
		t.Fatalf("Ready %+v", c)
	}

	// A bad version: the Canary rolls back, the Kustomization says why,
	// and the primary keeps serving the last good version.
	failing.Store(true)
	bad := s.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:3")})
	ks := waitKustomization(t, "podinfo:3 rolled back", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ks.Status.LastAppliedRevision == "main@sha1:"+bad && ready(ks) == metav1.ConditionFalse
	})
	cond := meta.FindStatusCondition(ks.Status.Conditions, "Ready")
	if cond.Reason != handoff.ReasonCanaryFailed || !strings.Contains(cond.Message, "Canary gitops/podinfo") || !strings.Contains(cond.Message, "load") {
		t.Fatalf("Ready %+v, want the Canary's reason", cond)
	}
	if img := primaryImage(t); img != "podinfo:2" {
		t.Fatalf("primary runs %s after the rollback", img)
	}
}

func ready(ks *syncv1.Kustomization) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(ks.Status.Conditions, "Ready"); c != nil {
		return c.Status
	}
	return ""
}

func waitKustomization(t *testing.T, what string, cond func(*syncv1.Kustomization, *sluicev1beta1.Canary) bool) *syncv1.Kustomization {
	t.Helper()
	return waitSynced(t, &syncv1.Kustomization{}, client.ObjectKey{Namespace: ns, Name: "app"}, what, cond)
}

// waitSynced waits until cond holds for the sync object at key and the
// podinfo Canary in its namespace, and returns the object.
func waitSynced[T status.Object](t *testing.T, obj T, key client.ObjectKey, what string, cond func(T, *sluicev1beta1.Canary) bool) T {
	t.Helper()
	controlplane.Eventually(t, 3*time.Minute, what, func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(ctx, key, obj); err != nil {
			return false, err.Error()
		}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: "podinfo"}, c); err != nil {
			return false, err.Error()
		}
		return cond(obj, c), fmt.Sprintf("%T conditions %+v; canary %s %v", obj, obj.GetConditions(), c.Status.Phase, c.Status.Conditions)
	})
	return obj
}

func primaryImage(t *testing.T) string {
	t.Helper()
	return primaryImageIn(t, ns)
}

func primaryImageIn(t *testing.T, namespace string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podinfo-primary"}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}
