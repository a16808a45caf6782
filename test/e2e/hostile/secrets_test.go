package hostile

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/gitserver"
)

// secret is a value no one may see outside its Secret.
func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// encodings are the forms of v that would show it: as it is, URL-escaped
// and in base64.
func encodings(v string) map[string]string {
	return map[string]string{
		"as is":               v,
		"query-escaped":       url.QueryEscape(v),
		"path-escaped":        url.PathEscape(v),
		"base64":              base64.StdEncoding.EncodeToString([]byte(v)),
		"unpadded base64":     base64.RawStdEncoding.EncodeToString([]byte(v)),
		"URL base64":          base64.URLEncoding.EncodeToString([]byte(v)),
		"unpadded URL base64": base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

// TestSecretsNeverShowInLogsEventsOrStatus runs a release whose Secrets
// hold known values: the bearer token of a Prometheus, a Slack webhook
// URL (whose path is the secret) and a Git password. The operator binary
// runs at debug level, and each backend fails once, so that the error
// paths run too. Every line the operator printed, every Event in the
// namespace and every object but the Secrets themselves are then read:
// none holds a value, as it is, URL-escaped or base64-encoded.
func TestSecretsNeverShowInLogsEventsOrStatus(t *testing.T) {
	t.Parallel()
	const ns = "secrets"
	f := fixture.New(t, cp.Client, ns)
	promToken, slackPath, gitPassword := secret(t, "prom-"), "T0"+secret(t, "")+"/B0"+secret(t, "slack-"), secret(t, "git-")

	// A Prometheus that wants the token, and refuses the first query.
	var promCalls sync.Map
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+promToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		if _, again := promCalls.LoadOrStore(r.Form.Get("query"), true); !again && r.Form.Get("query") != "vector(1)" {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"0"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(prom.Close)

	// A Slack whose webhook path is the secret, failing the first post.
	var slackMu sync.Mutex
	var slackPosts, slackDelivered int
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/"+slackPath {
			http.NotFound(w, r)
			return
		}
		slackMu.Lock()
		defer slackMu.Unlock()
		slackPosts++
		if slackPosts == 1 {
			http.Error(w, "internal_error", http.StatusInternalServerError)
			return
		}
		slackDelivered++
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(slack.Close)
	slackURL := slack.URL + "/services/" + slackPath

	// A Git server behind a proxy that wants the password.
	git := gitserver.New(t)
	git.Commit(map[string]string{"deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"})
	upstream, err := url.Parse(git.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: upstream.Scheme, Host: upstream.Host})
		r.Out.SetBasicAuth("sluice", "s3cret")
	}}
	gitProxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, _ := r.BasicAuth(); user != "sluice" || pass != gitPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gitProxy.Close)

	f.Create(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-auth", Namespace: ns}, StringData: map[string]string{"token": promToken}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack-url", Namespace: ns}, StringData: map[string]string{"address": slackURL}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns}, StringData: map[string]string{"username": "sluice", "password": gitPassword}},
		&sluicev1beta1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: ns},
			Spec: sluicev1beta1.MetricTemplateSpec{
				Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: prom.URL, SecretRef: &corev1.LocalObjectReference{Name: "prom-auth"}},
				Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}",status=~"5.."}[{{ interval }}]))`,
			},
		},
		&sluicev1beta1.AlertProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: ns},
			Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", Channel: "releases", SecretRef: &corev1.LocalObjectReference{Name: "slack-url"}},
		},
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{
				URL: gitProxy.URL + "/repo.git", Interval: metav1.Duration{Duration: time.Minute},
				SecretRef: &sourcev1.LocalObjectReference{Name: "git-auth"}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			},
		},
		// The same credentials for a repository that does not exist: the
		// fetch fails, and its error is written to the status.
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "missing", Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{
				URL: gitProxy.URL + "/missing.git", Interval: metav1.Duration{Duration: time.Minute},
				SecretRef: &sourcev1.LocalObjectReference{Name: "git-auth"}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			},
		},
		canary(ns, func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.Iterations, c.Spec.Analysis.Threshold = 3, 3
			c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{
				Name: "errors", Interval: "10s", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"},
				ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
			}}
			c.Spec.Analysis.Alerts = []sluicev1beta1.CanaryAlert{{Name: "team", Severity: sluicev1beta1.SeverityInfo, ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "slack"}}}
		}),
	)

	bin, err := binary.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 3)
	for i := range addrs {
		if addrs[i], err = controlplane.FreeAddr(); err != nil {
			t.Fatal(err)
		}
	}
	op := binary.Start(t, bin,
		"--kubeconfig="+cp.Kubeconfig, "--namespace="+ns, "--leader-elect=false",
		"--metrics-bind-address="+addrs[0], "--health-probe-bind-address="+addrs[1], "--receiver-bind-address="+addrs[2],
		"--log-level=debug", "--log-encoding=json",
	)

	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
	f.Release("podinfo:2")
	f.WaitPhase(sluicev1beta1.CanaryPhaseSucceeded, 3*time.Minute)
	controlplane.Eventually(t, time.Minute, "the sources fetched and failed", func(ctx context.Context) (bool, string) {
		var app, missing sourcev1.GitRepository
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &app); err != nil {
			return false, err.Error()
		}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "missing"}, &missing); err != nil {
			return false, err.Error()
		}
		ok, failed := meta.IsStatusConditionTrue(app.Status.Conditions, "Ready"), meta.IsStatusConditionFalse(missing.Status.Conditions, "Ready")
		return ok && failed, fmt.Sprintf("app %+v\nmissing %+v", app.Status.Conditions, missing.Status.Conditions)
	})
	controlplane.Eventually(t, time.Minute, "an alert delivered after a failed post", func(context.Context) (bool, string) {
		slackMu.Lock()
		defer slackMu.Unlock()
		return slackDelivered > 0, fmt.Sprintf("%d posts, %d delivered", slackPosts, slackDelivered)
	})

	// What the operator wrote: its output, the Events, and the objects.
	seen := map[string]string{"the operator's output": op.Output.String()}
	var events eventsv1.EventList
	var coreEvents corev1.EventList
	for name, list := range map[string]client.ObjectList{"events.k8s.io Events": &events, "core Events": &coreEvents} {
		if err := cp.Client.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(list)
		seen[name] = string(data)
	}
	for _, list := range []client.ObjectList{
		&sluicev1beta1.CanaryList{}, &sluicev1beta1.MetricTemplateList{}, &sluicev1beta1.AlertProviderList{}, &sourcev1.GitRepositoryList{},
	} {
		if err := cp.Client.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(list)
		seen[fmt.Sprintf("%T", list)] = string(data)
	}
	if len(events.Items) == 0 || !strings.Contains(seen["the operator's output"], `"level":"debug"`) {
		t.Fatalf("%d Events and no debug lines: the test reads nothing", len(events.Items))
	}
	values := map[string]string{
		"the Prometheus token":           promToken,
		"the Slack webhook URL":          slackURL,
		"the Slack webhook URL's secret": slackPath,
		"the Git password":               gitPassword,
	}
	for what, v := range values {
		for form, encoded := range encodings(v) {
			for where, text := range seen {
				if i := strings.Index(text, encoded); i >= 0 {
					t.Errorf("%s shows %s, %s: ...%s...", where, what, form, text[max(0, i-200):min(len(text), i+len(encoded)+50)])
				}
			}
		}
	}
}
