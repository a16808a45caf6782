package source_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

// TestAGitRepositoryFollowsTheGitRepositoriesItIncludesAtOnce runs the
// operator as cmd/sluice builds it: an includer whose interval is an hour
// waits for its include to appear, and takes each new artifact of it as
// soon as it is made, through the watch on included GitRepositories.
func TestAGitRepositoryFollowsTheGitRepositoriesItIncludesAtOnce(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-watch"
	cp := source.ControlPlane()
	libServer, appServer := gitserver.New(t), gitserver.New(t)
	libServer.Commit(map[string]string{"lib.yaml": "lib: 1\n"})
	appServer.Commit(map[string]string{"app.yaml": "app: 1\n"})
	repo := func(name, url string, include ...string) *sourcev1.GitRepository {
		g := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: sourcev1.GitRepositorySpec{
			URL: url, Interval: metav1.Duration{Duration: time.Hour}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			SecretRef: &sourcev1.LocalObjectReference{Name: "git"},
		}}
		for _, in := range include {
			g.Spec.Include = append(g.Spec.Include, sourcev1.GitRepositoryInclude{GitRepositoryRef: sourcev1.LocalObjectReference{Name: in}})
		}
		return g
	}
	lib, app := repo("lib", libServer.URL), repo("app", appServer.URL, "lib")
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: ns}, StringData: map[string]string{"username": "sluice", "password": "s3cret"}},
		app,
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	appKey, libKey := client.ObjectKeyFromObject(app), client.ObjectKeyFromObject(lib)
	wait := func(what string, key client.ObjectKey, cond func(g *sourcev1.GitRepository) bool) *sourcev1.GitRepository {
		t.Helper()
		g := &sourcev1.GitRepository{}
		controlplane.Eventually(t, 30*time.Second, what, func(ctx context.Context) (bool, string) {
			if err := cp.Client.Get(ctx, key, g); err != nil {
				return false, err.Error()
			}
			return cond(g), fmt.Sprintf("status %+v", g.Status)
		})
		return g
	}

	// 1. The include does not exist: Flux's NotFound, with a Warning
	// Event naming the field.
	wait("the missing include reported", appKey, func(g *sourcev1.GitRepository) bool {
		c := meta.FindStatusCondition(g.Status.Conditions, sourcev1.IncludeUnavailableCondition)
		ready := meta.FindStatusCondition(g.Status.Conditions, "Ready")
		return c != nil && c.Reason == sourcev1.ReasonIncludeNotFound && ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == sourcev1.ReasonIncludeNotFound
	})
	controlplane.Eventually(t, 30*time.Second, "a Warning NotFound Event", func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.Regarding.Name == "app" && e.Type == corev1.EventTypeWarning && e.Reason == sourcev1.ReasonIncludeNotFound && strings.Contains(e.Note, "spec.include[0]: GitRepository lib") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(list.Items))
	})

	// 2. The include appears and gets an artifact: the includer, due in
	// an hour, takes it at once.
	if err := cp.Client.Create(t.Context(), lib); err != nil {
		t.Fatal(err)
	}
	libGot := wait("the include fetched", libKey, func(g *sourcev1.GitRepository) bool { return g.Status.Artifact != nil })
	got := wait("the include copied in", appKey, func(g *sourcev1.GitRepository) bool {
		return len(g.Status.IncludedArtifacts) == 1 && g.Status.IncludedArtifacts[0].Digest == libGot.Status.Artifact.Digest &&
			meta.IsStatusConditionTrue(g.Status.Conditions, "Ready")
	})
	first := got.Status.Artifact.Digest

	// 3. A new commit of the include, fetched on a reconcile request,
	// reaches the includer without one.
	libServer.Commit(map[string]string{"lib.yaml": "lib: 2\n"})
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
	if err := cp.Client.Patch(t.Context(), libGot, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	libGot = wait("the include's new commit fetched", libKey, func(g *sourcev1.GitRepository) bool {
		return g.Status.Artifact.Digest != libGot.Status.Artifact.Digest
	})
	wait("the includer's new artifact", appKey, func(g *sourcev1.GitRepository) bool {
		return g.Status.Artifact.Digest != first && g.Status.Artifact.Revision == got.Status.Artifact.Revision &&
			len(g.Status.IncludedArtifacts) == 1 && g.Status.IncludedArtifacts[0].Revision == libGot.Status.Artifact.Revision
	})
}
