package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/pkg/receiver"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
)

// listening is an operator with its listeners on: /metrics, the probes
// and the webhook receiver, each on a free loopback port.
type listening struct {
	metrics, probes, receiver string
	logs                      *logs
}

// startListening runs the operator, as operator.New wires it, for one
// namespace, with its listeners on, until the test ends.
func startListening(t *testing.T, ns string) *listening {
	t.Helper()
	l := &listening{logs: &logs{}}
	for _, addr := range []*string{&l.metrics, &l.probes, &l.receiver} {
		a, err := controlplane.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		*addr = a
	}
	opts := operator.DefaultOptions()
	opts.Namespace, opts.LeaderElection = ns, false
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = l.metrics, l.probes, l.receiver
	opts.GracefulShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := operator.New(ctx, cp.Config, opts, l.logs.logger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
		l.logs.noPanic(t)
	})
	controlplane.Eventually(t, time.Minute, "/readyz answers 200", func(context.Context) (bool, string) {
		resp, err := http.Get("http://" + l.probes + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return l
}

// post sends body to url, announcing its length or, with chunked, in
// chunks, and returns the status code.
func post(t *testing.T, url string, body string, chunked bool) int {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	if chunked {
		// A reader of unknown length is sent in chunks.
		r = io.MultiReader(strings.NewReader(body))
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// requested is the GitRepository's reconcile request annotation.
func requested(t *testing.T, ns, name string) string {
	t.Helper()
	repo := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
		t.Fatal(err)
	}
	return repo.Annotations[sourcev1.ReconcileRequestAnnotation]
}

// drip opens a connection to addr, sends head at once and then one byte
// of drip every 500 ms, and returns how long the server kept the
// connection open.
func drip(t *testing.T, addr, head, drip string) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-closed:
			return time.Since(start)
		case <-tick.C:
			// A write may fail once the server has closed; the read says
			// so at once.
			_, _ = io.WriteString(conn, string(drip[i%len(drip)]))
		case <-time.After(2 * time.Minute):
			t.Fatal("the connection is still open after 2 minutes")
		}
	}
}

// TestTheOperatorsEndpointsRefuseOversizedCallsAndCutSlowClientsOff
// calls the webhook receiver, /metrics and the probes as an attacker
// would: with bodies over their caps, which get 413 and request no
// reconcile, and dripping a request byte by byte, which the server cuts
// off at its timeout instead of holding a connection open for it.
//
// It runs alone, before the parallel tests, so that the timings it
// measures are the server's, not a busy machine's.
func TestTheOperatorsEndpointsRefuseOversizedCallsAndCutSlowClientsOff(t *testing.T) {
	const ns = "endpoints"
	f := fixture.New(t, cp.Client, ns)
	l := startListening(t, ns)
	f.Create(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "receiver-token", Namespace: ns}, StringData: map[string]string{"token": "endpoints-token"}},
		// Suspended: the test is about the annotation, not the fetch.
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
			Spec:       sourcev1.GitRepositorySpec{URL: "https://git.example.invalid/app.git", Interval: metav1.Duration{Duration: time.Hour}, Suspend: true},
		},
		&notificationv1.Receiver{
			ObjectMeta: metav1.ObjectMeta{Name: "push", Namespace: ns},
			Spec: notificationv1.ReceiverSpec{
				Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "receiver-token"},
				Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}},
			},
		},
	)
	var hookURL string
	controlplane.Eventually(t, time.Minute, "the Receiver's path", func(ctx context.Context) (bool, string) {
		rcv := &notificationv1.Receiver{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "push"}, rcv); err != nil {
			return false, err.Error()
		}
		hookURL = "http://" + l.receiver + rcv.Status.WebhookPath
		return rcv.Status.WebhookPath != "", fmt.Sprintf("%+v", rcv.Status)
	})
	const receiverCap = 1 << 20

	t.Run("a call over the receiver's cap gets 413 and requests no reconcile", func(t *testing.T) {
		big := strings.Repeat("x", receiverCap+1)
		for _, chunked := range []bool{false, true} {
			if code := post(t, hookURL, big, chunked); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked %v: %d, want 413", chunked, code)
			}
		}
		// The annotation is written before the answer: none now is none.
		if got := requested(t, ns, "app"); got != "" {
			t.Fatalf("the GitRepository was asked to reconcile (%s) by a call over the cap", got)
		}
		if code := post(t, hookURL, `{"ref":"main"}`, false); code != http.StatusOK {
			t.Fatalf("a call within the cap: %d", code)
		}
		if requested(t, ns, "app") == "" {
			t.Fatal("a call within the cap requested no reconcile: the path does not work, so the 413 proves nothing")
		}
	})

	t.Run("a body to /metrics or the probes gets 413", func(t *testing.T) {
		big := strings.Repeat("x", operator.EndpointMaxBody+1)
		for _, url := range []string{"http://" + l.metrics + "/metrics", "http://" + l.probes + "/healthz", "http://" + l.probes + "/readyz"} {
			if code := post(t, url, big, false); code != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s: %d, want 413", url, code)
			}
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", url, resp.Status)
			}
		}
	})

	t.Run("a client that drips its headers is cut off at the header timeout", func(t *testing.T) {
		for _, e := range []struct {
			name, addr, path string
			timeout          time.Duration
		}{
			{"metrics", l.metrics, "/metrics", operator.EndpointReadHeaderTimeout},
			{"probes", l.probes, "/healthz", operator.EndpointReadHeaderTimeout},
			{"receiver", l.receiver, strings.TrimPrefix(hookURL, "http://"+l.receiver), receiver.ReadHeaderTimeout},
		} {
			t.Run(e.name, func(t *testing.T) {
				t.Parallel()
				open := drip(t, e.addr, "POST "+e.path+" HTTP/1.1\r\nHost: sluice\r\nX-Slow: ", "abcdefgh")
				if open < e.timeout-time.Second || open > e.timeout+3*time.Second {
					t.Fatalf("the connection stayed open %s, want the header timeout, %s", open.Round(time.Millisecond), e.timeout)
				}
			})
		}
	})

	t.Run("a caller that drips its body to the receiver is cut off at the read timeout and requests no reconcile", func(t *testing.T) {
		before := requested(t, ns, "app")
		path := strings.TrimPrefix(hookURL, "http://"+l.receiver)
		open := drip(t, l.receiver, "POST "+path+" HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", `"x": 1,`)
		if open < receiver.ReadTimeout-time.Second || open > receiver.ReadTimeout+3*time.Second {
			t.Fatalf("the connection stayed open %s, want the read timeout, %s", open.Round(time.Millisecond), receiver.ReadTimeout)
		}
		if after := requested(t, ns, "app"); after != before {
			t.Fatalf("the cut-off call requested a reconcile: %q became %q", before, after)
		}
	})
}

// scrapes is how many scrapes /metrics at addr served before this one,
// from its own promhttp_metric_handler_requests_total.
func scrapes(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	total := 0
	line := regexp.MustCompile(`^promhttp_metric_handler_requests_total\{code="[0-9]+"\} ([0-9]+)$`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

// TestRedirectsToTheOperatorsOwnEndpointsAreRefused gives a Canary a
// pre-rollout webhook and a metric provider that both answer with a
// redirect to the operator's own /metrics. Neither call gets there: the
// webhook fails its check, and the provider its health probe, each saying
// why, and /metrics counts no request but the test's own.
func TestRedirectsToTheOperatorsOwnEndpointsAreRefused(t *testing.T) {
	t.Parallel()
	const ns = "redirects"
	f := fixture.New(t, cp.Client, ns)
	l := startListening(t, ns)
	redirected := make(chan string, 100)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected <- r.URL.Path
		http.Redirect(w, r, "http://"+l.metrics+"/metrics", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	before := scrapes(t, l.metrics)

	f.Create(&sluicev1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: redirector.URL},
			Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}"}[{{ interval }}]))`,
		},
	})
	f.Create(canary(ns, func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "smoke", Type: sluicev1beta1.PreRolloutHook, URL: redirector.URL + "/smoke"}}
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{
			Name: "errors", Interval: "10s", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "errors"},
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
		}}
	}))
	const refused = "refused to connect to the operator's own endpoint"

	t.Run("the metric provider fails its health probe, saying why", func(t *testing.T) {
		c := f.WaitFor("MetricsReady False", time.Minute, func(c *sluicev1beta1.Canary) bool {
			cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
			return cond != nil && cond.Status == metav1.ConditionFalse
		})
		cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
		if cond.Reason != "ProviderUnhealthy" || !strings.Contains(cond.Message, "spec.analysis.metrics[0] (errors)") || !strings.Contains(cond.Message, refused) {
			t.Fatalf("MetricsReady %+v", cond)
		}
		waitWarning(t, ns, "Canary", fixture.Name, "ProviderUnhealthy", []string{refused}, time.Minute)
	})

	t.Run("the webhook fails its check, saying why, and the release rolls back", func(t *testing.T) {
		f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
		f.Release("podinfo:2")
		c := f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
		ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
		if ready == nil || !strings.Contains(ready.Message, "pre-rollout hook smoke (spec.analysis.webhooks[0])") || !strings.Contains(ready.Message, refused) {
			t.Fatalf("Ready %+v", ready)
		}
		waitWarning(t, ns, "Canary", fixture.Name, "ChecksFailed", []string{"spec.analysis.webhooks[0]", refused}, time.Minute)
		if img := f.PrimaryImage(); img != "podinfo:1" {
			t.Fatalf("the primary runs %s", img)
		}
	})

	t.Run("the operator's /metrics saw no request but the test's", func(t *testing.T) {
		paths := map[string]bool{}
		for len(redirected) > 0 {
			paths[<-redirected] = true
		}
		if !paths["/smoke"] || !paths["/api/v1/query"] {
			t.Fatalf("the redirector was called at %v: the test did not exercise both clients", paths)
		}
		if after := scrapes(t, l.metrics); after != before+1 {
			t.Fatalf("/metrics served %d requests between the test's two scrapes, want none", after-before-1)
		}
	})
}
