package router_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/metrics"
	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/router"
	"sluice.dev/sluice/test/controlplane"
	testprom "sluice.dev/sluice/test/prometheus"
)

// role is one side of a release in the exported series, with its own
// traffic: the test gives the primary and the canary different error
// rates and latencies, so that a query that reads the primary's series,
// or both, gives a wrong answer.
type role struct {
	name       string
	errorRatio float64
	latency    time.Duration
}

var (
	primaryRole = role{name: "primary", errorRatio: 0.5, latency: 1500 * time.Millisecond}
	canaryRole  = role{name: "canary", errorRatio: 0.1, latency: 300 * time.Millisecond}
)

// proxyFormat is how one proxy exports a workload's requests, as its
// documentation gives the metric names and labels.
type proxyFormat struct {
	// requests is the counter of requests; histogram the latency
	// histogram's name without _bucket; both take the role's labels.
	requests, histogram string
	// labels are the series labels of a role.
	labels func(r role) string
	// status is the label text of a response: code is 200 or 500.
	status func(code int) string
	// milliseconds says the histogram's buckets are in milliseconds, not
	// seconds.
	milliseconds bool
	// countsAreHistogram says the requests counter is the histogram's
	// _count (the success rate reads it).
	countsAreHistogram bool
}

// The requests each role gets per second, and the histogram's bounds in
// seconds: the canary's 300 ms falls in (0.25, 0.5], the primary's 1.5 s
// in (1, 2.5].
const requestsPerSecond = 10

var bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// write renders the series of a role after elapsed seconds of traffic.
func (f proxyFormat) write(w io.Writer, r role, elapsed float64) {
	total := requestsPerSecond * elapsed
	counts := map[int]float64{200: total * (1 - r.errorRatio), 500: total * r.errorRatio}
	scale := 1.0
	if f.milliseconds {
		scale = 1000
	}
	for _, code := range []int{200, 500} {
		labels := f.labels(r) + "," + f.status(code)
		if !f.countsAreHistogram {
			fmt.Fprintf(w, "%s{%s} %g\n", f.requests, labels, counts[code])
		}
		for _, b := range bounds {
			n := 0.0
			if r.latency.Seconds() <= b {
				n = counts[code]
			}
			fmt.Fprintf(w, "%s_bucket{%s,le=\"%g\"} %g\n", f.histogram, labels, b*scale, n)
		}
		fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %g\n", f.histogram, labels, counts[code])
		fmt.Fprintf(w, "%s_count{%s} %g\n", f.histogram, labels, counts[code])
		fmt.Fprintf(w, "%s_sum{%s} %g\n", f.histogram, labels, counts[code]*r.latency.Seconds()*scale)
	}
}

// TestBuiltInQueriesReadOnlyTheCanarysSeries runs each router's built-in
// request-success-rate and request-duration queries, rendered as the
// analysis renders them, against a real Prometheus scraping series in the
// proxy's documented format, for the primary and the canary at once. The
// success rate must be the canary's within a point, and the P99 must fall
// in the canary's histogram bucket.
func TestBuiltInQueriesReadOnlyTheCanarysSeries(t *testing.T) {
	// A namespace with a hyphen, which some proxies rewrite in their
	// labels.
	const ns = "golden-signals"
	appMesh := proxyFormat{
		requests: "envoy_cluster_upstream_rq", histogram: "envoy_cluster_upstream_rq_time", milliseconds: true,
		labels: func(r role) string {
			pod := "podinfo-7d9f8b6c5d-x2x9q"
			if r == primaryRole {
				pod = "podinfo-primary-5c8d7f9b6-q8w2e"
			}
			return fmt.Sprintf(`kubernetes_namespace=%q,kubernetes_pod_name=%q,envoy_cluster_name="cds_ingress_appmesh_podinfo_http_9898"`, ns, pod)
		},
		status: func(code int) string { return fmt.Sprintf(`envoy_response_code="%d"`, code) },
	}
	tests := []struct {
		provider sluicev1beta1.Provider
		format   proxyFormat
	}{
		// https://istio.io/latest/docs/reference/config/metrics/: the
		// standard metrics istio_requests_total and
		// istio_request_duration_milliseconds, labelled by reporter,
		// destination_workload, destination_workload_namespace and
		// response_code.
		{"istio", proxyFormat{
			requests: "istio_requests_total", histogram: "istio_request_duration_milliseconds", milliseconds: true,
			labels: func(r role) string {
				return fmt.Sprintf(`reporter="destination",destination_workload_namespace=%q,destination_workload=%q`, ns, workloadName(r))
			},
			status: func(code int) string { return fmt.Sprintf(`response_code="%d"`, code) },
		}},
		// https://linkerd.io/2/reference/proxy-metrics/: response_total and
		// response_latency_ms, labelled by direction, classification
		// (success or failure), status_code, and the pod's owner
		// (deployment) and namespace.
		{"linkerd", proxyFormat{
			requests: "response_total", histogram: "response_latency_ms", milliseconds: true,
			labels: func(r role) string {
				return fmt.Sprintf(`direction="inbound",namespace=%q,deployment=%q`, ns, workloadName(r))
			},
			status: func(code int) string {
				if code >= 500 {
					return fmt.Sprintf(`classification="failure",status_code="%d"`, code)
				}
				return fmt.Sprintf(`classification="success",status_code="%d"`, code)
			},
		}},
		// https://kubernetes.github.io/ingress-nginx/user-guide/monitoring/:
		// nginx_ingress_controller_requests and
		// nginx_ingress_controller_request_duration_seconds, labelled by
		// namespace, ingress, service and status. The canary Ingress is
		// <ingress>-canary.
		{"nginx", proxyFormat{
			requests: "nginx_ingress_controller_requests", histogram: "nginx_ingress_controller_request_duration_seconds",
			labels: func(r role) string {
				ingress := "web"
				if r == canaryRole {
					ingress = "web-canary"
				}
				return fmt.Sprintf(`namespace=%q,ingress=%q,service=%q`, ns, ingress, "podinfo-"+r.name)
			},
			status: func(code int) string { return fmt.Sprintf(`status="%d"`, code) },
		}},
		// https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats
		// as Envoy's Prometheus endpoint writes them: upstream_rq by
		// envoy_response_code, and upstream_rq_time in milliseconds, by
		// envoy_cluster_name, which Contour makes
		// <namespace>_<service>_<port>.
		{"contour", proxyFormat{
			requests: "envoy_cluster_upstream_rq", histogram: "envoy_cluster_upstream_rq_time", milliseconds: true,
			labels: func(r role) string {
				return fmt.Sprintf(`envoy_cluster_name="%s_podinfo-%s_9898"`, ns, r.name)
			},
			status: func(code int) string { return fmt.Sprintf(`envoy_response_code="%d"`, code) },
		}},
		// Gloo Edge's Envoy names an Upstream's cluster
		// <upstream>_<upstream namespace> (Flagger's observer,
		// pkg/metrics/observers/gloo.go, gives the example
		// envoy_cluster_name="test-podinfo-primary-9898_gloo-system"), with
		// Envoy's cluster_stats as for Contour.
		{"gloo", proxyFormat{
			requests: "envoy_cluster_upstream_rq", histogram: "envoy_cluster_upstream_rq_time", milliseconds: true,
			labels: func(r role) string {
				return fmt.Sprintf(`envoy_cluster_name="%s-podinfo-%supstream-9898_%s"`, ns, r.name, ns)
			},
			status: func(code int) string { return fmt.Sprintf(`envoy_response_code="%d"`, code) },
		}},
		// https://kuma.io/docs/latest/policies/traffic-metrics/: Kuma's
		// Prometheus discovery labels each data plane proxy's Envoy
		// metrics with its mesh, dataplane and service, the service being
		// <name>_<namespace>_svc_<port> (Flagger's observer,
		// pkg/metrics/observers/kuma.go, selects on it).
		{"kuma", proxyFormat{
			requests: "envoy_cluster_upstream_rq", histogram: "envoy_cluster_upstream_rq_time", milliseconds: true,
			labels: func(r role) string {
				return fmt.Sprintf(`mesh="default",service="podinfo-%s_%s_svc_9898",envoy_cluster_name="localhost_9898"`, r.name, ns)
			},
			status: func(code int) string { return fmt.Sprintf(`envoy_response_code="%d"`, code) },
		}},
		// https://apisix.apache.org/docs/apisix/plugins/prometheus/:
		// apisix_http_status by code and route, and apisix_http_latency
		// (milliseconds) by type and route; the ingress controller names a
		// route <namespace>_<ApisixRoute>_<rule>.
		{"apisix", proxyFormat{
			requests: "apisix_http_status", histogram: "apisix_http_latency", milliseconds: true,
			labels: func(r role) string {
				route := "web"
				if r == canaryRole {
					route = "web-podinfo-canary"
				}
				return fmt.Sprintf(`type="request",route="%s_%s_app",matched_host="app.example.com"`, ns, route)
			},
			status: func(code int) string { return fmt.Sprintf(`code="%d"`, code) },
		}},
		// App Mesh's Envoy sidecars, scraped as the App Mesh Prometheus
		// setup does (aws/eks-charts appmesh-prometheus: pod discovery
		// relabelled to kubernetes_namespace and kubernetes_pod_name), with
		// Envoy's cluster_stats; Flagger's observer,
		// pkg/metrics/observers/appmesh.go, selects on those labels.
		{"appmesh:v1beta2", appMesh},
		{"appmesh", appMesh},
		// https://doc.traefik.io/traefik/observability/metrics/prometheus/:
		// traefik_service_requests_total and
		// traefik_service_request_duration_seconds by service (for the
		// Kubernetes CRD provider <namespace>-<service>-<port>@kubernetescrd)
		// and code. The real Traefik is tested in test/e2e/routing.
		{"traefik", proxyFormat{
			requests: "traefik_service_requests_total", histogram: "traefik_service_request_duration_seconds",
			labels: func(r role) string {
				return fmt.Sprintf(`service="%s-podinfo-%s-9898@kubernetescrd",method="GET",protocol="http"`, ns, r.name)
			},
			status: func(code int) string { return fmt.Sprintf(`code="%d"`, code) },
		}},
		// https://opensource.zalando.com/skipper/operation/operation/#prometheus:
		// skipper_serve_route_duration_seconds by route, code and method;
		// the route ids of an Ingress are
		// kube_<namespace>__<ingress>__<host>__<path>__<backend>, with
		// every character that is not a letter, digit or _ written as _.
		{"skipper", proxyFormat{
			histogram: "skipper_serve_route_duration_seconds", countsAreHistogram: true,
			labels: func(r role) string {
				ingress, backend := "web", "podinfo"
				if r == canaryRole {
					ingress, backend = "web-canary", "podinfo-canary"
				}
				underscored := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
				return fmt.Sprintf(`route="kube_%s__%s__web_example_com_____%s",method="GET"`, underscored(ns), underscored(ingress), underscored(backend))
			},
			status: func(code int) string { return fmt.Sprintf(`code="%d"`, code) },
		}},
		// https://knative.dev/docs/serving/services/service-metrics/: the
		// queue-proxy's revision_request_count and
		// revision_request_latencies (milliseconds) by namespace_name,
		// revision_name and response_code_class; the canary is the latest
		// created Revision, the one the Canary's status tracks.
		{"knative", proxyFormat{
			requests: "revision_request_count", histogram: "revision_request_latencies", milliseconds: true,
			labels: func(r role) string {
				revision := "podinfo-00002"
				if r == primaryRole {
					revision = "podinfo-00001"
				}
				return fmt.Sprintf(`namespace_name=%q,service_name="podinfo",configuration_name="podinfo",revision_name=%q,container_name="queue-proxy"`, ns, revision)
			},
			status: func(code int) string {
				return fmt.Sprintf(`response_code="%d",response_code_class="%dxx"`, code, code/100)
			},
		}},
		// The application's own histogram (the Prometheus client's
		// http_request_duration_seconds by status), on pods that
		// Kubernetes discovery labels with namespace and pod: the
		// canary's pods are podinfo-<hash>-<id>, the primary's
		// podinfo-primary-<hash>-<id>.
		{"kubernetes", proxyFormat{
			histogram: "http_request_duration_seconds", countsAreHistogram: true,
			labels: func(r role) string {
				pod := "podinfo-7d9f8b6c5d-x2x9q"
				if r == primaryRole {
					pod = "podinfo-primary-5c8d7f9b6-q8w2e"
				}
				return fmt.Sprintf(`namespace=%q,pod=%q`, ns, pod)
			},
			status: func(code int) string { return fmt.Sprintf(`status="%d"`, code) },
		}},
	}
	start := time.Now()
	var targets []testprom.Target
	for _, tt := range tests {
		f := tt.format
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			elapsed := time.Since(start).Seconds()
			for _, r := range []role{primaryRole, canaryRole} {
				f.write(w, r, elapsed)
			}
		}))
		t.Cleanup(srv.Close)
		targets = append(targets, testprom.Target{Addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	prom := testprom.Start(t, testprom.Options{Targets: targets})
	provider, err := metrics.New(metrics.Config{Type: "prometheus", Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(string(tt.provider)+" reads the canary's success rate and P99", func(t *testing.T) {
			c := &sluicev1beta1.Canary{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
				Spec: sluicev1beta1.CanarySpec{
					Provider:   tt.provider,
					TargetRef:  sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
					IngressRef: &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"},
					RouteRef:   &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"},
					Service:    sluicev1beta1.CanaryService{Port: 9898},
				},
				// The canary's revision as the engine records it at the
				// start of a release: Knative's latest Revision.
				Status: sluicev1beta1.CanaryStatus{LastAppliedSpec: "podinfo-00002"},
			}
			r, err := router.New(tt.provider, router.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			signals := r.GoldenSignals()
			query := func(text string) float64 {
				t.Helper()
				rendered, err := analysis.Render(text, analysis.ModelFor(c, sluicev1beta1.CanaryMetric{Interval: "10s"}))
				if err != nil {
					t.Fatal(err)
				}
				var v float64
				controlplane.Eventually(t, time.Minute, "a value of "+rendered, func(ctx context.Context) (bool, string) {
					v, err = provider.Query(ctx, metrics.Query{Text: rendered, Window: 10 * time.Second})
					return err == nil && !math.IsNaN(v), fmt.Sprintf("%v %v", v, err)
				})
				return v
			}
			if got, want := query(signals.SuccessRate), (1-canaryRole.errorRatio)*100; math.Abs(got-want) > 1 {
				t.Errorf("request-success-rate %.2f, want the canary's %.0f within a point", got, want)
			}
			got := query(signals.Duration)
			lower, upper := bucketOf(canaryRole.latency)
			if got <= lower*1000 || got > upper*1000 {
				t.Errorf("request-duration %.1f ms, want it in the canary's bucket (%g, %g] ms", got, lower*1000, upper*1000)
			}
		})
	}
}

// workloadName is the Deployment of a role.
func workloadName(r role) string {
	if r == primaryRole {
		return "podinfo-primary"
	}
	return "podinfo"
}

// bucketOf is the histogram bucket, in seconds, that holds d.
func bucketOf(d time.Duration) (lower, upper float64) {
	i, _ := slices.BinarySearch(bounds, d.Seconds())
	if i == 0 {
		return 0, bounds[0]
	}
	return bounds[i-1], bounds[i]
}
