package notify_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/notify"
	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	// A fuzz worker runs only FuzzMessageTemplate, which needs no API
	// server; starting one in each worker process stalls fuzzing.
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// request is one request a receiver got.
type request struct {
	Method     string
	Path       string
	RequestURI string
	Header     http.Header
	Body       []byte
	At         time.Time
}

// receiver is a chat service on loopback. It records every request and
// answers with answer, which is told how many requests came before on
// the same path; by default it answers 200 "ok" as a Slack webhook does.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []request
	answer func(w http.ResponseWriter, r *http.Request, before int)
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, before int)) *receiver {
	t.Helper()
	if answer == nil {
		answer = func(w http.ResponseWriter, _ *http.Request, _ int) { _, _ = io.WriteString(w, "ok") }
	}
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		before := 0
		for _, g := range rc.got {
			if g.Path == r.URL.Path {
				before++
			}
		}
		rc.got = append(rc.got, request{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, At: time.Now()})
		rc.mu.Unlock()
		rc.answer(w, r, before)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// requests are the requests on a path so far.
func (rc *receiver) requests(path string) []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []request
	for _, g := range rc.got {
		if g.Path == path {
			out = append(out, g)
		}
	}
	return out
}

// waitFor waits until a path has had n requests and returns them.
func (rc *receiver) waitFor(t *testing.T, path string, n int) []request {
	t.Helper()
	controlplane.Eventually(t, 10*time.Second, path+" receives its alerts", func(_ context.Context) (bool, string) {
		got := len(rc.requests(path))
		return got >= n, fmt.Sprintf("%d of %d requests", got, n)
	})
	return rc.requests(path)
}

// logLines collects the dispatcher's log as decoded JSON lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) add(line string) {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		m = map[string]any{"msg": line}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m)
}

// with are the lines whose message is msg; all of them for "".
func (l *logLines) with(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) waitFor(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	controlplane.Eventually(t, 10*time.Second, "the log says "+msg, func(_ context.Context) (bool, string) {
		got := len(l.with(msg))
		return got >= n, fmt.Sprintf("%d of %d lines", got, n)
	})
	return l.with(msg)
}

// start runs a dispatcher that reads from the real API server until the
// test ends. Unset backoff fields are short, for tests.
func start(t *testing.T, opts notify.Options) (*notify.Dispatcher, *logLines) {
	t.Helper()
	logs := &logLines{}
	opts.Reader = cp.Client
	opts.Log = funcr.NewJSON(logs.add, funcr.Options{Verbosity: 1})
	if opts.Backoff == (notify.Backoff{}) {
		opts.Backoff = notify.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 3}
	}
	d, err := notify.NewDispatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("start: %v", err)
		}
		if t.Failed() {
			for _, l := range logs.with("") {
				t.Logf("dispatcher log: %v", l)
			}
		}
	})
	return d, logs
}

// env is a namespace of the real API server for one test.
type env struct {
	t  *testing.T
	ns string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "notify-"}}
	if err := cp.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ns: ns.Name}
}

func (e *env) create(objs ...client.Object) {
	e.t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(e.t.Context(), o); err != nil {
			e.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// provider creates an AlertProvider; with secret data, also its Secret.
func (e *env) provider(name string, spec sluicev1beta1.AlertProviderSpec, secret map[string]string) {
	e.t.Helper()
	if secret != nil {
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-secret", Namespace: e.ns}, StringData: secret})
		spec.SecretRef = &corev1.LocalObjectReference{Name: name + "-secret"}
	}
	e.create(&sluicev1beta1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: spec})
}

// canary creates a Canary named podinfo that sends its alerts to the
// given AlertProviders, and returns it as the API server stored it (with
// its defaults), in the middle of an analysis.
func (e *env) canary(alerts ...sluicev1beta1.CanaryAlert) *sluicev1beta1.Canary {
	e.t.Helper()
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:                 sluicev1beta1.CanaryService{Port: 9898},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Analysis:                &sluicev1beta1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50, Alerts: alerts},
		},
	}
	e.create(c)
	stored := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(e.t.Context(), client.ObjectKeyFromObject(c), stored); err != nil {
		e.t.Fatal(err)
	}
	stored.Status.Phase = sluicev1beta1.CanaryPhaseProgressing
	stored.Status.CanaryWeight = 20
	stored.Status.FailedChecks = 2
	return stored
}

// alertTo routes alerts of at least severity to an AlertProvider of the
// Canary's namespace.
func alertTo(provider string, severity sluicev1beta1.AlertSeverity) sluicev1beta1.CanaryAlert {
	return sluicev1beta1.CanaryAlert{Name: provider, Severity: severity, ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: provider}}
}

// rollback is the alert of a rollback caused by a metric.
func rollback() alert.Canary {
	return alert.Canary{
		Severity: sluicev1beta1.SeverityError,
		Reason:   "RolledBack",
		Message:  "Rolling back Deployment/podinfo: failed checks threshold reached (5): request-success-rate 98.5 < 99",
		Metric:   &alert.FailedMetric{Name: "request-success-rate", Value: "98.5", Min: ptr.To(99.0)},
	}
}

// decodeStrict decodes a JSON body and fails on fields the format's
// documentation does not have.
func decodeStrict(t *testing.T, body []byte, into any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}
