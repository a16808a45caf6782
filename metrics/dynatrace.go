package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// dynatraceToken is the Dynatrace provider's Secret key, as in Flagger: an
// access token with the metrics.read scope.
const dynatraceToken = "dynatrace_token"

// Dynatrace runs metric selectors through Dynatrace's Metrics API v2. Its
// Secret holds dynatrace_token.
type Dynatrace struct {
	client  *http.Client
	address string
	token   string
	now     func() time.Time
}

// NewDynatrace builds a Dynatrace provider for cfg.Address, the
// environment's URL such as https://{environment-id}.live.dynatrace.com.
func NewDynatrace(cfg Config) (Provider, error) {
	if cfg.Address == "" {
		return nil, errors.New("address is required")
	}
	token := string(cfg.Secret[dynatraceToken])
	if token == "" {
		return nil, fmt.Errorf("secret key %s is required", dynatraceToken)
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Dynatrace{
		client:  client,
		address: strings.TrimSuffix(cfg.Address, "/"),
		token:   token,
		now:     cfg.now,
	}, nil
}

// Query runs the metric selector q over [now-Window, now] in absolute
// milliseconds, as Flagger does, at resolution Inf so each series folds
// into one value, and returns the value of the one series. (Flagger
// queries ten intervals back; the range here is the interval.)
func (d *Dynatrace) Query(ctx context.Context, q Query) (float64, error) {
	to := d.now()
	from := to.Add(-time.Duration(windowSeconds(q.Window)) * time.Second)
	params := url.Values{
		"metricSelector": {q.Text},
		"resolution":     {"Inf"},
		"from":           {strconv.FormatInt(from.UnixMilli(), 10)},
		"to":             {strconv.FormatInt(to.UnixMilli(), 10)},
	}
	var answer json.RawMessage
	if err := d.get(ctx, "/api/v2/metrics/query", params, &answer); err != nil {
		return 0, fmt.Errorf("query dynatrace: %w", err)
	}
	v, err := parseDynatrace(answer)
	if err != nil {
		return 0, fmt.Errorf("query dynatrace: %w", err)
	}
	return v, nil
}

// Healthy lists one metric descriptor, as Flagger does: it needs the same
// token scope as a query and reads no data points.
func (d *Dynatrace) Healthy(ctx context.Context) error {
	var answer json.RawMessage
	if err := d.get(ctx, "/api/v2/metrics", url.Values{"pageSize": {"1"}}, &answer); err != nil {
		return fmt.Errorf("probe dynatrace: %w", err)
	}
	return nil
}

func (d *Dynatrace) get(ctx context.Context, path string, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.address+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Api-Token "+d.token)
	req.Header.Set("Accept", "application/json")
	return doJSON(d.client, req, out)
}

// dynatraceAnswer is a metrics query answer: a result per metric of the
// selector, a data entry per series (dimension tuple), and its values,
// null where a bucket has none.
type dynatraceAnswer struct {
	Result []struct {
		MetricID string `json:"metricId"`
		Data     []struct {
			Values []*float64 `json:"values"`
		} `json:"data"`
	} `json:"result"`
}

// parseDynatrace is the last non-null value of a metrics query answer's
// one series.
func parseDynatrace(body []byte) (float64, error) {
	var answer dynatraceAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	result, err := only(answer.Result, "metrics")
	if err != nil {
		return 0, err
	}
	data, err := only(result.Data, "series of "+result.MetricID)
	if err != nil {
		return 0, err
	}
	values := data.Values
	for i := len(values) - 1; i >= 0; i-- {
		if values[i] != nil {
			return finiteValue(*values[i])
		}
	}
	return 0, fmt.Errorf("%w: the series of %s has no values", ErrNoValues, result.MetricID)
}
