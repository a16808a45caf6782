package routing

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	testprom "sluice.dev/sluice/test/prometheus"
)

// measured is how a measured backend answers: a share of 500s, exactly,
// and a fixed delay.
type measured struct {
	errorRatio float64
	latency    time.Duration
}

// The measured backends: the primary fails more and answers slower than
// the canary, so that a query that reads the primary's series, or both,
// gives neither the canary's success rate nor its latency bucket.
var (
	measuredPrimary = measured{errorRatio: 0.5, latency: 700 * time.Millisecond}
	measuredCanary  = measured{errorRatio: 0.1, latency: 300 * time.Millisecond}
)

// The measured backends' ports in the network namespace. Each proxy's
// test has its own canary backend: the backend fails exactly one request
// in ten of those it serves, and two tests sharing it would split its
// failures between them unevenly.
const (
	measuredPrimaryPort       = 8083
	measuredCanaryPort        = 8084
	measuredSkipperCanaryPort = 8086
)

// TestTheBuiltInMetricsReadTheProxysOwnSeries releases through the real
// Traefik and Skipper while a Prometheus scrapes their own /metrics and
// requests go through them. The engine runs the router's built-in
// request-success-rate and request-duration: the success rate must be the
// canary backend's within a point, and the P99 in the canary's histogram
// bucket (0.25, 0.5] s.
func TestTheBuiltInMetricsReadTheProxysOwnSeries(t *testing.T) {
	prom := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{Addr: dp.traefikAPI}, {Addr: dp.skipperSupport}}})
	tests := []struct {
		provider sluicev1beta1.Provider
		proxy    func() string
		// metrics is where the proxy serves its own /metrics.
		metrics func() string
		// route creates what sends the host's traffic to the Canary.
		route func(f *routed, c *sluicev1beta1.Canary, host string)
		// canaryPort is the proxy's own measured canary backend.
		canaryPort int32
	}{
		{"traefik", func() string { return dp.traefik }, func() string { return dp.traefikAPI }, func(f *routed, _ *sluicev1beta1.Canary, host string) {
			f.Create(ingressRoute(f.Name, host))
		}, measuredCanaryPort},
		{"skipper", func() string { return dp.skipper }, func() string { return dp.skipperSupport }, func(f *routed, c *sluicev1beta1.Canary, host string) {
			f.Create(&networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.Name},
				Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
						Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
				}}}}},
			})
			c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
		}, measuredSkipperCanaryPort},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider)+" gives the canary's success rate and P99", func(t *testing.T) {
			t.Parallel()
			ns := "signals-" + string(tt.provider)
			host := ns + ".example.com"
			f := newFixtureOn(t, ns, measuredPrimaryPort, tt.canaryPort, func(o *operator.Options) { o.MetricsServer = prom.URL })
			g := newGate(t)
			f.canary(tt.provider, sluicev1beta1.CanaryAnalysis{
				Threshold: 5, StepWeight: 50,
				// Wide ranges: the test reads the values, it does not fail
				// the release on them.
				Metrics: []sluicev1beta1.CanaryMetric{
					{Name: sluicev1beta1.MetricRequestSuccessRate, Interval: "30s", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(0.0)}},
					{Name: sluicev1beta1.MetricRequestDuration, Interval: "30s", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1e6)}},
				},
				Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.ConfirmTrafficIncreaseHook, URL: g.URL}},
			}, func(c *sluicev1beta1.Canary) { tt.route(f, c, host) })
			f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
			waitServedOrLog(t, tt.proxy(), host, string(tt.provider))

			// Hold the release at weight 50 and keep traffic going while
			// the engine checks the metrics at every interval.
			f.Release("podinfo:2")
			f.WaitFor("weight 50", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.CanaryWeight == 50 })
			g.close()
			stop := load(t, tt.proxy(), host, 32)
			defer stop()
			defer func() {
				if t.Failed() {
					t.Logf("%s series of %s:\n%s", tt.provider, ns, seriesOf(tt.metrics(), ns))
				}
			}()
			checkedAfter := time.Now().Add(35 * time.Second)
			var rate, p99 float64
			controlplane.Eventually(t, 2*time.Minute, "checks of both metrics on 30 s of traffic", func(context.Context) (bool, string) {
				c := f.Canary()
				values := map[string]float64{}
				for _, m := range c.Status.Metrics {
					if m.LastCheckTime.After(checkedAfter) && m.Value != "" {
						v, err := strconv.ParseFloat(m.Value, 64)
						if err == nil {
							values[m.Name] = v
						}
					}
				}
				rate, p99 = values[sluicev1beta1.MetricRequestSuccessRate], values[sluicev1beta1.MetricRequestDuration]
				return len(values) == 2, fmt.Sprintf("metrics %+v", c.Status.Metrics)
			})
			if want := (1 - measuredCanary.errorRatio) * 100; math.Abs(rate-want) > 1 {
				t.Errorf("request-success-rate %.2f, want the canary's %.0f within a point", rate, want)
			}
			if p99 <= 250 || p99 > 500 {
				t.Errorf("request-duration %.1f ms, want it in the canary's bucket (250, 500] ms", p99)
			}
			t.Logf("%s: request-success-rate %.2f, request-duration %.1f ms", tt.provider, rate, p99)
		})
	}
}

// seriesOf lists the lines of a proxy's /metrics that name the namespace.
func seriesOf(addr, ns string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.SplitSeq(string(body), "\n") {
		if (strings.Contains(line, ns) || strings.Contains(line, strings.ReplaceAll(ns, "-", "_"))) && !strings.Contains(line, "_bucket") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// load sends requests for host through a proxy from workers at once until
// stopped, ignoring the answers: the proxy's metrics count them.
func load(t *testing.T, addr, host string, workers int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				if err != nil {
					return
				}
				req.Host = host
				if resp, err := client.Do(req); err == nil {
					_ = resp.Body.Close()
				}
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}
