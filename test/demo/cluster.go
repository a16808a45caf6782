package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/traefik"
)

// Names of what the demo deploys.
const (
	namespace = "demo"
	// appName is the Deployment, its Canary and the apex Service.
	appName = "app"
	// host is what the HTTPRoute matches and the load asks for.
	host = "app.example.com"
	// image is the app's image repository; only the tag changes, for
	// people to read: the demo runs test/demoapp with the pod template's
	// args.
	image = "sluice.dev/demo-app"
)

// The app's ports in the network namespace: one per Deployment, as if each
// had one pod there.
const (
	primaryPort = 8081
	canaryPort  = 8082
)

// The analysis: short steps, and the usual SRE thresholds. The metrics
// look back over two steps, so that a step whose weight reached Traefik
// late still has samples of the canary rather than no data.
const (
	interval       = "10s"
	metricWindow   = "20s"
	stepWeight     = 20
	maxWeight      = 60
	threshold      = 2
	minSuccessRate = 99.0
	maxP99Millis   = 500.0
)

// Queries of the MetricTemplates, over the app's own metrics. The canary's
// series are those of the target Deployment ({{ target }}); the primary's
// carry the -primary Deployment.
const (
	successRateQuery = `sum(rate(http_requests_total{namespace="{{ namespace }}",deployment="{{ target }}",code!~"5.."}[{{ interval }}]))
/ sum(rate(http_requests_total{namespace="{{ namespace }}",deployment="{{ target }}"}[{{ interval }}])) * 100`
	p99Query = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",deployment="{{ target }}"}[{{ interval }}]))) * 1000`
)

// deployApp creates the app's namespace, its Deployment at the first
// release, the EndpointSlices that publish the app's processes as the
// Canary's Services, the MetricTemplates and the Canary.
func deployApp(ctx context.Context, c client.Client, appIP, promURL string, first release) error {
	labels := map[string]string{"app": appName}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image + ":" + first.version, Args: first.args(),
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	prometheus := sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: promURL}
	templates := []client.Object{
		&sluicev1beta1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "success-rate", Namespace: namespace},
			Spec:       sluicev1beta1.MetricTemplateSpec{Provider: prometheus, Query: successRateQuery},
		},
		&sluicev1beta1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "latency-p99", Namespace: namespace},
			Spec:       sluicev1beta1.MetricTemplateSpec{Provider: prometheus, Query: p99Query},
		},
	}
	canary := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "gatewayapi:v1",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: appName},
			Service: sluicev1beta1.CanaryService{
				Port: 80, TargetPort: intstr.FromString("http"), Hosts: []string{host},
				GatewayRefs: []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}},
			},
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: interval, StepWeight: stepWeight, MaxWeight: maxWeight, Threshold: threshold,
				Metrics: []sluicev1beta1.CanaryMetric{
					{
						Name: "success-rate", Interval: metricWindow, TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "success-rate"},
						ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(minSuccessRate)},
					},
					{
						Name: "latency-p99", Interval: metricWindow, TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "latency-p99"},
						ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(maxP99Millis)},
					},
				},
			},
		},
	}
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, deploy}
	objs = append(objs, templates...)
	objs = append(objs,
		endpointSlice(appName+"-primary", appIP, primaryPort),
		endpointSlice(appName+"-canary", appIP, canaryPort),
		canary)
	return create(ctx, c, objs...)
}

// endpointSlice publishes the app's process on port as the Service's one
// endpoint. Traefik skips endpoints that do not say they are ready, and
// matches the port by the Service port's name.
func endpointSlice(service, ip string, port int32) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "sluice-demo",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

func create(ctx context.Context, c client.Client, objs ...client.Object) error {
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// releaseApp makes a new revision of the app: the pod template's image
// and args.
func releaseApp(ctx context.Context, c client.Client, r release) error {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: appName}, d); err != nil {
		return fmt.Errorf("read Deployment %s: %w", appName, err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image + ":" + r.version
	d.Spec.Template.Spec.Containers[0].Args = r.args()
	if err := c.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("release %s: %w", r.version, err)
	}
	return nil
}

func getCanary(ctx context.Context, c client.Client) (*sluicev1beta1.Canary, error) {
	canary := &sluicev1beta1.Canary{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: appName}, canary); err != nil {
		return nil, fmt.Errorf("read Canary %s: %w", appName, err)
	}
	return canary, nil
}

// waitPhase waits for the Canary's phase.
func waitPhase(ctx context.Context, c client.Client, timeout time.Duration, phase sluicev1beta1.CanaryPhase) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		if canary, err := getCanary(ctx, c); err == nil {
			if canary.Status.Phase == phase {
				return nil
			}
			last = fmt.Sprintf("phase %q, conditions %+v", canary.Status.Phase, canary.Status.Conditions)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the Canary to be %s (%s): %w", phase, last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitServed waits until Traefik, which follows the HTTPRoute Sluice
// wrote, answers with the version.
func waitServed(ctx context.Context, proxy, version string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+proxy+"/", nil)
		if err != nil {
			return err
		}
		req.Host = host
		if resp, err := c.Do(req); err == nil {
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			_ = resp.Body.Close()
			if got := strings.TrimSpace(line); resp.StatusCode == http.StatusOK && got == version {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(line)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("traefik did not serve %s for %s (last answer %q): %w", version, host, last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
