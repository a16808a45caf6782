package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// noReader stands in for the cache: sending reads nothing.
type noReader struct{ client.Reader }

const testSHA = "0123456789abcdef0123456789abcdef01234567"

// syncNote is a Kustomization's failed build, as an Alert sends it.
func syncNote(typ string) note {
	e := Event{
		InvolvedObject:      corev1.ObjectReference{Kind: "Kustomization", APIVersion: "sync.sluice.dev/v1", Namespace: "apps", Name: "podinfo"},
		Severity:            severityError,
		Timestamp:           metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)),
		Message:             "kustomize build failed: accumulating resources: missing.yaml: no such file",
		Reason:              "BuildFailed",
		Metadata:            map[string]string{metaRevision: "main@sha1:" + testSHA, metaSummary: "prod cluster"},
		ReportingController: "sluice-sync",
	}
	return note{event: e, message: eventMessage(e, "prod", escapeFor(typ)), labels: map[string]string{"app.kubernetes.io/name": "podinfo"}}
}

// decodeStrictly decodes JSON into the documented shape; a field the
// documentation does not have fails.
func decodeStrictly(t *testing.T, body []byte, into any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
}

func TestEachServicePostsItsDocumentedRequestForASyncEvent(t *testing.T) {
	tests := []struct {
		name   string
		target target
		// path is where the service is called; check reads the request.
		path  string
		check func(t *testing.T, r *http.Request, body []byte)
		// answer is the service's answer on success.
		answer string
	}{
		{
			name:   "generic posts Flux's event with the Secret's headers",
			target: target{typ: "generic", address: "/hook", headers: map[string]string{"X-Team": "platform"}},
			path:   "/hook",
			check: func(t *testing.T, r *http.Request, body []byte) {
				if r.Header.Get("X-Team") != "platform" {
					t.Errorf("X-Team %q", r.Header.Get("X-Team"))
				}
				var e Event
				decodeStrictly(t, body, &e)
				if e.InvolvedObject.Kind != "Kustomization" || e.Severity != "error" || e.Reason != "BuildFailed" || e.Metadata["revision"] != "main@sha1:"+testSHA {
					t.Errorf("event %+v", e)
				}
			},
		},
		{
			name:   "generic-hmac signs the body with the token",
			target: target{typ: "generic-hmac", address: "/hook", token: "s3cret"},
			path:   "/hook",
			check: func(t *testing.T, r *http.Request, body []byte) {
				mac := hmac.New(sha256.New, []byte("s3cret"))
				mac.Write(body)
				if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.Header.Get("X-Signature") != want {
					t.Errorf("X-Signature %q, want %q", r.Header.Get("X-Signature"), want)
				}
			},
		},
		{
			name:   "alertmanager posts a postableAlert labelled with the object and its labels",
			target: target{typ: "alertmanager", address: "/"},
			path:   "/api/v2/alerts",
			check: func(t *testing.T, _ *http.Request, body []byte) {
				var alerts []struct {
					Labels       map[string]string `json:"labels"`
					Annotations  map[string]string `json:"annotations"`
					StartsAt     time.Time         `json:"startsAt"`
					EndsAt       time.Time         `json:"endsAt"`
					GeneratorURL string            `json:"generatorURL"`
				}
				decodeStrictly(t, body, &alerts)
				if len(alerts) != 1 {
					t.Fatalf("%d alerts", len(alerts))
				}
				want := map[string]string{
					"alertname": "SluiceKustomizationBuildFailed", "severity": "error", "reason": "BuildFailed", "kind": "Kustomization",
					"name": "podinfo", "namespace": "apps", "app_kubernetes_io_name": "podinfo", "revision": "main@sha1:" + testSHA,
				}
				for k, v := range want {
					if alerts[0].Labels[k] != v {
						t.Errorf("label %s = %q, want %q (labels %v)", k, alerts[0].Labels[k], v, alerts[0].Labels)
					}
				}
				if !strings.Contains(alerts[0].Annotations["message"], "missing.yaml") || alerts[0].Annotations["summary"] != "prod cluster" {
					t.Errorf("annotations %v", alerts[0].Annotations)
				}
			},
		},
		{
			name:   "github sets a failure commit status on the revision's commit",
			target: target{typ: "github", address: "/acme/podinfo.git", token: "ghp_x", uid: "5b3c6a1e-0000-4000-8000-000000000000"},
			path:   "/api/v3/repos/acme/podinfo/statuses/" + testSHA,
			check: func(t *testing.T, r *http.Request, body []byte) {
				if r.Header.Get("Authorization") != "Bearer ghp_x" || r.Header.Get("Accept") != "application/vnd.github+json" {
					t.Errorf("headers %v", r.Header)
				}
				var s struct {
					State       string `json:"state"`
					TargetURL   string `json:"target_url"`
					Description string `json:"description"`
					Context     string `json:"context"`
				}
				decodeStrictly(t, body, &s)
				if s.State != "failure" || s.Context != "kustomization/podinfo/5b3c6a1e" || len([]rune(s.Description)) > 140 || !strings.HasPrefix(s.Description, "BuildFailed: ") {
					t.Errorf("status %+v", s)
				}
			},
		},
		{
			name:   "gitlab sets a failed commit status on the project by its encoded path",
			target: target{typ: "gitlab", address: "/group/sub/podinfo", token: "glpat-x", uid: "5b3c6a1e-0000"},
			path:   "/api/v4/projects/group%2Fsub%2Fpodinfo/statuses/" + testSHA,
			check: func(t *testing.T, r *http.Request, body []byte) {
				if r.Header.Get("PRIVATE-TOKEN") != "glpat-x" {
					t.Errorf("PRIVATE-TOKEN %q", r.Header.Get("PRIVATE-TOKEN"))
				}
				var s struct {
					State       string `json:"state"`
					Name        string `json:"name"`
					Description string `json:"description"`
				}
				decodeStrictly(t, body, &s)
				if s.State != "failed" || s.Name != "kustomization/podinfo/5b3c6a1e" {
					t.Errorf("status %+v", s)
				}
			},
		},
		{
			name:   "grafana posts an annotation tagged with the object",
			target: target{typ: "grafana", address: "/", token: "glsa_x"},
			path:   "/api/annotations",
			check: func(t *testing.T, r *http.Request, body []byte) {
				if r.Header.Get("Authorization") != "Bearer glsa_x" {
					t.Errorf("Authorization %q", r.Header.Get("Authorization"))
				}
				var a struct {
					Time int64    `json:"time"`
					Tags []string `json:"tags"`
					Text string   `json:"text"`
				}
				decodeStrictly(t, body, &a)
				if a.Time != time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixMilli() || !strings.Contains(strings.Join(a.Tags, ","), "kustomization,podinfo,apps,error") || !strings.Contains(a.Text, "missing.yaml") {
					t.Errorf("annotation %+v", a)
				}
			},
		},
		{
			name:   "telegram sends the text to the chat with the bot token in the path",
			target: target{typ: "telegram", address: "/", token: "123:ABC", channel: "-1001"},
			path:   "/bot123:ABC/sendMessage",
			answer: `{"ok":true,"result":{}}`,
			check: func(t *testing.T, _ *http.Request, body []byte) {
				var m struct {
					ChatID string `json:"chat_id"`
					Text   string `json:"text"`
				}
				decodeStrictly(t, body, &m)
				if m.ChatID != "-1001" || !strings.Contains(m.Text, "kustomization/podinfo.apps BuildFailed") || !strings.Contains(m.Text, "revision: main@sha1:") {
					t.Errorf("message %+v", m)
				}
			},
		},
		{
			name:   "slack shows the revision as a field",
			target: target{typ: "slack", address: "/services/T0/B0/x"},
			path:   "/services/T0/B0/x",
			check: func(t *testing.T, _ *http.Request, body []byte) {
				var m slackMessage
				decodeStrictly(t, body, &m)
				if len(m.Attachments) != 1 || m.Attachments[0].Color != "#A30200" || m.Attachments[0].Fields[0].Title != "revision" {
					t.Errorf("message %+v", m)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.EscapedPath() != tt.path || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
					got <- errors.New(r.Method + " " + r.URL.EscapedPath() + " " + r.Header.Get("Content-Type"))
					http.NotFound(w, r)
					return
				}
				tt.check(t, r, body)
				_, _ = io.WriteString(w, cmpOr(tt.answer, "ok"))
				got <- nil
			}))
			defer srv.Close()
			tgt := tt.target
			tgt.address = srv.URL + tgt.address
			svc, err := lookup(tgt.typ)
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.build(tgt, syncNote(tgt.typ))
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDispatcher(Options{Reader: noReader{}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.send(context.Background(), delivery{post: p, client: srv.Client()}); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatalf("unexpected request %v", err)
			}
		})
	}
}

func TestACommitStatusNeedsARevisionAndARepositoryURL(t *testing.T) {
	noRevision := syncNote("github")
	noRevision.event.Metadata = nil
	tests := []struct {
		name    string
		target  target
		note    note
		wantErr error
	}{
		{"an event without a revision has nothing to send", target{typ: "github", address: "https://github.com/acme/podinfo", token: "x"}, noRevision, errNotApplicable},
		{"an address without owner and repository is refused", target{typ: "gitlab", address: "https://gitlab.com/", token: "x"}, syncNote("gitlab"), errInvalidAddress},
		{"a missing token is named", target{typ: "github", address: "https://github.com/acme/podinfo"}, syncNote("github"), errNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := lookup(tt.target.typ)
			if _, err := svc.build(tt.target, tt.note); !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestGitHubComGoesToTheAPIHost(t *testing.T) {
	p, err := gitHub{}.build(target{typ: "github", address: "https://github.com/acme/podinfo", token: "x"}, syncNote("github"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://api.github.com/repos/acme/podinfo/statuses/" + testSHA; p.url != want {
		t.Errorf("url %s, want %s", p.url, want)
	}
}

func TestIdenticalEventsAreSentOnceInTheWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d, err := NewDispatcher(Options{Reader: noReader{}, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		after time.Duration
		key   string
		sent  bool
	}{
		{0, "a", true},
		{time.Minute, "a", false},
		{time.Minute, "b", true},
		{3*time.Minute - time.Second, "a", false},
		{time.Second, "a", true},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := d.firstInWindow(s.key); got != s.sent {
			t.Errorf("step %d (%s): sent %v, want %v", i, s.key, got, s.sent)
		}
	}
}

func TestAProvidersCACertificateMakesItsServiceTrusted(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	ca := pemCertificate(srv.Certificate().Raw)
	tests := []struct {
		name    string
		data    map[string][]byte
		trusted bool
		err     string
	}{
		{name: "ca.crt trusts the service", data: map[string][]byte{"ca.crt": ca}, trusted: true},
		{name: "the older caFile key trusts it too", data: map[string][]byte{"caFile": ca}, trusted: true},
		{name: "a Secret without a CA or a key pair is refused", data: map[string][]byte{"other": ca}, err: "no ca.crt"},
		{name: "a tls.crt without tls.key is refused", data: map[string][]byte{"ca.crt": ca, "tls.crt": ca}, err: "go together"},
		{name: "a ca.crt that is not PEM is refused", data: map[string][]byte{"ca.crt": []byte("not pem")}, err: "no PEM certificate"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsConfigOf(&corev1.Secret{Data: tt.data})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDispatcher(Options{Reader: noReader{}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := d.client("", fmt.Sprintf("ns/certs/%d", i), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := jsonPost("generic", srv.URL, map[string]string{})
			if _, err := d.send(context.Background(), delivery{post: p, client: c}); (err == nil) != tt.trusted {
				t.Errorf("send error %v, trusted %v", err, tt.trusted)
			}
			// Without the CA the same service is not trusted.
			plain, _ := d.client("", "", nil)
			if _, err := d.send(context.Background(), delivery{post: p, client: plain}); err == nil {
				t.Error("the service was trusted without its CA")
			}
		})
	}
}

func pemCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
