package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	externalmetrics "k8s.io/metrics/pkg/client/external_metrics"
)

const (
	// externalMetricsTokenKey is the Secret key of a bearer token, Flagger's
	// name.
	externalMetricsTokenKey = "token"
	// externalMetricsServiceAccountToken is where a pod's service account
	// token is mounted.
	externalMetricsServiceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// externalMetricsAPI is the API group and version the metrics live in.
	externalMetricsAPI = "/apis/external.metrics.k8s.io/v1beta1"
)

// ExternalMetrics reads a metric from the Kubernetes External Metrics API
// (external.metrics.k8s.io/v1beta1), served by adapters such as KEDA or
// the Datadog cluster agent. The query is Flagger's:
//
//	<namespace>/<metricName>?labelSelector=<url-encoded label selector>
//
// where only the metric name is required and the namespace defaults to
// "default". The API has no time range: the adapter decides the window,
// and the metric's interval is not sent.
//
// Without an address the provider talks to the API server it runs in,
// as its service account. With an address it talks to that server with
// the Secret's bearer token (key token) or else, as in Flagger, the pod's
// service account token.
type ExternalMetrics struct {
	rest   rest.Interface
	client externalmetrics.ExternalMetricsClient
}

// NewExternalMetrics builds an ExternalMetrics provider.
func NewExternalMetrics(cfg Config) (Provider, error) {
	return newExternalMetrics(cfg, rest.InClusterConfig, externalMetricsServiceAccountToken)
}

// newExternalMetrics is NewExternalMetrics with the in-cluster config and
// the service account token's path given, for tests.
func newExternalMetrics(cfg Config, inCluster func() (*rest.Config, error), tokenPath string) (*ExternalMetrics, error) {
	rc, err := externalMetricsConfig(cfg, inCluster, tokenPath)
	if err != nil {
		return nil, err
	}
	// The settings external_metrics.NewForConfig makes, on a client that
	// Healthy can use for discovery too.
	rc.APIPath = "/apis"
	rc.GroupVersion = &v1beta1.SchemeGroupVersion
	rc.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	if rc.UserAgent == "" {
		rc.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc.Timeout = cfg.timeout()
	client, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("external metrics client: %w", err)
	}
	return &ExternalMetrics{rest: client, client: externalmetrics.New(client)}, nil
}

// externalMetricsConfig is the REST config of the address or of the
// cluster, with the Secret's token and TLS keys and the template's TLS
// option and headers.
func externalMetricsConfig(cfg Config, inCluster func() (*rest.Config, error), tokenPath string) (*rest.Config, error) {
	var rc *rest.Config
	if cfg.Address == "" {
		c, err := inCluster()
		if err != nil {
			return nil, fmt.Errorf("address is not set and there is no in-cluster config: %w", err)
		}
		rc = rest.CopyConfig(c)
	} else {
		u, err := url.Parse(cfg.Address)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("address %q is not a URL", cfg.Address)
		}
		rc = &rest.Config{Host: cfg.Address}
		if _, err := os.Stat(tokenPath); err == nil {
			rc.BearerTokenFile = tokenPath
		}
	}
	if token := cfg.Secret[externalMetricsTokenKey]; len(token) > 0 {
		// client-go prefers the token file to the token: drop it.
		rc.BearerToken, rc.BearerTokenFile = string(token), ""
	}
	if ca := cfg.Secret[secretCA]; len(ca) > 0 {
		rc.CAData, rc.CAFile = ca, ""
	}
	if cert, key := cfg.Secret[secretCert], cfg.Secret[secretKey]; len(cert) > 0 || len(key) > 0 {
		rc.CertData, rc.KeyData, rc.CertFile, rc.KeyFile = cert, key, "", ""
	}
	if cfg.InsecureSkipVerify {
		// client-go refuses a CA together with insecure.
		rc.Insecure, rc.CAData, rc.CAFile = true, nil, ""
	}
	if len(cfg.Headers) > 0 {
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return &headerTransport{headers: cfg.Headers, next: rt}
		}
	}
	return rc, nil
}

// Query lists the metric's values and takes the one value.
func (p *ExternalMetrics) Query(ctx context.Context, q Query) (float64, error) {
	namespace, metric, selector, err := parseExternalMetricsQuery(q.Text)
	if err != nil {
		return 0, err
	}
	type answer struct {
		list *v1beta1.ExternalMetricValueList
		err  error
	}
	// The client's List takes no context; the REST config's timeout ends
	// an abandoned request.
	done := make(chan answer, 1)
	go func() {
		list, err := p.client.NamespacedMetrics(namespace).List(metric, selector)
		done <- answer{list, err}
	}()
	select {
	case <-ctx.Done():
		return 0, fmt.Errorf("query external metric %s/%s: %w", namespace, metric, classify(0, ctx.Err()))
	case a := <-done:
		if apierrors.IsForbidden(a.err) {
			return 0, fmt.Errorf("query external metric %s/%s: %w; grant get and list on external.metrics.k8s.io resource %s to the operator (Helm value rbac.externalMetrics), or put a token that may in the MetricTemplate's Secret",
				namespace, metric, externalMetricsError(a.err), metric)
		}
		if a.err != nil {
			return 0, fmt.Errorf("query external metric %s/%s: %w", namespace, metric, externalMetricsError(a.err))
		}
		return externalMetricValue(a.list)
	}
}

// Healthy reads the API's resource list, which the API server answers
// from the adapter: reachable, registered and the credentials accepted.
// Flagger only dials the address, or lists a dummy metric, which adapters
// that know their metrics answer with an error.
func (p *ExternalMetrics) Healthy(ctx context.Context) error {
	if err := p.rest.Get().AbsPath(externalMetricsAPI).Do(ctx).Error(); err != nil {
		return fmt.Errorf("probe external metrics API: %w", externalMetricsError(err))
	}
	return nil
}

// parseExternalMetricsQuery reads <namespace>/<metricName>?labelSelector=...
// as Flagger does.
func parseExternalMetricsQuery(text string) (namespace, metric string, selector labels.Selector, err error) {
	const format = "<namespace>/<metricName>?labelSelector=<url-encoded label selector>"
	text = strings.TrimSpace(text)
	u, err := url.Parse("query:///" + text)
	if err != nil {
		return "", "", nil, fmt.Errorf("external metrics query %q is not %s: %w", text, format, err)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	namespace = "default"
	switch len(parts) {
	case 1:
		metric = parts[0]
	case 2:
		if parts[0] != "" {
			namespace = parts[0]
		}
		metric = parts[1]
	default:
		return "", "", nil, fmt.Errorf("external metrics query %q has too many slashes, want %s", text, format)
	}
	if metric == "" || metric == "." || metric == ".." || namespace == "." || namespace == ".." {
		return "", "", nil, fmt.Errorf("external metrics query %q names no metric, want %s", text, format)
	}
	selector = labels.Everything()
	if raw := u.Query().Get("labelSelector"); raw != "" {
		if selector, err = labels.Parse(raw); err != nil {
			return "", "", nil, fmt.Errorf("external metrics query %q: label selector: %w", text, err)
		}
	}
	return namespace, metric, selector, nil
}

// externalMetricValue takes the one value of a metric list.
func externalMetricValue(list *v1beta1.ExternalMetricValueList) (float64, error) {
	if list == nil {
		return 0, fmt.Errorf("%w: no metric list", ErrNoValues)
	}
	switch len(list.Items) {
	case 0:
		return 0, fmt.Errorf("%w: the metric has no values for the selector", ErrNoValues)
	case 1:
	default:
		return 0, fmt.Errorf("%w: %d values; narrow the label selector", ErrMultipleValues, len(list.Items))
	}
	v := list.Items[0].Value.AsApproximateFloat64()
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: the value is %v", ErrNoValues, v)
	}
	return v, nil
}

// externalMetricsError classifies the client's errors by the status the
// API server answered, or as network errors.
func externalMetricsError(err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return withStatus(int(status.Status().Code), err)
	}
	return classify(0, err)
}
