package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/alertmanager"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

// slackServer plays a Slack incoming webhook: it decodes each post
// strictly as https://api.slack.com/messaging/webhooks documents it.
type slackServer struct {
	*httptest.Server
	mu       sync.Mutex
	messages []slackPost
}

type slackPost struct {
	Channel     string `json:"channel"`
	Username    string `json:"username"`
	Text        string `json:"text"`
	Attachments []struct {
		Color    string `json:"color"`
		Fallback string `json:"fallback"`
		Title    string `json:"title"`
		Fields   []struct {
			Title string `json:"title"`
			Value string `json:"value"`
			Short bool   `json:"short"`
		} `json:"fields"`
		MrkdwnIn []string `json:"mrkdwn_in"`
	} `json:"attachments"`
}

func newSlackServer(t *testing.T) *slackServer {
	s := &slackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slackPost
		if err := strictJSON(r, "/services/T0/B0/secret", &m); err != nil {
			t.Errorf("slack: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.messages = append(s.messages, m)
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

// about counts the messages whose title has each of words.
func (s *slackServer) about(words ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.messages {
		if len(m.Attachments) == 1 && containsAll(m.Attachments[0].Title+" "+m.Text, words...) {
			n++
		}
	}
	return n
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// strictJSON checks a POST of JSON to path and decodes it with no field
// beyond those of into.
func strictJSON(r *http.Request, path string, into any) error {
	if r.Method != http.MethodPost || r.URL.EscapedPath() != path || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("%s %s (%s), want POST %s of JSON", r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), path)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("body %s: %w", body, err)
	}
	return nil
}

// gitHubServer plays GitHub Enterprise's "Create a commit status",
// https://docs.github.com/rest/commits/statuses, for the repository
// acme/app.
type gitHubServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []gitHubStatus
}

type gitHubStatus struct {
	SHA         string `json:"-"`
	State       string `json:"state"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

var statusPath = regexp.MustCompile(`^/api/v3/repos/acme/app/statuses/([0-9a-f]{40})$`)

func newGitHubServer(t *testing.T, token string) *gitHubServer {
	s := &gitHubServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := statusPath.FindStringSubmatch(r.URL.Path)
		if m == nil || r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("Accept") != "application/vnd.github+json" {
			t.Errorf("github: %s %s with %v", r.Method, r.URL.Path, r.Header)
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		var st gitHubStatus
		if err := strictJSON(r, r.URL.Path, &st); err != nil {
			t.Errorf("github: %v", err)
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		if len([]rune(st.Description)) > 140 || (st.State != "success" && st.State != "failure" && st.State != "pending" && st.State != "error") {
			t.Errorf("github: a status GitHub refuses: %+v", st)
		}
		st.SHA = m[1]
		s.mu.Lock()
		s.statuses = append(s.statuses, st)
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// count counts the statuses of a commit in a state.
func (s *gitHubServer) count(sha, state string) (n int, context string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.statuses {
		if st.SHA == sha && st.State == state {
			n, context = n+1, st.Context
		}
	}
	return n, context
}

const notifyNS = "notify"

// labelledCanary is the gitops Canary with a team label, which the Alert
// selects by and Alertmanager receives.
var labelledCanary = strings.Replace(canary, "metadata: {name: podinfo}", "metadata: {name: podinfo, labels: {team: web}}", 1)

func kustomizationFile(resources ...string) string {
	return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + strings.Join(resources, ", ") + "]\n"
}

func TestSyncAndCanaryEventsReachChatCommitStatusesAndAlertmanager(t *testing.T) {
	var failing atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	slack, github, am := newSlackServer(t), newGitHubServer(t, "ghp_test"), alertmanager.Start(t)

	s := gitserver.New(t)
	// The first commit names a file that is not there: the build fails.
	broken := s.Commit(map[string]string{
		"app/deploy.yaml": deployment("podinfo:1"), "app/canary.yaml": labelledCanary,
		"app/kustomization.yaml": kustomizationFile("deploy.yaml", "canary.yaml", "missing.yaml"),
	})
	secret, repo := s.Source(notifyNS, "repo", time.Second)
	ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: notifyNS}, Spec: syncv1.KustomizationSpec{
		SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
		Path:      "app", Prune: true, TargetNamespace: notifyNS, Interval: metav1.Duration{Duration: time.Hour},
		PostBuild: &syncv1.PostBuild{Substitute: map[string]string{"HOOK": hook.URL}},
	}}
	provider := func(name, typ, address, secret string) *notificationv1beta3.Provider {
		p := &notificationv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: notifyNS}, Spec: notificationv1beta3.ProviderSpec{Type: typ, Address: address}}
		if secret != "" {
			p.Spec.SecretRef = &notificationv1beta3.LocalObjectReference{Name: secret}
		}
		return p
	}
	alert := func(name, provider, severity string, source notificationv1beta3.CrossNamespaceObjectReference) *notificationv1beta3.Alert {
		return &notificationv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: notifyNS}, Spec: notificationv1beta3.AlertSpec{
			ProviderRef: notificationv1beta3.LocalObjectReference{Name: provider}, EventSeverity: severity,
			EventSources: []notificationv1beta3.CrossNamespaceObjectReference{source},
		}}
	}
	app := notificationv1beta3.CrossNamespaceObjectReference{Kind: "Kustomization", Name: "app"}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: notifyNS}},
		secret, repo,
		// The Slack webhook URL is a credential: it comes from a Secret.
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: notifyNS}, StringData: map[string]string{"address": slack.URL + "/services/T0/B0/secret"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "github", Namespace: notifyNS}, StringData: map[string]string{"token": "ghp_test"}},
		provider("chat", notificationv1beta3.SlackProvider, "", "slack"),
		provider("github", notificationv1beta3.GitHubProvider, github.URL+"/acme/app", "github"),
		provider("alertmanager", notificationv1beta3.AlertmanagerProvider, am.URL, ""),
		alert("chat", "chat", notificationv1beta3.SeverityError, app),
		alert("status", "github", notificationv1beta3.SeverityInfo, app),
		alert("canaries", "alertmanager", notificationv1beta3.SeverityError,
			notificationv1beta3.CrossNamespaceObjectReference{Kind: "Canary", Name: "*", MatchLabels: map[string]string{"team": "web"}}),
		ks,
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, notifyNS, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

	// Every Alert is ready: its Provider resolved before any event.
	for _, name := range []string{"chat", "status", "canaries"} {
		a := &notificationv1beta3.Alert{}
		controlplane.Eventually(t, 30*time.Second, "Alert "+name+" Ready", func(ctx context.Context) (bool, string) {
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: notifyNS, Name: name}, a); err != nil {
				return false, err.Error()
			}
			return meta.IsStatusConditionTrue(a.Status.Conditions, notificationv1beta3.ReadyCondition), fmt.Sprintf("%+v", a.Status.Conditions)
		})
	}

	// The failed build reaches the chat as an error, and GitHub as a
	// failure status on the commit.
	controlplane.Eventually(t, 30*time.Second, "the build failure in the chat and on the commit", func(context.Context) (bool, string) {
		failures, _ := github.count(broken, "failure")
		return slack.about("kustomization/app."+notifyNS, syncv1.ReasonBuildFailed, "missing.yaml") == 1 && failures == 1,
			fmt.Sprintf("slack %d, github %+v", slack.about("BuildFailed"), github.statuses)
	})
	_, statusContext := github.count(broken, "failure")
	if !strings.HasPrefix(statusContext, "kustomization/app/") {
		t.Errorf("commit status context %q, want kustomization/app/<provider>", statusContext)
	}
	// Asked twice more, the Kustomization fails the same way: the same
	// event within the window is not sent again.
	for i := range 2 {
		requestReconcile(t, ks, fmt.Sprintf("again-%d", i))
	}
	// Events reach the services within milliseconds (see `make bench`);
	// a second message would be here by now.
	time.Sleep(2 * time.Second)
	if n, failures := slack.about("BuildFailed"), 0; n != 1 {
		t.Errorf("the same build failure reached the chat %d times, want once", n)
	} else if failures, _ = github.count(broken, "failure"); failures != 1 {
		t.Errorf("the same failure status was set %d times, want once", failures)
	}

	// The fix is applied: GitHub gets success on the fixed commit. The
	// chat, which takes errors only, gets nothing.
	fixed := s.Commit(map[string]string{"app/kustomization.yaml": kustomizationFile("deploy.yaml", "canary.yaml")})
	controlplane.Eventually(t, 60*time.Second, "success on the fixed commit", func(context.Context) (bool, string) {
		n, _ := github.count(fixed, "success")
		return n == 1, fmt.Sprintf("github %+v", github.statuses)
	})
	waitSyncedIn(t, notifyNS, "the Canary initialized", func(c *sluicev1beta1.Canary) bool {
		return c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized
	})

	// A release that fails its checks rolls back: Alertmanager holds an
	// alert with the Canary's labels, and GitHub a failure on the commit.
	failing.Store(true)
	bad := s.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:2")})
	controlplane.Eventually(t, 2*time.Minute, "the rollback in Alertmanager", func(context.Context) (bool, string) {
		alerts, err := am.Alerts()
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			l := a.Labels
			if l["kind"] == "Canary" && l["name"] == "podinfo" && l["namespace"] == notifyNS && l["team"] == "web" && l["severity"] == "error" &&
				strings.HasPrefix(l["alertname"], "SluiceCanary") && a.Annotations["message"] != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("alerts %+v", alerts)
	})
	controlplane.Eventually(t, time.Minute, "failure on the rolled-back commit", func(context.Context) (bool, string) {
		n, _ := github.count(bad, "failure")
		return n == 1, fmt.Sprintf("github %+v", github.statuses)
	})
	if n := slack.about("kustomization/app."+notifyNS, "CanaryFailed"); n != 1 {
		t.Errorf("the chat got %d messages of the failed release, want 1", n)
	}
}

// requestReconcile asks a Kustomization to reconcile and waits until it
// has.
func requestReconcile(t *testing.T, ks *syncv1.Kustomization, token string) {
	t.Helper()
	key := client.ObjectKeyFromObject(ks)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, token))
	if err := cp.Client.Patch(t.Context(), &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	controlplane.Eventually(t, 30*time.Second, "reconcile "+token+" handled", func(ctx context.Context) (bool, string) {
		got := &syncv1.Kustomization{}
		if err := cp.Client.Get(ctx, key, got); err != nil {
			return false, err.Error()
		}
		return got.Status.LastHandledReconcileAt == token, got.Status.LastHandledReconcileAt
	})
}

// waitSyncedIn waits for the Canary podinfo in a namespace.
func waitSyncedIn(t *testing.T, namespace, what string, cond func(*sluicev1beta1.Canary) bool) {
	t.Helper()
	controlplane.Eventually(t, time.Minute, what, func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podinfo"}, c); err != nil {
			return false, err.Error()
		}
		return cond(c), fmt.Sprintf("phase %s", c.Status.Phase)
	})
}
