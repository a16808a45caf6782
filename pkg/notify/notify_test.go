package notify_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/notify"
)

const (
	info  = sluicev1beta1.SeverityInfo
	warn  = sluicev1beta1.SeverityWarn
	fatal = sluicev1beta1.SeverityError
)

func TestAProviderReceivesTheAlertsOfItsSeverityAndAbove(t *testing.T) {
	tests := []struct {
		provider, event sluicev1beta1.AlertSeverity
		sent            bool
	}{
		{provider: info, event: info, sent: true},
		{provider: info, event: warn, sent: true},
		{provider: info, event: fatal, sent: true},
		{provider: warn, event: info, sent: false},
		{provider: warn, event: warn, sent: true},
		{provider: warn, event: fatal, sent: true},
		{provider: fatal, event: info, sent: false},
		{provider: fatal, event: warn, sent: false},
		{provider: fatal, event: fatal, sent: true},
	}
	rc := newReceiver(t, nil)
	// One worker posts in the order of the queue: once the info provider,
	// listed last, has an alert, the others have had theirs.
	d, _ := start(t, notify.Options{Workers: 1})
	e := newEnv(t)
	for _, s := range []sluicev1beta1.AlertSeverity{info, warn, fatal} {
		e.provider(string(s), sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/" + string(s)}, nil)
	}
	c := e.canary(alertTo("error", fatal), alertTo("warn", warn), alertTo("info", info))

	sent := map[sluicev1beta1.AlertSeverity]int{}
	for i, event := range []sluicev1beta1.AlertSeverity{info, warn, fatal} {
		if err := d.Notify(t.Context(), c, alert.Canary{Severity: event, Reason: "Test", Message: "a " + string(event) + " event"}); err != nil {
			t.Fatal(err)
		}
		rc.waitFor(t, "/info", i+1)
		for _, tt := range tests {
			if tt.event != event {
				continue
			}
			if tt.sent {
				sent[tt.provider]++
			}
			if got := len(rc.requests("/" + string(tt.provider))); got != sent[tt.provider] {
				t.Errorf("after a %s event, a %s provider has %d alerts, want %d (sent: %v)", event, tt.provider, got, sent[tt.provider], tt.sent)
			}
		}
	}
}

func TestACanaryWithoutAlertsUsesTheDefaultProviders(t *testing.T) {
	rc := newReceiver(t, nil)
	ops := newEnv(t)
	ops.provider("global", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/global"}, nil)
	d, _ := start(t, notify.Options{Workers: 1, Defaults: []notify.Route{{Provider: types.NamespacedName{Namespace: ops.ns, Name: "global"}, Severity: warn}}})

	withAlerts := newEnv(t)
	withAlerts.provider("own", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/own"}, nil)
	if err := d.Notify(t.Context(), withAlerts.canary(alertTo("own", info)), rollback()); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, "/own", 1)

	without := newEnv(t).canary()
	for _, a := range []alert.Canary{{Severity: info, Reason: "Below", Message: "below the default severity"}, rollback()} {
		if err := d.Notify(t.Context(), without, a); err != nil {
			t.Fatal(err)
		}
	}
	// One worker: the Canary with alerts was served first, so had it also
	// gone to the default provider, that would show now.
	got := rc.waitFor(t, "/global", 1)
	var m slackWebhook
	decodeStrict(t, got[0].Body, &m)
	if len(got) != 1 || !strings.HasPrefix(m.Text, "podinfo."+without.Namespace+": Rolling back") {
		t.Errorf("the default provider got %d alerts, the first %q; want only the rollback of the Canary without alerts", len(got), m.Text)
	}
}

func TestAMessageTemplateReplacesTheDefaultText(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		// want is the whole text; fallback is the reason appended to the
		// default text when the template cannot be used.
		want, fallback string
	}{
		{
			name: "a template renders the alert's data",
			tmpl: `{{.Severity}} {{.Reason}} of {{.Target}} at {{.Weight}}% ({{.Phase}}, {{.FailedChecks}} failed checks)` +
				`{{with .Metric}}: {{.Name}} = {{.Value}}, min {{.Min}}, {{.Range}}{{end}} in {{.Cluster}}`,
			want: "error RolledBack of Deployment/podinfo at 20% (Progressing, 2 failed checks): request-success-rate = 98.5, min 99, at least 99 in prod-eu",
		},
		{name: "a template that does not parse falls back", tmpl: "{{.Name", fallback: "unclosed action"},
		{name: "a template that fails to execute falls back", tmpl: "{{.Metric.Nope}}", fallback: "can't evaluate field Nope"},
		{name: "a loop falls back", tmpl: "{{range 100000000}}{{.Message}}{{end}}", fallback: "range is not allowed"},
		{name: "a recursive template falls back", tmpl: `{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`, fallback: "template is not allowed"},
		{name: "a printf that would allocate a gigabyte falls back", tmpl: `{{printf "%999999999d" 1}}`, fallback: "widths above 256"},
		{name: "a template that renders nothing falls back", tmpl: `{{if false}}x{{end}}`, fallback: "renders no text"},
	}
	rc := newReceiver(t, answerLikeTheService)
	d, _ := start(t, notify.Options{ClusterName: "prod-eu"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: "gchat", Address: rc.URL + "/" + e.ns, MessageTemplate: tt.tmpl}, nil)
			if err := d.Notify(t.Context(), e.canary(alertTo("chat", info)), rollback()); err != nil {
				t.Fatal(err)
			}
			var m gchatWebhook
			decodeStrict(t, rc.waitFor(t, "/"+e.ns, 1)[0].Body, &m)
			if tt.fallback == "" {
				if m.Text != tt.want {
					t.Errorf("text = %q, want %q", m.Text, tt.want)
				}
				return
			}
			defaultText := "podinfo." + e.ns + " in prod-eu: " + rollback().Message + "\nMetric request-success-rate is 98.5, expected at least 99"
			if !strings.HasPrefix(m.Text, defaultText+"\n(messageTemplate not used: ") || !strings.Contains(m.Text, tt.fallback) {
				t.Errorf("text = %q, want the default text and the reason %q", m.Text, tt.fallback)
			}
		})
	}
}

func TestASlackBotTokenPostsToChatPostMessage(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		// dropped is the error logged when the alert is dropped; empty
		// when it is sent.
		dropped string
	}{
		{name: "an ok answer is a success", answer: `{"ok":true,"channel":"C123ABC456","ts":"1503435956.000247","message":{"text":"..."}}`},
		{name: "ok false is a failure that a retry would repeat", answer: `{"ok":false,"error":"channel_not_found"}`, dropped: "channel_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				_, _ = io.WriteString(w, tt.answer)
			})
			d, logs := start(t, notify.Options{})
			e := newEnv(t)
			e.provider("slack", sluicev1beta1.AlertProviderSpec{Type: "slack", Channel: "#deploys"}, map[string]string{"token": "xoxb-1234", "address": rc.URL + "/api"})
			if err := d.Notify(t.Context(), e.canary(alertTo("slack", info)), rollback()); err != nil {
				t.Fatal(err)
			}

			var line map[string]any
			if tt.dropped == "" {
				line = logs.waitFor(t, "alert sent", 1)[0]
			} else {
				line = logs.waitFor(t, "alert dropped", 1)[0]
				if err, _ := line["error"].(string); !strings.Contains(err, tt.dropped) {
					t.Errorf("dropped with %q, want %q", err, tt.dropped)
				}
			}
			got := rc.requests("/api/chat.postMessage")
			if len(got) != 1 || line["attempts"] != 1.0 {
				t.Fatalf("%d requests to /api/chat.postMessage, log %v; want exactly one", len(got), line)
			}
			if auth := got[0].Header.Get("Authorization"); auth != "Bearer xoxb-1234" {
				t.Errorf("Authorization = %q, want the bot token as a bearer token", auth)
			}
			var m slackWebhook
			decodeStrict(t, got[0].Body, &m)
			if m.Channel != "#deploys" || !strings.HasPrefix(m.Text, "podinfo.") {
				t.Errorf("message = %+v, want the channel and the text", m)
			}
		})
	}
}

// answer is one canned answer of a receiver.
type answer struct {
	code   int
	header map[string]string
	body   string
}

func TestAFailedPostIsRetriedWithBackoff(t *testing.T) {
	fast := notify.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 3}
	patient := notify.Backoff{Initial: 10 * time.Millisecond, Max: 5 * time.Second, Attempts: 3}
	tests := []struct {
		name    string
		backoff notify.Backoff
		// answers are given in turn; the last one repeats.
		answers  []answer
		requests int
		// logged is the final log line; minGap the least time between
		// two requests.
		logged string
		minGap time.Duration
	}{
		{
			name:     "a 500 is retried until the service answers",
			backoff:  fast,
			answers:  []answer{{code: 500, body: "rollup_error"}, {code: 500, body: "rollup_error"}, {code: 200, body: "ok"}},
			requests: 3, logged: "alert sent",
		},
		{
			name:     "a 429 waits for Retry-After",
			backoff:  patient,
			answers:  []answer{{code: 429, header: map[string]string{"Retry-After": "1"}, body: "rate_limited"}, {code: 200, body: "ok"}},
			requests: 2, logged: "alert sent", minGap: time.Second,
		},
		{
			name:    "a 429 waits for Discord's retry_after",
			backoff: patient,
			answers: []answer{
				{code: 429, header: map[string]string{"Content-Type": "application/json"}, body: `{"message":"You are being rate limited.","retry_after":0.5,"global":false}`},
				{code: 204},
			},
			requests: 2, logged: "alert sent", minGap: 500 * time.Millisecond,
		},
		{
			name:     "a service still down after the last attempt is given up",
			backoff:  fast,
			answers:  []answer{{code: 503, body: "service unavailable"}},
			requests: 3, logged: "alert dropped",
		},
		{
			name:     "a refused request is not retried",
			backoff:  fast,
			answers:  []answer{{code: 400, body: "invalid_payload"}},
			requests: 1, logged: "alert dropped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, before int) {
				a := tt.answers[min(before, len(tt.answers)-1)]
				for k, v := range a.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(a.code)
				_, _ = io.WriteString(w, a.body)
			})
			d, logs := start(t, notify.Options{Backoff: tt.backoff})
			e := newEnv(t)
			e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/hook"}, nil)
			if err := d.Notify(t.Context(), e.canary(alertTo("chat", info)), rollback()); err != nil {
				t.Fatal(err)
			}

			line := logs.waitFor(t, tt.logged, 1)[0]
			got := rc.requests("/hook")
			if len(got) != tt.requests || line["attempts"] != float64(tt.requests) {
				t.Fatalf("%d requests, logged %v; want %d attempts", len(got), line, tt.requests)
			}
			for i := 1; i < len(got); i++ {
				if gap := got[i].At.Sub(got[i-1].At); gap < tt.minGap {
					t.Errorf("request %d came %s after the one before, want at least %s", i, gap, tt.minGap)
				}
			}
			if n := len(logs.with("alert dropped")) + len(logs.with("alert sent")); n != 1 {
				t.Errorf("%d final log lines, want one", n)
			}
		})
	}
}

func TestNotifyReturnsPromptlyWhileTheServiceHangs(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	d, logs := start(t, notify.Options{Workers: 1, QueueSize: 1, Timeout: time.Minute})
	e := newEnv(t)
	e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: "msteams", Address: rc.URL + "/hook"}, nil)
	c := e.canary(alertTo("chat", info))

	// One alert is being posted and one waits: the others do not fit.
	const alerts = 5
	for i := range alerts {
		began := time.Now()
		if err := d.Notify(t.Context(), c, rollback()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took > time.Second {
			t.Fatalf("Notify %d took %s while the service hangs", i, took)
		}
	}
	for _, line := range logs.waitFor(t, "alert dropped", alerts-2) {
		if line["error"] != "alert queue is full" || line["alertProvider"] != e.ns+"/chat" || line["canary"] != e.ns+"/podinfo" {
			t.Errorf("log line %v, want the full queue, the AlertProvider and the Canary", line)
		}
	}
}

func TestAServiceThatIsDownDoesNotHoldUpAlertsToAnother(t *testing.T) {
	down := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusServiceUnavailable) })
	up := newReceiver(t, nil)
	// One worker and a long backoff: a worker that slept through the
	// backoff would keep the second alert waiting for a minute.
	d, _ := start(t, notify.Options{Workers: 1, Backoff: notify.Backoff{Initial: time.Minute, Max: time.Minute, Attempts: 3}})
	e := newEnv(t)
	e.provider("down", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: down.URL + "/down"}, nil)
	e.provider("up", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: up.URL + "/up"}, nil)
	c := e.canary(alertTo("down", info), alertTo("up", info))
	if err := d.Notify(t.Context(), c, rollback()); err != nil {
		t.Fatal(err)
	}
	down.waitFor(t, "/down", 1)
	up.waitFor(t, "/up", 1)
	if n := len(down.requests("/down")); n != 1 {
		t.Fatalf("the down service got %d posts before its backoff ended, want 1", n)
	}
}

func TestAnAlertProviderThatCannotBeResolvedIsReportedByItsField(t *testing.T) {
	tests := []struct {
		name string
		// second creates what the Canary's second alert names.
		second func(e *env) sluicev1beta1.CanaryAlert
		want   string
	}{
		{
			name:   "a missing AlertProvider",
			second: func(*env) sluicev1beta1.CanaryAlert { return alertTo("absent", info) },
			want:   `alertproviders.sluice.dev "absent" not found`,
		},
		{
			name: "a missing Secret",
			second: func(e *env) sluicev1beta1.CanaryAlert {
				e.create(&sluicev1beta1.AlertProvider{
					ObjectMeta: metav1.ObjectMeta{Name: "secretless", Namespace: e.ns},
					Spec:       sluicev1beta1.AlertProviderSpec{Type: "slack", SecretRef: &corev1.LocalObjectReference{Name: "absent"}},
				})
				return alertTo("secretless", info)
			},
			want: "spec.secretRef: Secret notify-",
			// and then the namespace and "/absent not found".
		},
		{
			name: "a Secret without an address",
			second: func(e *env) sluicev1beta1.CanaryAlert {
				e.provider("addressless", sluicev1beta1.AlertProviderSpec{Type: "gchat"}, map[string]string{"token": "unused"})
				return alertTo("addressless", info)
			},
			want: "no address",
		},
		{
			name: "a providerRef of another kind",
			second: func(*env) sluicev1beta1.CanaryAlert {
				a := alertTo("chat", info)
				a.ProviderRef.Kind = "Secret"
				return a
			},
			want: `kind "Secret" is not AlertProvider`,
		},
	}
	rc := newReceiver(t, nil)
	d, _ := start(t, notify.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/" + e.ns}, nil)
			c := e.canary(alertTo("chat", info), tt.second(e))

			err := d.Notify(t.Context(), c, rollback())
			if err == nil || !strings.Contains(err.Error(), "spec.analysis.alerts[1].providerRef: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Notify = %v, want an error on spec.analysis.alerts[1].providerRef saying %s", err, tt.want)
			}
			rc.waitFor(t, "/"+e.ns, 1)
		})
	}
}

func TestTheAddressComesFromTheSecretAndThePostGoesThroughTheProxy(t *testing.T) {
	rc := newReceiver(t, nil)
	proxy := newReceiver(t, nil)
	d, logs := start(t, notify.Options{})
	e := newEnv(t)
	e.provider("direct", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: "http://spec.example.invalid/hook"}, map[string]string{"address": rc.URL + "/from-secret"})
	// The proxy gets the request for the chat service in absolute form.
	e.provider("proxied", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: "http://chat.example.invalid/services/T000/B000/XXXX", Proxy: proxy.URL}, nil)
	if err := d.Notify(t.Context(), e.canary(alertTo("direct", info), alertTo("proxied", info)), rollback()); err != nil {
		t.Fatal(err)
	}

	rc.waitFor(t, "/from-secret", 1)
	if got := proxy.waitFor(t, "/services/T000/B000/XXXX", 1)[0]; got.RequestURI != "http://chat.example.invalid/services/T000/B000/XXXX" {
		t.Errorf("the proxy got %s, want the chat service's URL", got.RequestURI)
	}
	logs.waitFor(t, "alert sent", 2)
}

func TestParseRouteReadsAFlag(t *testing.T) {
	tests := []struct {
		provider string
		severity sluicev1beta1.AlertSeverity
		want     notify.Route
		wantErr  bool
	}{
		{provider: "ops/slack", severity: warn, want: notify.Route{Provider: types.NamespacedName{Namespace: "ops", Name: "slack"}, Severity: warn}},
		{provider: "slack", severity: info, want: notify.Route{Provider: types.NamespacedName{Name: "slack"}, Severity: info}},
		{provider: "ops/", severity: info, wantErr: true},
		{provider: "/slack", severity: info, wantErr: true},
		{provider: "a/b/c", severity: info, wantErr: true},
		{provider: "", severity: info, wantErr: true},
		{provider: "ops/slack", severity: "critical", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.provider, tt.severity), func(t *testing.T) {
			got, err := notify.ParseRoute(tt.provider, tt.severity)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseRoute = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
