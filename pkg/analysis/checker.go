package analysis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/metrics"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/egress"
	"sluice.dev/sluice/pkg/traffic"
)

// Options configure a Checker.
type Options struct {
	// Reader reads MetricTemplates and Secrets, from the informer cache.
	Reader client.Reader
	// Client is given to providers that read the cluster's own API
	// (keptn); nil leaves them without one.
	Client client.Client
	// MetricsServer is the Prometheus of the built-in metrics and inline
	// queries, unless a Canary sets spec.metricsServer.
	MetricsServer string
	// Signals returns the built-in metric queries of a Canary's router.
	Signals func(c *sluicev1beta1.Canary) (traffic.GoldenSignals, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the per-metric gauge; nil registers nothing.
	Registerer prometheus.Registerer
	// ProbeTimeout bounds a provider's health probe; zero means 5s.
	ProbeTimeout time.Duration
	// Egress keeps queries off the operator's own listeners; nil keeps
	// them off nothing.
	Egress *egress.Guard
}

// Checker evaluates Canary metrics. It caches one provider per
// MetricTemplate (and one per Prometheus address), rebuilt only when the
// template or its Secret changes.
type Checker struct {
	opts  Options
	gauge *prometheus.GaugeVec

	mu        sync.Mutex
	providers map[string]*cached
}

// cached is a provider built from one version of its template and Secret,
// with the answer of its health probe.
type cached struct {
	version  string
	provider metrics.Provider
	// probe is closed once health is known.
	probe  chan struct{}
	health error
}

// NewChecker builds a Checker and registers its gauge.
func NewChecker(opts Options) (*Checker, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = 5 * time.Second
	}
	ch := &Checker{opts: opts, providers: map[string]*cached{}}
	ch.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_canary_metric_analysis",
		Help: "Last value of each Canary metric.",
	}, []string{"name", "namespace", "metric"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(ch.gauge); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, fmt.Errorf("register metric gauge: %w", err)
			}
			ch.gauge = already.ExistingCollector.(*prometheus.GaugeVec)
		}
	}
	return ch, nil
}

// metric is one of a Canary's metrics, ready to run.
type metric struct {
	spec     sluicev1beta1.CanaryMetric
	field    string
	query    metrics.Query
	provider *cached
}

// fieldError is a problem with one metric, naming its field.
type fieldError struct {
	reason string
	field  string
	msg    string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// resolve renders every metric's query and finds its provider. The first
// problem names the metric's field.
func (ch *Checker) resolve(ctx context.Context, c *sluicev1beta1.Canary) ([]metric, error) {
	if c.Spec.Analysis == nil {
		return nil, nil
	}
	var out []metric
	for i, m := range c.Spec.Analysis.Metrics {
		field := fmt.Sprintf("spec.analysis.metrics[%d] (%s)", i, m.Name)
		resolved, err := ch.resolveOne(ctx, c, m)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				fe.field = field + fe.field
				return nil, fe
			}
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		resolved.field = field
		out = append(out, resolved)
	}
	return out, nil
}

func (ch *Checker) resolveOne(ctx context.Context, c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric) (metric, error) {
	window, err := time.ParseDuration(ModelFor(c, m).Interval)
	if err != nil {
		return metric{}, &fieldError{reason: "InvalidMetric", field: ".interval", msg: err.Error()}
	}
	out := metric{spec: m, query: metrics.Query{Window: window}}
	text := m.Query //nolint:staticcheck // the deprecated inline query still runs, as in Flagger
	var cfg metrics.Config
	var key, version, template string
	switch {
	case m.TemplateRef != nil:
		tpl, secret, err := ch.template(ctx, c, m.TemplateRef)
		if err != nil {
			return metric{}, err
		}
		template = "MetricTemplate " + tpl.Namespace + "/" + tpl.Name + ": "
		text = tpl.Spec.Query
		cfg = configFor(tpl, secret)
		cfg.Kubernetes = ch.opts.Client
		key = "template/" + tpl.Namespace + "/" + tpl.Name
		version = string(tpl.UID) + "/" + tpl.ResourceVersion
		if secret != nil {
			version += "/" + secret.ResourceVersion
		}
	default:
		if text == "" {
			signals, err := ch.opts.Signals(c)
			if err != nil {
				return metric{}, &fieldError{reason: "BuiltInMetricUnavailable", field: ".name", msg: err.Error()}
			}
			switch m.Name {
			case sluicev1beta1.MetricRequestSuccessRate:
				text = signals.SuccessRate
			case sluicev1beta1.MetricRequestDuration:
				text = signals.Duration
			}
			if text == "" {
				return metric{}, &fieldError{reason: "BuiltInMetricUnavailable", field: ".name", msg: fmt.Sprintf("provider %s has no built-in %s query; use a MetricTemplate", c.Spec.Provider, m.Name)}
			}
		}
		address := ch.opts.MetricsServer
		if c.Spec.MetricsServer != "" {
			address = c.Spec.MetricsServer
		}
		cfg = metrics.Config{Type: "prometheus", Address: address}
		key, version = "prometheus/"+address, address
	}
	out.query.Text, err = Render(text, ModelFor(c, m))
	if err != nil {
		return metric{}, &fieldError{reason: "TemplateRenderFailed", field: ".templateRef", msg: fmt.Sprintf("the query does not render: %v", err)}
	}
	cfg.Now = ch.opts.Now
	cfg.Egress = ch.opts.Egress
	out.provider, err = ch.provider(key, version, cfg)
	if err != nil {
		// The template is where the fix goes, such as a key its Secret
		// lacks.
		return metric{}, &fieldError{reason: "MetricProviderInvalid", field: ".templateRef", msg: template + err.Error()}
	}
	return out, nil
}

// template reads a metric's MetricTemplate and its Secret.
func (ch *Checker) template(ctx context.Context, c *sluicev1beta1.Canary, ref *sluicev1beta1.CrossNamespaceObjectReference) (*sluicev1beta1.MetricTemplate, *corev1.Secret, error) {
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	if key.Namespace == "" {
		key.Namespace = c.Namespace
	}
	tpl := &sluicev1beta1.MetricTemplate{}
	if err := ch.opts.Reader.Get(ctx, key, tpl); apierrors.IsNotFound(err) {
		return nil, nil, &fieldError{reason: "MetricTemplateNotFound", field: ".templateRef", msg: fmt.Sprintf("MetricTemplate %s not found", key)}
	} else if err != nil {
		return nil, nil, fmt.Errorf("read MetricTemplate %s: %w", key, err)
	}
	ref2 := tpl.Spec.Provider.SecretRef
	if ref2 == nil {
		return tpl, nil, nil
	}
	secret := &corev1.Secret{}
	skey := types.NamespacedName{Namespace: tpl.Namespace, Name: ref2.Name}
	if err := ch.opts.Reader.Get(ctx, skey, secret); apierrors.IsNotFound(err) {
		return nil, nil, &fieldError{reason: "MetricSecretNotFound", field: ".templateRef", msg: fmt.Sprintf("MetricTemplate %s: spec.provider.secretRef: Secret %s not found", key, skey)}
	} else if err != nil {
		return nil, nil, fmt.Errorf("read Secret %s: %w", skey, err)
	}
	return tpl, secret, nil
}

// configFor turns a MetricTemplate and its Secret into a provider Config.
func configFor(tpl *sluicev1beta1.MetricTemplate, secret *corev1.Secret) metrics.Config {
	p := tpl.Spec.Provider
	cfg := metrics.Config{
		Type:               p.Type,
		Address:            p.Address,
		Headers:            p.Headers,
		Region:             p.Region,
		InsecureSkipVerify: p.InsecureSkipVerify,
		Method:             p.Method,
		JSONPath:           p.JSONPath,
	}
	if secret != nil {
		cfg.Secret = secret.Data
	}
	if d, err := time.ParseDuration(p.Timeout); err == nil {
		cfg.Timeout = d
	}
	return cfg
}

// provider returns the cached provider for key, rebuilt when its version
// changed, and probes a new one in the background.
func (ch *Checker) provider(key, version string, cfg metrics.Config) (*cached, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if c := ch.providers[key]; c != nil && c.version == version {
		return c, nil
	}
	p, err := metrics.New(cfg)
	if err != nil {
		return nil, err
	}
	c := &cached{version: version, provider: p, probe: make(chan struct{})}
	ch.providers[key] = c
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ch.opts.ProbeTimeout)
		defer cancel()
		c.health = p.Healthy(ctx)
		close(c.probe)
	}()
	return c, nil
}

// Readiness is what Prepare found out about a Canary's metrics.
type Readiness struct {
	// Problem, when set, stops the rollout: a template that is missing or
	// does not render, or a provider that cannot be built.
	Problem *plan.Problem
	// Unhealthy names the metrics whose provider failed its health probe.
	Unhealthy string
}

// Prepare resolves and renders every metric of c and reports the health
// of their providers, so that a broken template is reported before a
// rollout starts rather than in the middle of one. It waits for the
// health probe of a provider built for the first time, up to the probe
// timeout.
func (ch *Checker) Prepare(ctx context.Context, c *sluicev1beta1.Canary) (plan.MetricsState, error) {
	resolved, err := ch.resolve(ctx, c)
	var fe *fieldError
	if errors.As(err, &fe) {
		return plan.MetricsState{Problem: &plan.Problem{Reason: fe.reason, Message: fe.Error()}}, nil
	} else if err != nil {
		return plan.MetricsState{}, err
	}
	var unhealthy []string
	for _, m := range resolved {
		select {
		case <-m.provider.probe:
		case <-ctx.Done():
			return plan.MetricsState{}, ctx.Err()
		}
		if m.provider.health != nil {
			unhealthy = append(unhealthy, fmt.Sprintf("%s: provider health probe failed: %v", m.field, m.provider.health))
		}
	}
	return plan.MetricsState{Unhealthy: strings.Join(unhealthy, "; ")}, nil
}

// Check runs every metric of c at once and decides the step: Fail when a
// metric is out of range, errs, or has no data under noData: fail; Hold
// when one has no data under noData: hold; Pass otherwise. Every metric's
// result is in Result.Metrics.
func (ch *Checker) Check(ctx context.Context, c *sluicev1beta1.Canary) plan.Result {
	resolved, err := ch.resolve(ctx, c)
	if err != nil {
		return plan.Result{Outcome: plan.Fail, Message: err.Error()}
	}
	results := make([]sluicev1beta1.CanaryMetricStatus, len(resolved))
	var wg sync.WaitGroup
	for i, m := range resolved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			value, err := m.provider.provider.Query(ctx, m.query)
			results[i] = ch.judge(c, m.spec, m.field, value, err)
		}()
	}
	wg.Wait()
	return Decide(c, results)
}

// judge turns one query's answer into a metric result. A query that
// failed or had no value names the metric's field, field.
func (ch *Checker) judge(c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric, field string, value float64, err error) sluicev1beta1.CanaryMetricStatus {
	r := sluicev1beta1.CanaryMetricStatus{Name: m.Name, LastCheckTime: metav1.NewTime(ch.opts.Now())}
	switch {
	case errors.Is(err, metrics.ErrNoValues):
		r.Outcome, r.Message = sluicev1beta1.MetricNoData, fmt.Sprintf("%s: %v", field, err)
		if policy(c, m) == sluicev1beta1.NoDataSkip {
			r.Outcome = sluicev1beta1.MetricSkipped
		}
		return r
	case err != nil:
		r.Outcome, r.Message = sluicev1beta1.MetricError, fmt.Sprintf("%s: %v", field, err)
		return r
	}
	ch.gauge.WithLabelValues(c.Name, c.Namespace, m.Name).Set(value)
	r.Value = strconv.FormatFloat(value, 'g', 6, 64)
	min, max := m.Range()
	switch {
	case min != nil && value < *min:
		r.Outcome, r.Message = sluicev1beta1.MetricFail, fmt.Sprintf("%s %s < %s", m.Name, r.Value, strconv.FormatFloat(*min, 'g', -1, 64))
	case max != nil && value > *max:
		r.Outcome, r.Message = sluicev1beta1.MetricFail, fmt.Sprintf("%s %s > %s", m.Name, r.Value, strconv.FormatFloat(*max, 'g', -1, 64))
	default:
		r.Outcome = sluicev1beta1.MetricPass
	}
	return r
}

// Forget drops the gauge series of a deleted Canary.
func (ch *Checker) Forget(name, namespace string) {
	ch.gauge.DeletePartialMatch(prometheus.Labels{"name": name, "namespace": namespace})
}

// policy is a metric's no-data policy: its own, the analysis', or fail.
func policy(c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric) sluicev1beta1.NoDataPolicy {
	if m.NoData != "" {
		return m.NoData
	}
	if c.Spec.Analysis != nil && c.Spec.Analysis.NoData != "" {
		return c.Spec.Analysis.NoData
	}
	return sluicev1beta1.NoDataFail
}

// Decide combines the results of a step's metrics. Missing data never
// passes unless the metric's policy is skip.
func Decide(c *sluicev1beta1.Canary, results []sluicev1beta1.CanaryMetricStatus) plan.Result {
	var failed, held []string
	for i, r := range results {
		switch r.Outcome {
		case sluicev1beta1.MetricFail, sluicev1beta1.MetricError:
			failed = append(failed, r.Message)
		case sluicev1beta1.MetricNoData:
			if policy(c, c.Spec.Analysis.Metrics[i]) == sluicev1beta1.NoDataHold {
				held = append(held, r.Message)
			} else {
				failed = append(failed, r.Message)
			}
		}
	}
	switch {
	case len(failed) > 0:
		return plan.Result{Outcome: plan.Fail, Message: strings.Join(failed, "; "), Metrics: results}
	case len(held) > 0:
		return plan.Result{Outcome: plan.Hold, Message: strings.Join(held, "; "), Metrics: results}
	}
	return plan.Result{Outcome: plan.Pass, Metrics: results}
}
