package gitops

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/inprocess"
	testprom "sluice.dev/sluice/test/prometheus"
)

// markedDeployment is the app with its image under a setter marker.
func markedDeployment(image, policy string) string {
	return strings.Replace(deployment(image), "image: "+image, "image: "+image+` # {"$imagepolicy": "`+policy+`"}`, 1)
}

// analysedCanary is the Canary gated by the built-in success rate, which
// a real Prometheus reads from the exporter, instead of a webhook.
var analysedCanary = strings.Replace(canary, `    webhooks: [{name: load, type: rollout, url: "${HOOK}"}]
`, `    metrics:
    - name: request-success-rate
      interval: 10s
      thresholdRange: {min: 99}
`, 1)

// imageLoop is a namespace with a registry, a Git server, a Prometheus
// scraping an exporter, the sync objects and the operator.
type imageLoop struct {
	t        *testing.T
	ns       string
	registry *imageregistry.Registry
	git      *gitserver.Server
	exporter *testprom.Exporter
}

func (l *imageLoop) create(objs ...client.Object) {
	l.t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(l.t.Context(), o); err != nil {
			l.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// scanNow asks for a scan, as a Receiver call does.
func (l *imageLoop) scanNow(name string) {
	l.t.Helper()
	repo := &imagev1.ImageRepository{}
	if err := cp.Client.Get(l.t.Context(), client.ObjectKey{Namespace: l.ns, Name: name}, repo); err != nil {
		l.t.Fatal(err)
	}
	patch := client.MergeFrom(repo.DeepCopy())
	metav1.SetMetaDataAnnotation(&repo.ObjectMeta, sourcev1.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
	if err := cp.Client.Patch(l.t.Context(), repo, patch); err != nil {
		l.t.Fatal(err)
	}
}

// waitCommit waits for a commit on main whose subject contains want and
// returns its hash.
func (l *imageLoop) waitCommit(what, want string) string {
	l.t.Helper()
	var sha string
	controlplane.Eventually(l.t, 2*time.Minute, what, func(context.Context) (bool, string) {
		log := l.git.Git("log", "--format=%H %s", "main")
		for _, line := range strings.Split(log, "\n") {
			if h, subject, ok := strings.Cut(line, " "); ok && strings.Contains(subject, want) {
				sha = h
				return true, log
			}
		}
		return false, log
	})
	return sha
}

// linear fails unless each commit is an ancestor of the next: history
// was only added to, never rewritten.
func (l *imageLoop) linear(commits ...string) {
	l.t.Helper()
	for i := 1; i < len(commits); i++ {
		if !l.git.IsAncestor(commits[i-1], commits[i]) {
			l.t.Fatalf("%s is not an ancestor of %s: history was rewritten\n%s", commits[i-1], commits[i], l.git.Git("log", "--all", "--graph", "--oneline"))
		}
	}
}

func (l *imageLoop) waitKustomization(what string, cond func(*syncv1.Kustomization, *sluicev1beta1.Canary) bool) *syncv1.Kustomization {
	l.t.Helper()
	return waitSynced(l.t, &syncv1.Kustomization{}, client.ObjectKey{Namespace: l.ns, Name: "app"}, what, cond)
}

func TestANewTagIsCommittedReleasedAndARolledBackTagIsRevertedInGit(t *testing.T) {
	const namespace = "imageloop"
	l := &imageLoop{t: t, ns: namespace, registry: imageregistry.New(t), git: gitserver.New(t), exporter: testprom.StartExporter(t)}
	l.git.AllowPush()
	image := l.registry.Image("podinfo")
	l.registry.Push(t, "podinfo", "1.0.0")
	l.registry.Push(t, "podinfo", "1.1.0")
	first := l.git.Commit(map[string]string{
		"app/deploy.yaml": markedDeployment(image+":1.0.0", namespace+":podinfo"),
		"app/canary.yaml": analysedCanary,
	})
	prom := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{
		Addr:   l.exporter.Addr,
		Labels: map[string]string{"namespace": namespace, "pod": "podinfo-7d9f8b6c5d-x2x9q"},
	}}})
	secret, repo := l.git.Source(namespace, "repo", time.Second)
	l.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, secret, repo,
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      "app", Prune: true, TargetNamespace: namespace, Interval: metav1.Duration{Duration: time.Hour}, Wait: true,
		}})
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), func(o *operator.Options) {
		o.MetricsServer = prom.URL
	})
	l.waitKustomization("1.0.0 applied and the Canary initialized", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+first && c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized
	})

	// 1. The automation commits the tag the policy chose, and the
	// Canary releases it.
	l.create(
		&imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace}, Spec: imagev1.ImageRepositorySpec{
			Image: image, Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
		}},
		&imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace}, Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: "podinfo"},
			Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: "^1.x"}},
		}},
		&imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace}, Spec: imagev1.ImageUpdateAutomationSpec{
			SourceRef: imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Interval:  metav1.Duration{Duration: time.Hour},
			GitSpec: &imagev1.GitSpec{
				Commit: imagev1.CommitSpec{
					Author:          imagev1.CommitUser{Name: "Sluice", Email: "sluice@example.com"},
					MessageTemplate: `Release {{ range .Changed.Changes }}{{ .NewValue }}{{ end }}`,
				},
				Push: &imagev1.PushSpec{Branch: "main"},
			},
			Update:          &imagev1.UpdateStrategy{Strategy: imagev1.UpdateStrategySetters, Path: "app"},
			OnCanaryFailure: imagev1.CanaryFailureRevert,
		}},
	)
	release := l.waitCommit("the automation's commit of 1.1.0", "Release "+image+":1.1.0")
	if author := l.git.Git("show", "--no-patch", "--format=%an <%ae>", release); author != "Sluice <sluice@example.com>" {
		t.Fatalf("author %q", author)
	}
	if diff := l.git.Git("diff", first, release); !strings.Contains(diff, "-        image: "+image+":1.0.0 # {\"$imagepolicy\": \""+namespace+":podinfo\"}") ||
		!strings.Contains(diff, "+        image: "+image+":1.1.0 # {\"$imagepolicy\": \""+namespace+":podinfo\"}") {
		t.Fatalf("the commit changed more or less than the marked image, or lost the marker:\n%s", diff)
	}
	l.waitKustomization("1.1.0 promoted", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+release && c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded
	})
	if img := primaryImageIn(t, namespace); img != image+":1.1.0" {
		t.Fatalf("primary runs %s", img)
	}

	// 2. 1.2.0 fails its metric: the Canary rolls it back.
	l.exporter.Set(0.3, 10*time.Millisecond)
	l.registry.Push(t, "podinfo", "1.2.0")
	l.scanNow("podinfo")
	bad := l.waitCommit("the automation's commit of 1.2.0", "Release "+image+":1.2.0")

	// 3. The revert: Git names 1.1.0 again, with the Canary's reason; the
	// policy skips 1.2.0; the Kustomization is Ready on the revert.
	revert := l.waitCommit("the revert commit", "Revert "+image+" to 1.1.0")
	message := l.git.Git("show", "--no-patch", "--format=%B", revert)
	for _, want := range []string{"Canary " + namespace + "/podinfo", "1.2.0", "request-success-rate", "ImageUpdateAutomation " + namespace + "/podinfo"} {
		if !strings.Contains(message, want) {
			t.Errorf("the revert message does not name %q:\n%s", want, message)
		}
	}
	if diff := l.git.Git("diff", bad, revert); !strings.Contains(diff, "+        image: "+image+":1.1.0 # {") {
		t.Fatalf("the revert does not write 1.1.0 back:\n%s", diff)
	}
	l.linear(first, release, bad, revert)
	controlplane.Eventually(t, time.Minute, "the policy skipping 1.2.0", func(ctx context.Context) (bool, string) {
		p := &imagev1.ImagePolicy{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podinfo"}, p); err != nil {
			return false, err.Error()
		}
		return p.Status.LatestRef != nil && p.Status.LatestRef.Tag == "1.1.0" && len(p.Status.SkippedTags) == 1 && p.Status.SkippedTags[0] == "1.2.0",
			fmt.Sprintf("%+v", p.Status)
	})
	l.waitKustomization("the revert applied and Ready", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+revert &&
			(c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized || c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded)
	})
	if img := primaryImageIn(t, namespace); img != image+":1.1.0" {
		t.Fatalf("primary runs %s after the revert", img)
	}
	a := &imagev1.ImageUpdateAutomation{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podinfo"}, a); err != nil {
		t.Fatal(err)
	}
	if len(a.Status.CanaryFailures) != 1 || a.Status.CanaryFailures[0].Commit != revert || a.Status.CanaryFailures[0].Tag != "1.2.0" {
		t.Fatalf("status.canaryFailures %+v", a.Status.CanaryFailures)
	}

	// 4. A newer tag releases normally.
	l.exporter.Set(0, 10*time.Millisecond)
	l.registry.Push(t, "podinfo", "1.2.1")
	l.scanNow("podinfo")
	fixed := l.waitCommit("the automation's commit of 1.2.1", "Release "+image+":1.2.1")
	l.waitKustomization("1.2.1 promoted", func(ks *syncv1.Kustomization, c *sluicev1beta1.Canary) bool {
		return ready(ks) == metav1.ConditionTrue && ks.Status.LastAppliedRevision == "main@sha1:"+fixed && c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded
	})
	if img := primaryImageIn(t, namespace); img != image+":1.2.1" {
		t.Fatalf("primary runs %s", img)
	}
	l.linear(revert, fixed)
	p := &imagev1.ImagePolicy{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podinfo"}, p); err != nil {
		t.Fatal(err)
	}
	if len(p.Status.SkippedTags) != 0 {
		t.Fatalf("1.2.0 is still skipped once 1.2.1 is chosen: %v", p.Status.SkippedTags)
	}
	if cond := meta.FindStatusCondition(a.Status.Conditions, "Ready"); cond == nil {
		t.Fatal("the automation has no Ready condition")
	}
}

func TestTwoAutomationsPushingToOneBranchBothLand(t *testing.T) {
	const namespace = "imagetwo"
	l := &imageLoop{t: t, ns: namespace, registry: imageregistry.New(t), git: gitserver.New(t)}
	l.git.AllowPush()
	files := map[string]string{}
	for _, app := range []string{"api", "web"} {
		l.registry.Push(t, app, "1.0.0")
		l.registry.Push(t, app, "2.0.0")
		files[app+"/deploy.yaml"] = markedDeployment(l.registry.Image(app)+":1.0.0", namespace+":"+app)
	}
	first := l.git.Commit(files)
	secret, repo := l.git.Source(namespace, "repo", time.Hour)
	l.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, secret, repo)
	for _, app := range []string{"api", "web"} {
		l.create(
			&imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace}, Spec: imagev1.ImageRepositorySpec{
				Image: l.registry.Image(app), Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
			}},
			&imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace, Labels: map[string]string{"app": app}}, Spec: imagev1.ImagePolicySpec{
				ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: app},
				Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: ">=1.0.0"}},
			}},
			// Each automation owns one folder and one policy; both push to
			// main, at once.
			&imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace}, Spec: imagev1.ImageUpdateAutomationSpec{
				SourceRef:      imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
				Interval:       metav1.Duration{Duration: time.Hour},
				PolicySelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
				GitSpec: &imagev1.GitSpec{
					Commit: imagev1.CommitSpec{Author: imagev1.CommitUser{Name: "Sluice " + app, Email: app + "@example.com"}, MessageTemplate: "Release {{ range .Changed.Changes }}{{ .NewValue }}{{ end }}"},
				},
				Update: &imagev1.UpdateStrategy{Strategy: imagev1.UpdateStrategySetters, Path: app},
			}},
		)
	}
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	api := l.waitCommit("the api automation's commit", "Release "+l.registry.Image("api")+":2.0.0")
	web := l.waitCommit("the web automation's commit", "Release "+l.registry.Image("web")+":2.0.0")
	// One is on top of the other, and both on top of the first commit:
	// no force-push lost either.
	if !l.git.IsAncestor(api, web) && !l.git.IsAncestor(web, api) {
		t.Fatalf("the two commits are not in one line:\n%s", l.git.Git("log", "--all", "--graph", "--oneline"))
	}
	l.linear(first, api)
	l.linear(first, web)
	tree := l.git.Git("show", "main:api/deploy.yaml") + l.git.Git("show", "main:web/deploy.yaml")
	for _, app := range []string{"api", "web"} {
		if !strings.Contains(tree, l.registry.Image(app)+":2.0.0") {
			t.Errorf("main does not hold %s:2.0.0:\n%s", app, tree)
		}
	}
}
