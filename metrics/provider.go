package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/egress"
)

// Provider runs a metric's query against a metrics backend.
type Provider interface {
	// Query runs the rendered query over the window that ends now and
	// returns its one value. It fails with an error that wraps
	// ErrNoValues, ErrMultipleValues, ErrUnreachable or ErrAuth when one
	// of those is the cause.
	Query(ctx context.Context, q Query) (float64, error)
	// Healthy probes the backend: reachable, and the credentials accepted.
	Healthy(ctx context.Context) error
}

// Query is one rendered query.
type Query struct {
	// Text is the rendered query, in the backend's language.
	Text string
	// Window is the metric's interval: providers whose API takes a time
	// range (Datadog, CloudWatch, New Relic, ...) query [now-Window, now].
	Window time.Duration
}

// The errors a query can fail with, to be matched with errors.Is. The
// analysis treats ErrNoValues by the metric's noData policy and every
// other error as a failed check.
var (
	// ErrNoValues: the query ran but returned no value (an absent series,
	// NaN, an empty result).
	ErrNoValues = errors.New("no values found")
	// ErrMultipleValues: the query returned more than one value.
	ErrMultipleValues = errors.New("multiple values returned")
	// ErrUnreachable: the backend could not be reached or answered 5xx.
	ErrUnreachable = errors.New("provider unreachable")
	// ErrAuth: the backend refused the credentials (401, 403).
	ErrAuth = errors.New("authentication failed")
)

// Config is what a provider is built from: a MetricTemplate's provider and
// the data of its Secret.
type Config struct {
	// Type of the backend.
	Type sluicev1beta1.MetricProviderType
	// Address of the backend's API.
	Address string
	// Headers added to each request.
	Headers http.Header
	// Secret holds the data of the template's secretRef, under the
	// provider's documented keys.
	Secret map[string][]byte
	// Region, for cloud providers.
	Region string
	// InsecureSkipVerify skips TLS verification of the backend.
	InsecureSkipVerify bool
	// Timeout bounds one query; zero means DefaultTimeout.
	Timeout time.Duration
	// Method and JSONPath configure the web provider.
	Method   string
	JSONPath string
	// Now is the clock that query windows end at; nil means time.Now.
	Now func() time.Time
	// Kubernetes is the operator's own client, for providers that read
	// the cluster's API (keptn).
	Kubernetes client.Client
	// Egress keeps queries off the operator's own listeners, also through
	// a redirect; nil keeps them off nothing.
	Egress *egress.Guard
}

// DefaultTimeout bounds a query whose template sets no timeout.
const DefaultTimeout = 30 * time.Second

// now returns the configured clock's time.
func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// timeout returns the query timeout.
func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// constructors maps each provider type to the function that builds it.
// Adding a provider is a file with its constructor and a line here.
func constructors() map[sluicev1beta1.MetricProviderType]func(Config) (Provider, error) {
	return map[sluicev1beta1.MetricProviderType]func(Config) (Provider, error){
		"prometheus":      NewPrometheus,
		"cloudwatch":      NewCloudWatch,
		"stackdriver":     NewStackdriver,
		"splunk":          NewSplunk,
		"externalmetrics": NewExternalMetrics,
		"datadog":         NewDatadog,
		"web":             NewWeb,
		"graphite":        NewGraphite,
		"influxdb":        NewInfluxDB,
		"newrelic":        NewNewRelic,
		"dynatrace":       NewDynatrace,
		"keptn":           NewKeptn,
	}
}

// New builds the provider a Config names. An unknown type is an error, not
// Prometheus as in Flagger.
func New(cfg Config) (Provider, error) {
	build, ok := constructors()[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("metric provider type %q is not supported", cfg.Type)
	}
	p, err := build(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s provider: %w", cfg.Type, err)
	}
	return p, nil
}

// Supported lists the provider types New can build.
func Supported() []sluicev1beta1.MetricProviderType {
	var out []sluicev1beta1.MetricProviderType
	for t := range constructors() {
		out = append(out, t)
	}
	return out
}
