package receiver

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// env is a namespace with a Git server, a GitRepository on it that would
// next fetch in an hour, the Receiver controller and the webhook endpoint.
// The endpoint fetches Google's ID token keys from google, a loopback
// JWKS server that publishes googleKey's public half.
type env struct {
	ns        string
	git       *gitserver.Server
	mgr       ctrl.Manager
	hook      *httptest.Server
	google    *httptest.Server
	googleKey *rsa.PrivateKey
}

// The Secret "hook" every test Receiver uses: its token, and the
// Pub/Sub push subscription's audience and service account for gcr.
const (
	hookToken    = "t0ken"
	hookAudience = "https://hooks.example.com/sluice"
	hookEmail    = "registry-push@example-project.iam.gserviceaccount.com"
)

func start(t testing.TB, ns string) *env {
	t.Helper()
	e := &env{ns: ns, git: gitserver.New(t), googleKey: testKey(t)}
	e.google = httptest.NewServer(jwks(t, map[string]*rsa.PublicKey{"k1": &e.googleKey.PublicKey}))
	t.Cleanup(e.google.Close)
	e.git.Commit(map[string]string{"app.yaml": "a: 1\n"})
	secret, repo := e.git.Source(ns, "app", time.Hour)
	repo.Labels = map[string]string{"team": "shop"}
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns}, StringData: map[string]string{"token": hookToken, "audience": hookAudience, "email": hookEmail}},
		secret, repo,
	)
	e.mgr = cp.StartManager(t, func(mgr ctrl.Manager) error {
		git := &source.GitRepositoryReconciler{Client: mgr.GetClient(), Events: mgr.GetEventRecorder("test"), Store: source.NewStore()}
		if err := git.SetupWithManager(t.Context(), mgr); err != nil {
			return err
		}
		rcv := &Reconciler{Client: mgr.GetClient(), Events: mgr.GetEventRecorder("test")}
		return rcv.SetupWithManager(t.Context(), mgr)
	})
	e.hook = httptest.NewServer(&Handler{Client: e.mgr.GetClient(), Log: logr.Discard(), GoogleCertsURL: e.google.URL})
	t.Cleanup(e.hook.Close)
	return e
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// receiver creates a Receiver and returns its webhook path once Ready.
func (e *env) receiver(t testing.TB, name, typ string, suspend bool, refs ...notificationv1.CrossNamespaceObjectReference) string {
	t.Helper()
	return e.receiverWith(t, name, notificationv1.ReceiverSpec{Type: typ, Resources: refs, Suspend: suspend})
}

// receiverWith creates a Receiver with the Secret "hook" (none for
// generic-oidc, whose path has no token) and returns its webhook path once
// it is Ready and the endpoint's cache has it.
func (e *env) receiverWith(t testing.TB, name string, spec notificationv1.ReceiverSpec) string {
	t.Helper()
	token := ""
	if spec.Type != notificationv1.GenericOIDCReceiver {
		spec.SecretRef, token = &notificationv1.LocalObjectReference{Name: "hook"}, hookToken
	}
	create(t, &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: spec})
	rcv := &notificationv1.Receiver{}
	controlplane.Eventually(t, 30*time.Second, "Receiver "+name+" Ready", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, rcv); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(rcv.Status.Conditions, "Ready"), fmt.Sprintf("%+v", rcv.Status)
	})
	if want := WebhookPath(token, name, e.ns); rcv.Status.WebhookPath != want {
		t.Fatalf("webhook path %s, want %s", rcv.Status.WebhookPath, want)
	}
	// The endpoint knows the path once its cache has the status, a moment
	// after the API server does.
	controlplane.Eventually(t, 10*time.Second, "the endpoint knows "+name, func(ctx context.Context) (bool, string) {
		var list notificationv1.ReceiverList
		if err := e.mgr.GetClient().List(ctx, &list, client.MatchingFields{webhookPathField: rcv.Status.WebhookPath}); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 1, fmt.Sprintf("%d Receivers with the path in the cache", len(list.Items))
	})
	return rcv.Status.WebhookPath
}

func (e *env) call(t testing.TB, method, path string, headers map[string]string) int {
	t.Helper()
	return e.send(t, method, path, headers, bytes.NewBufferString(pushBody))
}

// send makes a call with a body, and returns its status.
func (e *env) send(t testing.TB, method, path string, headers map[string]string, body io.Reader) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.hook.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// artifact reads the GitRepository's revision and the last request it
// handled.
func (e *env) artifact(ctx context.Context) (revision, handled string, err error) {
	repo := &sourcev1.GitRepository{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, repo); err != nil {
		return "", "", err
	}
	if repo.Status.Artifact != nil {
		revision = repo.Status.Artifact.Revision
	}
	return revision, repo.Status.LastHandledReconcileAt, nil
}

func (e *env) waitRevision(t testing.TB, revision string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, "revision "+revision, func(ctx context.Context) (bool, string) {
		got, _, err := e.artifact(ctx)
		if err != nil {
			return false, err.Error()
		}
		return got == revision, "revision " + got
	})
}

const pushBody = `{"ref":"refs/heads/main"}`

func github(key string) map[string]string {
	return map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(sha256.New, key, pushBody)}
}

func TestAVerifiedCallFetchesTheNewCommitAtOnceAndAForgedOneChangesNothing(t *testing.T) {
	e := start(t, "receiver-github")
	first := e.git.Commit(map[string]string{"app.yaml": "a: 2\n"})
	e.waitRevision(t, "main@sha1:"+first)
	path := e.receiver(t, "github", notificationv1.GitHubReceiver, false, notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app"})

	second := e.git.Commit(map[string]string{"app.yaml": "a: 3\n"})
	if code := e.call(t, http.MethodPost, path, github("forged")); code != http.StatusUnauthorized {
		t.Fatalf("a forged signature got %d, want 401", code)
	}
	// Nothing may happen: give a wrongly triggered fetch time to land.
	time.Sleep(2 * time.Second)
	if got, handled, err := e.artifact(t.Context()); err != nil || got != "main@sha1:"+first || handled != "" {
		t.Fatalf("after a forged call: revision %s, handled %q, %v", got, handled, err)
	}

	called := time.Now()
	if code := e.call(t, http.MethodPost, path, github("t0ken")); code != http.StatusOK {
		t.Fatalf("a valid signature got %d, want 200", code)
	}
	e.waitRevision(t, "main@sha1:"+second)
	t.Logf("webhook call to new artifact: %s", time.Since(called).Round(time.Millisecond))
	if _, handled, _ := e.artifact(t.Context()); handled == "" {
		t.Fatal("status.lastHandledReconcileAt is not set")
	}
}

func TestTheEndpointAnswersEachKindOfCall(t *testing.T) {
	e := start(t, "receiver-calls")
	ref := notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app"}
	byLabel := notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "*", MatchLabels: map[string]string{"team": "shop"}}
	gitlab := e.receiver(t, "gitlab", notificationv1.GitLabReceiver, false, ref)
	generic := e.receiver(t, "generic", notificationv1.GenericReceiver, false, byLabel)
	suspended := e.receiver(t, "suspended", notificationv1.GenericReceiver, true, ref)
	tests := []struct {
		name     string
		method   string
		path     string
		headers  map[string]string
		code     int
		requests bool
	}{
		{"a GitLab call with the token is accepted", http.MethodPost, gitlab, map[string]string{"X-Gitlab-Token": "t0ken", "X-Gitlab-Event": "Push Hook"}, http.StatusOK, true},
		{"a GitLab call with another token is refused", http.MethodPost, gitlab, map[string]string{"X-Gitlab-Token": "nope"}, http.StatusUnauthorized, false},
		{"a generic call selects its resources by label", http.MethodPost, generic, nil, http.StatusOK, true},
		{"a suspended receiver does not act", http.MethodPost, suspended, nil, http.StatusServiceUnavailable, false},
		{"a path no receiver has is not found", http.MethodPost, "/hook/0000", nil, http.StatusNotFound, false},
		{"a GET is not served", http.MethodGet, generic, nil, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := annotation(t, e.ns)
			if code := e.call(t, tt.method, tt.path, tt.headers); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if got := annotation(t, e.ns) != before; got != tt.requests {
				t.Fatalf("reconcile requested %v, want %v", got, tt.requests)
			}
		})
	}
	// A body over the cap is refused whether its length is announced or
	// not, on a path that trusts any call.
	sized := []struct {
		name string
		body io.Reader
		code int
	}{
		{"a body at the cap is accepted", strings.NewReader(strings.Repeat("x", maxBody)), http.StatusOK},
		{"a body over the cap with its length announced gets 413", strings.NewReader(strings.Repeat("x", maxBody+1)), http.StatusRequestEntityTooLarge},
		{"a body over the cap sent in chunks gets 413", io.MultiReader(strings.NewReader(strings.Repeat("x", maxBody)), strings.NewReader("x")), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range sized {
		t.Run(tt.name, func(t *testing.T) {
			before := annotation(t, e.ns)
			if code := e.send(t, http.MethodPost, generic, nil, tt.body); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if got, want := annotation(t, e.ns) != before, tt.code == http.StatusOK; got != want {
				t.Fatalf("reconcile requested %v, want %v", got, want)
			}
		})
	}
}

func TestAGCRReceiverWhoseSecretLacksTheAccountIsNotReady(t *testing.T) {
	t.Parallel()
	e := start(t, "receiver-gcr-secret")
	tests := []struct {
		name    string
		data    map[string]string
		missing string
	}{
		{"a Secret with the token alone lacks the email", map[string]string{"token": hookToken}, "email"},
		{"a Secret without the audience lacks it", map[string]string{"token": hookToken, "email": hookEmail}, "audience"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("gcr-%d", i)
			create(t,
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, StringData: tt.data},
				&notificationv1.Receiver{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
					Spec: notificationv1.ReceiverSpec{Type: notificationv1.GCRReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: name},
						Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}},
				},
			)
			rcv := &notificationv1.Receiver{}
			controlplane.Eventually(t, 30*time.Second, "Receiver not Ready for want of the "+tt.missing+" key", func(ctx context.Context) (bool, string) {
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, rcv); err != nil {
					return false, err.Error()
				}
				c := meta.FindStatusCondition(rcv.Status.Conditions, "Ready")
				return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "no "+tt.missing+" key") && rcv.Status.WebhookPath == "", fmt.Sprintf("%+v", rcv.Status)
			})
		})
	}
}

func TestAReceiverWithoutItsTokenIsNotReady(t *testing.T) {
	e := start(t, "receiver-token")
	create(t, &notificationv1.Receiver{
		ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: e.ns},
		Spec: notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "missing"},
			Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}},
	})
	rcv := &notificationv1.Receiver{}
	controlplane.Eventually(t, 30*time.Second, "Receiver not Ready", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "lost"}, rcv); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(rcv.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == notificationv1.ReasonTokenNotFound, fmt.Sprintf("%+v", rcv.Status)
	})
	// The Secret's arrival is watched: the Receiver turns Ready at once.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "missing", Namespace: e.ns}, StringData: map[string]string{"token": "late"}})
	controlplane.Eventually(t, 30*time.Second, "Receiver Ready", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "lost"}, rcv); err != nil {
			return false, err.Error()
		}
		return rcv.Status.WebhookPath == WebhookPath("late", "lost", e.ns), fmt.Sprintf("%+v", rcv.Status)
	})
}

func annotation(t testing.TB, ns string) string {
	t.Helper()
	repo := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "app"}, repo); err != nil {
		t.Fatal(err)
	}
	return repo.Annotations[sourcev1.ReconcileRequestAnnotation]
}

// BenchmarkWebhookCallToNewArtifact measures a push's path through Sluice:
// a signed GitHub call, the annotation, the GitRepository's fetch of the
// new commit and its status.
func BenchmarkWebhookCallToNewArtifact(b *testing.B) {
	e := start(b, "receiver-bench")
	path := e.receiver(b, "github", notificationv1.GitHubReceiver, false, notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app"})
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		head := e.git.Commit(map[string]string{"app.yaml": fmt.Sprintf("a: %d\n", i+10)})
		b.StartTimer()
		called := time.Now()
		if code := e.call(b, http.MethodPost, path, github("t0ken")); code != http.StatusOK {
			b.Fatalf("status %d", code)
		}
		for {
			got, _, err := e.artifact(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if got == "main@sha1:"+head {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(called)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/call")
}

func TestACallAsksTheImageRepositoriesItNamesToScan(t *testing.T) {
	t.Parallel()
	e := start(t, "image-hook")
	create(t, &imagev1.ImageRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: e.ns},
		Spec:       imagev1.ImageRepositorySpec{Image: "ghcr.io/org/app", Interval: metav1.Duration{Duration: time.Hour}},
	})
	path := e.receiver(t, "registry", notificationv1.GenericReceiver, false, notificationv1.CrossNamespaceObjectReference{Kind: "ImageRepository", Name: "app"})
	if code := e.call(t, http.MethodPost, path, nil); code != http.StatusOK {
		t.Fatalf("the call got %d", code)
	}
	controlplane.Eventually(t, 30*time.Second, "the scan request on the ImageRepository", func(ctx context.Context) (bool, string) {
		repo := &imagev1.ImageRepository{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, repo); err != nil {
			return false, err.Error()
		}
		return repo.Annotations[sourcev1.ReconcileRequestAnnotation] != "", fmt.Sprintf("annotations %v", repo.Annotations)
	})
}
