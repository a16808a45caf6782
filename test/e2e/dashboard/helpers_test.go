package dashboard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/dashboard"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
	testprom "sluice.dev/sluice/test/prometheus"
)

// ScreenshotsEnv names the folder the tests write their screenshots to,
// when it is set: `make screenshots` sets it to docs/images.
const ScreenshotsEnv = "SLUICE_SCREENSHOTS"

// startDashboard serves a dashboard that acts as cfg's user on a free
// loopback port, through the constructor `sluicectl dashboard` uses, until
// the test ends. It returns the dashboard's URL, ending in "/".
func startDashboard(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	var mu sync.Mutex
	done := false
	s, err := dashboard.Listen(cfg, "127.0.0.1:0", dashboard.Options{ErrorLog: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("dashboard: %v", err)
		}
	}})
	if err != nil {
		t.Fatalf("start the dashboard: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("dashboard: %v", err)
		}
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return s.URL
}

// newTab opens a browser tab with a 1280x800 viewport, closed when the
// test ends.
func newTab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// run runs browser actions, failing the test on an error.
func run(t testing.TB, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// evaluate evaluates a script in the tab and returns its value.
func evaluate[T any](t testing.TB, tab context.Context, script string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](script))
	if err != nil {
		t.Fatalf("evaluate %s: %v", script, err)
	}
	return v
}

// waitPage waits until the script evaluates to a value that ok accepts,
// and returns it.
func waitPage[T any](t *testing.T, tab context.Context, timeout time.Duration, what, script string, ok func(T) bool) T {
	t.Helper()
	var v T
	controlplane.Eventually(t, timeout, what, func(context.Context) (bool, string) {
		next, err := chromedp.Run(tab, chromedp.Evaluate[T](script))
		if err != nil {
			return false, err.Error()
		}
		v = next
		return ok(v), fmt.Sprintf("the page has %v", v)
	})
	return v
}

// screenshot writes the tab's viewport to name in the screenshots folder,
// when there is one.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(controlplane.RepoRoot(), dir)
	}
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("take a screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// rollout is a namespace with the podinfo Deployment, an exporter whose
// request metrics a Prometheus scrapes, and the operator.
type rollout struct {
	*fixture.Namespace
	exporter *testprom.Exporter
}

// newRollout starts everything for a release of podinfo in ns.
func newRollout(t *testing.T, ns string) *rollout {
	t.Helper()
	f := &rollout{Namespace: fixture.New(t, cp.Client, ns), exporter: testprom.StartExporter(t)}
	prom := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{Addr: f.exporter.Addr}}})
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), func(o *operator.Options) {
		o.MetricsServer = prom.URL
	})
	return f
}

// metrics are two checks of the exporter's requests: the share that
// succeeds, and the 99th percentile latency in milliseconds.
func metrics() []sluicev1beta1.CanaryMetric {
	return []sluicev1beta1.CanaryMetric{
		{
			Name: "success-rate", Interval: "10s",
			Query:          `sum(rate(http_request_duration_seconds_count{status!~"5.."}[{{ interval }}])) / sum(rate(http_request_duration_seconds_count[{{ interval }}])) * 100`,
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
		},
		{
			Name: "latency", Interval: "10s",
			Query:          `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[{{ interval }}])) by (le)) * 1000`,
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)},
		},
	}
}

// canary creates the Canary of a Deployment named name, routed with the
// Gateway API, with analysis.
func canary(t *testing.T, ns, name string, analysis sluicev1beta1.CanaryAnalysis, labels map[string]string) *sluicev1beta1.Canary {
	t.Helper()
	if analysis.Interval == "" {
		analysis.Interval = "10s"
	}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "gatewayapi:v1",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service: sluicev1beta1.CanaryService{
				Port: 80, TargetPort: intstr.FromString("http"),
				GatewayRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateway"))}},
			},
			Analysis: &analysis,
		},
	}
	create(t, c)
	return c
}

// deployment creates a Deployment of one replica that runs image.
func deployment(t *testing.T, ns, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	create(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}}}},
			},
		},
	})
}

func namespace(t testing.TB, name string) {
	t.Helper()
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}
