package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The New Relic provider's Secret keys and default address, as in Flagger.
const (
	newRelicQueryKey       = "newrelic_query_key"
	newRelicAccountID      = "newrelic_account_id"
	newRelicDefaultAddress = "https://insights-api.newrelic.com"
)

// newRelicProbe is the NRQL query Healthy runs: one count over a minute.
const newRelicProbe = "SELECT count(*) FROM Metric SINCE 1 minute ago"

var (
	// newRelicLiteral matches NRQL's quoted strings and identifiers, which
	// may hold the word SINCE without being a clause.
	newRelicLiteral = regexp.MustCompile("'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")
	newRelicSince   = regexp.MustCompile(`(?i)\bSINCE\b`)
)

// NewRelic runs NRQL queries through New Relic's Insights query API, as
// Flagger does. Its Secret holds newrelic_query_key and
// newrelic_account_id.
type NewRelic struct {
	client   *http.Client
	endpoint string
	queryKey string
}

// NewNewRelic builds a New Relic provider for cfg.Address, by default
// https://insights-api.newrelic.com; the EU region is
// https://insights-api.eu.newrelic.com.
func NewNewRelic(cfg Config) (Provider, error) {
	queryKey, account := string(cfg.Secret[newRelicQueryKey]), string(cfg.Secret[newRelicAccountID])
	if queryKey == "" {
		return nil, fmt.Errorf("secret key %s is required", newRelicQueryKey)
	}
	if account == "" {
		return nil, fmt.Errorf("secret key %s is required", newRelicAccountID)
	}
	address := cfg.Address
	if address == "" {
		address = newRelicDefaultAddress
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &NewRelic{
		client:   client,
		endpoint: strings.TrimSuffix(address, "/") + "/v1/accounts/" + url.PathEscape(account) + "/query",
		queryKey: queryKey,
	}, nil
}

// Query runs q over the window and returns its one value.
func (n *NewRelic) Query(ctx context.Context, q Query) (float64, error) {
	var answer json.RawMessage
	if err := n.run(ctx, newRelicNRQL(q), &answer); err != nil {
		return 0, fmt.Errorf("query newrelic: %w", err)
	}
	v, err := parseNewRelic(answer)
	if err != nil {
		return 0, fmt.Errorf("query newrelic: %w", err)
	}
	return v, nil
}

// Healthy runs a small count: the Insights API has no cheaper call that
// checks the query key.
func (n *NewRelic) Healthy(ctx context.Context) error {
	var answer json.RawMessage
	if err := n.run(ctx, newRelicProbe, &answer); err != nil {
		return fmt.Errorf("probe newrelic: %w", err)
	}
	return nil
}

func (n *NewRelic) run(ctx context.Context, nrql string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.endpoint+"?"+url.Values{"nrql": {nrql}}.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Query-Key", n.queryKey)
	req.Header.Set("Accept", "application/json")
	return doJSON(n.client, req, out)
}

// newRelicNRQL appends "SINCE <window> seconds ago" to the query, as
// Flagger does, unless the query has its own SINCE clause: Flagger appends
// it always, which makes such a query invalid.
func newRelicNRQL(q Query) string {
	text := strings.TrimSpace(q.Text)
	if newRelicSince.MatchString(newRelicLiteral.ReplaceAllString(text, "''")) {
		return text
	}
	return fmt.Sprintf("%s SINCE %d seconds ago", text, windowSeconds(q.Window))
}

// newRelicAnswer is an Insights query answer: results of a plain query,
// or the same per facet of a FACET query or per bucket of a TIMESERIES one.
type newRelicAnswer struct {
	Results    []map[string]any `json:"results"`
	Facets     []newRelicGroup  `json:"facets"`
	TimeSeries []newRelicGroup  `json:"timeSeries"`
}

type newRelicGroup struct {
	Results []map[string]any `json:"results"`
}

// parseNewRelic is the one value of an Insights answer: its one result
// holds one function's value, such as {"result": 1.5} for an expression,
// {"count": 3} or {"percentiles": {"99": 0.25}}. Flagger reads only the
// "result" key.
func parseNewRelic(body []byte) (float64, error) {
	var answer newRelicAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	results := answer.Results
	for _, groups := range [][]newRelicGroup{answer.Facets, answer.TimeSeries} {
		switch len(groups) {
		case 0:
			continue
		case 1:
			results = groups[0].Results
		default:
			return 0, fmt.Errorf("%w: %d facets or buckets", ErrMultipleValues, len(groups))
		}
	}
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("%w: no results", ErrNoValues)
	case 1:
		return newRelicNumber(results[0])
	default:
		return 0, fmt.Errorf("%w: %d results", ErrMultipleValues, len(results))
	}
}

// newRelicNumber is the value of a result: a number, or an object of one
// number such as percentiles of one percentile.
func newRelicNumber(v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, fmt.Errorf("%w: the result is null", ErrNoValues)
	case float64:
		return finiteValue(v)
	case map[string]any:
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("%w: the result is empty", ErrNoValues)
		case 1:
			for _, inner := range v {
				return newRelicNumber(inner)
			}
		}
		return 0, fmt.Errorf("%w: the result has %d values", ErrMultipleValues, len(v))
	default:
		return 0, fmt.Errorf("the result %v is not a number", v)
	}
}
