package metrics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=keptnmetrics,verbs=get;list;watch
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=analyses,verbs=get;list;watch;create;delete

// keptnAPI is the Keptn metrics operator's API version Flagger reads.
const keptnAPI = "metrics.keptn.sh/v1beta1"

// keptnPoll is how often an Analysis is read until Keptn completes it.
const keptnPoll = time.Second

// Keptn reads the Keptn metrics operator's objects through the cluster's
// own API, as Flagger does. A query is one of:
//
//	keptnmetric/<namespace>/<name>
//	analysis/<namespace>/<analysisdefinition>[/<timeframe>[/<key>=<value>;...]]
//
// A KeptnMetric gives its status.value. An analysis creates an Analysis of
// the AnalysisDefinition over the recent timeframe (default 1m) with the
// arguments, waits until Keptn completes it, within the template's timeout,
// deletes it, and gives 1 if it passed and 0 if not. The provider has no
// address and no Secret: it uses the operator's own client and
// permissions.
type Keptn struct {
	client  client.Client
	timeout time.Duration
}

// NewKeptn builds a Keptn provider from the operator's client.
func NewKeptn(cfg Config) (Provider, error) {
	if cfg.Kubernetes == nil {
		return nil, errors.New("no Kubernetes client to read Keptn's objects with")
	}
	return &Keptn{client: cfg.Kubernetes, timeout: cfg.timeout()}, nil
}

// keptnQuery is a parsed query.
type keptnQuery struct {
	// kind is keptnmetric or analysis.
	kind, namespace, name string
	// timeframe and args are an analysis's.
	timeframe string
	args      map[string]string
}

// parseKeptnQuery reads a query as Flagger does: lower-cased, split on /.
func parseKeptnQuery(text string) (keptnQuery, error) {
	const format = "keptnmetric/<namespace>/<name> or analysis/<namespace>/<analysisdefinition>[/<timeframe>[/<key>=<value>;...]]"
	parts := strings.Split(strings.ToLower(strings.TrimSpace(text)), "/")
	if len(parts) < 3 || parts[1] == "" || parts[2] == "" {
		return keptnQuery{}, fmt.Errorf("keptn query %q is not %s", text, format)
	}
	q := keptnQuery{namespace: parts[1], name: parts[2]}
	switch parts[0] {
	case "keptnmetric", "keptnmetrics":
		if len(parts) != 3 {
			return keptnQuery{}, fmt.Errorf("keptn query %q is not %s", text, format)
		}
		q.kind = "keptnmetric"
	case "analysis", "analyses":
		q.kind, q.timeframe = "analysis", "1m"
		if len(parts) > 3 && parts[3] != "" {
			if _, err := time.ParseDuration(parts[3]); err != nil {
				return keptnQuery{}, fmt.Errorf("keptn query %q: timeframe %q: %w", text, parts[3], err)
			}
			q.timeframe = parts[3]
		}
		if len(parts) > 4 && parts[4] != "" {
			q.args = map[string]string{}
			for _, kv := range strings.Split(parts[4], ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return keptnQuery{}, fmt.Errorf("keptn query %q: argument %q is not key=value", text, kv)
				}
				q.args[k] = v
			}
		}
		if len(parts) > 5 {
			return keptnQuery{}, fmt.Errorf("keptn query %q is not %s", text, format)
		}
	default:
		return keptnQuery{}, fmt.Errorf("keptn query %q is not %s", text, format)
	}
	return q, nil
}

// Query runs one query.
func (p *Keptn) Query(ctx context.Context, q Query) (float64, error) {
	kq, err := parseKeptnQuery(q.Text)
	if err != nil {
		return 0, err
	}
	if kq.kind == "keptnmetric" {
		return p.metric(ctx, kq)
	}
	return p.analysis(ctx, kq)
}

func (p *Keptn) metric(ctx context.Context, q keptnQuery) (float64, error) {
	m := &unstructured.Unstructured{}
	m.SetAPIVersion(keptnAPI)
	m.SetKind("KeptnMetric")
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: q.namespace, Name: q.name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("KeptnMetric %s/%s: %w", q.namespace, q.name, ErrNoValues)
		}
		return 0, fmt.Errorf("get KeptnMetric %s/%s: %w", q.namespace, q.name, keptnError(err))
	}
	raw, _, _ := unstructured.NestedString(m.Object, "status", "value")
	if raw == "" {
		return 0, fmt.Errorf("KeptnMetric %s/%s has no status.value yet: %w", q.namespace, q.name, ErrNoValues)
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, fmt.Errorf("KeptnMetric %s/%s status.value %q is not a number", q.namespace, q.name, raw)
	}
	return v, nil
}

func (p *Keptn) analysis(ctx context.Context, q keptnQuery) (float64, error) {
	a := &unstructured.Unstructured{}
	a.SetAPIVersion(keptnAPI)
	a.SetKind("Analysis")
	a.SetNamespace(q.namespace)
	a.SetName(fmt.Sprintf("%s-%s", q.name, rand.String(6)))
	spec := map[string]any{
		"analysisDefinition": map[string]any{"name": q.name},
		"timeframe":          map[string]any{"recent": q.timeframe},
	}
	if len(q.args) > 0 {
		args := map[string]any{}
		for k, v := range q.args {
			args[k] = v
		}
		spec["args"] = args
	}
	a.Object["spec"] = spec
	if err := p.client.Create(ctx, a); err != nil {
		return 0, fmt.Errorf("create Analysis of %s/%s: %w", q.namespace, q.name, keptnError(err))
	}
	defer func() {
		// Deleted even when the query's context has ended.
		del, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.client.Delete(del, a, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	tick := time.NewTicker(keptnPoll)
	defer tick.Stop()
	key := client.ObjectKeyFromObject(a)
	for {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(a.GroupVersionKind())
		if err := p.client.Get(ctx, key, got); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("get Analysis %s: %w", key, keptnError(err))
		}
		if state, _, _ := unstructured.NestedString(got.Object, "status", "state"); state == "Completed" {
			if pass, _, _ := unstructured.NestedBool(got.Object, "status", "pass"); pass {
				return 1, nil
			}
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the Analysis %s was not completed within %s: %w", key, p.timeout, ErrNoValues)
		case <-tick.C:
		}
	}
}

// keptnError classifies an API error for the analysis: no permission is
// ErrAuth.
func keptnError(err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	return err
}

// Healthy checks that Keptn's kinds are installed.
func (p *Keptn) Healthy(context.Context) error {
	for _, kind := range []string{"KeptnMetric", "Analysis"} {
		gk := schema.GroupKind{Group: "metrics.keptn.sh", Kind: kind}
		if _, err := p.client.RESTMapper().RESTMapping(gk, "v1beta1"); err != nil {
			return fmt.Errorf("the Keptn metrics operator's %s (metrics.keptn.sh/v1beta1) is not installed: %w", kind, err)
		}
	}
	return nil
}
