package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/process"
	testprom "sluice.dev/sluice/test/prometheus"
)

// appNamespace holds the released app, its Canary and the sync objects.
const appNamespace = "shop"

// builtins are Grafana's own variables, as a panel over the last 15
// minutes at 1 s scrapes would have them: the test's releases all fall in
// the range.
var builtins = map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "15m"}

func deployment(image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo}
spec:
  replicas: 1
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers: [{name: app, image: "` + image + `", ports: [{name: http, containerPort: 9898}]}]
`
}

// release is what the Kustomization applies beside the Deployment: a
// weighted canary on the Gateway API, gated by a webhook the test can
// fail, and judged by a metric read from the Prometheus that scrapes the
// operator (the operator's own target being up).
const release = `apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: operator-up}
spec:
  provider: {type: prometheus, address: "${PROM}"}
  query: 'sum(up{job="sluice-metrics"})'
---
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    gatewayRefs: [{name: public, namespace: gateways}]
  analysis:
    interval: 10s
    threshold: 1
    stepWeights: [50]
    metrics:
      - {name: operator-up, templateRef: {name: operator-up}, thresholdRange: {min: 1}, interval: 1m}
    webhooks:
      - {name: smoke, type: rollout, url: "${HOOK}"}
`

// The dashboard's JSON, as far as the test reads it.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

type variable struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	AllValue string          `json:"allValue"`
	Query    json.RawMessage `json:"query"`
}

// query is a PromQL expression of the dashboard, named after its panel
// and target.
type query struct {
	where string
	expr  string
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "charts", "sluice", "dashboards", "sluice.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("parse the dashboard: %v", err)
	}
	return d
}

// variableRef is a Grafana variable in an expression: $name, ${name} or
// ${name:format}.
var variableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// substitute puts each variable's value into expr, as Grafana does before
// it sends a query: the dashboard's variables with All selected, and
// Grafana's builtins. It fails on a variable the dashboard does not
// define.
func substitute(expr string, values map[string]string) (string, error) {
	var unknown []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if v, ok := values[name]; ok {
			return v
		}
		unknown = append(unknown, ref)
		return ref
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("undefined variables %v", unknown)
	}
	return out, nil
}

// queries are every panel's every target, and every query variable's
// label_values query as the series it lists, with the variables
// substituted.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	values := map[string]string{}
	for k, v := range builtins {
		values[k] = v
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			if v.AllValue == "" {
				t.Errorf("variable %s has no allValue: with All selected, Grafana would list every value it found", v.Name)
			}
			values[v.Name] = v.AllValue
		}
	}
	var out []query
	add := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s has no expression", where)
			return
		}
		substituted, err := substitute(expr, values)
		if err != nil {
			t.Errorf("%s: %v in %s", where, err, expr)
			return
		}
		out = append(out, query{where: where, expr: substituted})
	}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no queries", p.Title)
			}
			for _, target := range p.Targets {
				add(fmt.Sprintf("panel %q, query %s", p.Title, target.RefID), target.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		selector, err := labelValuesSelector(v.Query)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		add("variable "+v.Name, selector)
	}
	return out
}

// labelValuesRef is Grafana's label_values(selector, label) query.
var labelValuesRef = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// labelValuesSelector is the series selector of a query variable.
func labelValuesSelector(raw json.RawMessage) (string, error) {
	var q struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		if err := json.Unmarshal(raw, &q.Query); err != nil {
			return "", fmt.Errorf("query %s is neither a string nor an object", raw)
		}
	}
	m := labelValuesRef.FindStringSubmatch(strings.TrimSpace(q.Query))
	if m == nil {
		return "", fmt.Errorf("query %q is not label_values(selector, label)", q.Query)
	}
	return m[1], nil
}

// promResult is an instant query's answer, as /api/v1/query gives it.
type promResult struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
	Data      struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

// series is one series of a vector answer.
type series struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// instant runs expr at now and returns its series.
func instant(ctx context.Context, promURL, expr string) ([]series, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, promURL+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode the answer (%s): %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("a %s, not a vector", r.Data.ResultType)
	}
	out := make([]series, 0, len(r.Data.Result))
	for _, raw := range r.Data.Result {
		var s series
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode a series: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// problem says what is wrong with a query's answer: an error, no series,
// or only NaN (a quantile or a ratio of nothing), which a panel shows as
// no data.
func problem(ctx context.Context, promURL string, q query) string {
	got, err := instant(ctx, promURL, q.expr)
	switch {
	case err != nil:
		return err.Error()
	case len(got) == 0:
		return "no series"
	}
	for _, s := range got {
		text, _ := s.Value[1].(string)
		if v, err := strconv.ParseFloat(text, 64); err == nil && !math.IsNaN(v) {
			return ""
		}
	}
	return fmt.Sprintf("%d series, all NaN", len(got))
}

// startOperator runs the operator as operator.New wires it, for
// appNamespace, with /metrics on a free loopback port, until the test
// ends; it returns that address. Its log goes to a file, shown when the
// test fails.
func startOperator(t *testing.T) string {
	t.Helper()
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := operator.DefaultOptions()
	opts.Namespace, opts.LeaderElection = appNamespace, false
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = addr, "0", "0"
	opts.GracefulShutdownTimeout = 5 * time.Second
	opts.Version = "monitoring-test"
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := operator.New(ctx, cp.Config, opts, zap.New(zap.WriteTo(logFile), zap.Level(zapcore.InfoLevel)))
	if err != nil {
		cancel()
		t.Fatalf("build the operator: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("the operator's log ends:\n%s", data[max(len(data)-6000, 0):])
			}
		}
		_ = logFile.Close()
	})
	return addr
}

// startPrometheus runs a real Prometheus that scrapes target as the
// Prometheus Operator scrapes the pod behind the chart's ServiceMonitor:
// its path and honorLabels, and the target labels kube-prometheus adds
// (job is the Service's name). It scrapes every second rather than the
// ServiceMonitor's interval, so that rates have data within seconds.
func startPrometheus(t *testing.T, sm *unstructured.Unstructured, target string) string {
	t.Helper()
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("the ServiceMonitor has %d endpoints, want 1", len(endpoints))
	}
	endpoint := endpoints[0].(map[string]any)
	path, _ := endpoint["path"].(string)
	honor, _ := endpoint["honorLabels"].(bool)
	if path == "" {
		path = "/metrics"
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: serviceMonitor/%[1]s/%[2]s/0
    honor_labels: %[3]t
    metrics_path: %[4]s
    static_configs:
      - targets: [%[5]q]
        labels: {job: sluice-metrics, namespace: %[1]s, service: sluice-metrics, endpoint: http-metrics, pod: sluice-6d8f7c9b5-x7k2p, container: sluice}
`, sm.GetNamespace(), sm.GetName(), honor, path, target)
	bin, err := testprom.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	proc := process.Start(t, "prometheus", dir, bin, "--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	promURL := "http://" + addr
	proc.WaitHTTP(t, http.DefaultClient, promURL+"/-/ready", func(code int) bool { return code == http.StatusOK })
	return promURL
}

// waitCanary waits until the Canary is in phase with image on its
// primary.
func waitCanary(t *testing.T, what string, phase sluicev1beta1.CanaryPhase, image string) {
	t.Helper()
	controlplane.Eventually(t, 3*time.Minute, what, func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: "podinfo"}, c); err != nil {
			return false, err.Error()
		}
		primary := &appsv1.Deployment{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: "podinfo-primary"}, primary); err != nil {
			return false, fmt.Sprintf("phase %s; primary: %v", c.Status.Phase, err)
		}
		img := primary.Spec.Template.Spec.Containers[0].Image
		return c.Status.Phase == phase && img == image,
			fmt.Sprintf("phase %s, weight %d, failed checks %d, primary %s, conditions %+v", c.Status.Phase, c.Status.CanaryWeight, c.Status.FailedChecks, img, c.Status.Conditions)
	})
}

func TestEveryDashboardPanelShowsSeriesWhilePrometheusScrapesTheOperatorThroughReleases(t *testing.T) {
	d := readDashboard(t)
	queries := d.queries(t)
	if t.Failed() {
		t.FailNow()
	}

	metricsAddr := startOperator(t)
	sm := chartMonitor(t, map[string]any{"serviceMonitor": map[string]any{"enabled": true}}, "ServiceMonitor")
	promURL := startPrometheus(t, sm, metricsAddr)

	// A Git repository with the app, released through a Kustomization.
	var failing atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	git := gitserver.New(t)
	git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:1"), "app/release.yaml": release})
	secret, repo := git.Source(appNamespace, "app", time.Second)
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}},
		secret, repo,
		&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: appNamespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "app"},
			Path:      "app", Prune: true, TargetNamespace: appNamespace, Interval: metav1.Duration{Duration: time.Minute},
			PostBuild: &syncv1.PostBuild{Substitute: map[string]string{"HOOK": hook.URL, "PROM": promURL}},
		}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	waitCanary(t, "the first commit initialized", sluicev1beta1.CanaryPhaseInitialized, "podinfo:1")

	// Promoted, rolled back, promoted: both results have series, and the
	// promotions' second observation makes the duration histogram move
	// within the dashboard's range.
	git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:2")})
	waitCanary(t, "podinfo:2 promoted", sluicev1beta1.CanaryPhaseSucceeded, "podinfo:2")
	failing.Store(true)
	git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:3")})
	waitCanary(t, "podinfo:3 rolled back", sluicev1beta1.CanaryPhaseFailed, "podinfo:2")
	failing.Store(false)
	git.Commit(map[string]string{"app/deploy.yaml": deployment("podinfo:4")})
	waitCanary(t, "podinfo:4 promoted", sluicev1beta1.CanaryPhaseSucceeded, "podinfo:4")

	// Prometheus has scraped the last release once it shows two
	// promotions; then every query must answer, within a few scrapes.
	controlplane.Eventually(t, 30*time.Second, "Prometheus scraped both promotions", func(ctx context.Context) (bool, string) {
		got, err := instant(ctx, promURL, `sluice_canary_releases_total{namespace="`+appNamespace+`",result="succeeded"} >= 2`)
		if err != nil {
			return false, err.Error()
		}
		return len(got) > 0, "no series"
	})
	// Each attempt runs every query to the end, so that a failure lists
	// the panels of a whole attempt.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var failed []string
		for _, q := range queries {
			if p := problem(t.Context(), promURL, q); p != "" {
				failed = append(failed, fmt.Sprintf("%s: %s\n    %s", q.where, p, q.expr))
			}
		}
		if len(failed) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the dashboard's %d queries fail 30s after the last release:\n  %s", len(failed), len(queries), strings.Join(failed, "\n  "))
		}
		time.Sleep(time.Second)
	}
	t.Logf("all %d queries of the dashboard returned series", len(queries))

	// The variables list what a user picks from: the Canary's own
	// namespace (the metric's label, kept by honorLabels), its name, the
	// job and the controllers.
	for _, tc := range []struct {
		expr, label, want string
	}{
		{expr: `sluice_canary_status`, label: "namespace", want: appNamespace},
		{expr: `sluice_canary_status`, label: "name", want: "podinfo"},
		{expr: `sluice_info`, label: "job", want: "sluice-metrics"},
		{expr: `controller_runtime_reconcile_total`, label: "controller", want: "canary"},
		{expr: `controller_runtime_reconcile_total`, label: "controller", want: "kustomization"},
		{expr: `controller_runtime_reconcile_total`, label: "controller", want: "gitrepository"},
	} {
		got, err := instant(t.Context(), promURL, tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		var values []string
		for _, s := range got {
			values = append(values, s.Metric[tc.label])
		}
		if !slices.Contains(values, tc.want) {
			t.Errorf("%s has %s values %v, want %s among them", tc.expr, tc.label, values, tc.want)
		}
	}

	// The sync objects' state, as Flux's controllers export it: the Git
	// repository and the Kustomization are Ready, and not suspended...
	app := map[string]string{"name": "app", "namespace": appNamespace}
	wantSeries(t, promURL, "the GitRepository is Ready",
		`gotk_reconcile_condition{kind="GitRepository",type="Ready",status="True"} == 1`, app)
	wantSeries(t, promURL, "the Kustomization is Ready",
		`gotk_reconcile_condition{kind="Kustomization",type="Ready",status="True"} == 1`, app)
	wantSeries(t, promURL, "the Kustomization is not suspended", `gotk_suspend_status{kind="Kustomization"} == 0`, app)
	// ...until its path is gone: Flux's documented alert rule fires for
	// it. Suspended, it says so.
	ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: appNamespace}}
	patch := func(spec string) {
		if err := cp.Client.Patch(t.Context(), ks, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`))); err != nil {
			t.Fatal(err)
		}
	}
	patch(`{"path":"gone"}`)
	const fluxFailureRule = `max(gotk_reconcile_condition{status="False",type="Ready"}) by (namespace, name, kind) + on(namespace, name, kind) (max(gotk_reconcile_condition{status="Deleted"}) by (namespace, name, kind)) * 2 == 1`
	wantSeries(t, promURL, "Flux's alert rule fires for the failing Kustomization", fluxFailureRule,
		map[string]string{"kind": "Kustomization", "name": "app", "namespace": appNamespace})
	patch(`{"suspend":true}`)
	wantSeries(t, promURL, "the Kustomization is suspended", `gotk_suspend_status{kind="Kustomization"} == 1`, app)
}

// wantSeries waits until expr returns a series with labels.
func wantSeries(t *testing.T, promURL, what, expr string, labels map[string]string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, what, func(ctx context.Context) (bool, string) {
		got, err := instant(ctx, promURL, expr)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, s := range got {
			match := true
			for k, v := range labels {
				match = match && s.Metric[k] == v
			}
			if match {
				return true, ""
			}
			seen = append(seen, fmt.Sprint(s.Metric))
		}
		return false, fmt.Sprintf("%s returned %d series, none with %v: %v", expr, len(got), labels, seen)
	})
}
