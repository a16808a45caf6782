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

// The Graphite provider's optional Secret keys for basic auth, as in
// Flagger.
const (
	graphiteUsername = "username"
	graphitePassword = "password"
)

// Graphite queries Graphite's render API for JSON. Its Secret may hold
// basic auth (keys username and password) and the TLS keys of httpClient.
type Graphite struct {
	client   *http.Client
	render   string
	username string
	password string
}

// NewGraphite builds a Graphite provider for cfg.Address.
func NewGraphite(cfg Config) (Provider, error) {
	if cfg.Address == "" {
		return nil, errors.New("address is required")
	}
	username, password := string(cfg.Secret[graphiteUsername]), string(cfg.Secret[graphitePassword])
	switch {
	case username != "" && password == "":
		return nil, fmt.Errorf("secret key %s is required with %s", graphitePassword, graphiteUsername)
	case password != "" && username == "":
		return nil, fmt.Errorf("secret key %s is required with %s", graphiteUsername, graphitePassword)
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Graphite{
		client:   client,
		render:   strings.TrimSuffix(cfg.Address, "/") + "/render",
		username: username,
		password: password,
	}, nil
}

// Query renders q over [now-Window, now] and returns the last non-null
// datapoint of its one series.
func (g *Graphite) Query(ctx context.Context, q Query) (float64, error) {
	params, err := graphiteParams(q.Text, q.Window)
	if err != nil {
		return 0, fmt.Errorf("query graphite: %w", err)
	}
	var answer json.RawMessage
	if err := g.get(ctx, params, &answer); err != nil {
		return 0, fmt.Errorf("query graphite: %w", err)
	}
	v, err := parseGraphite(answer)
	if err != nil {
		return 0, fmt.Errorf("query graphite: %w", err)
	}
	return v, nil
}

// Healthy renders a target that need not exist over the last minute, as
// Flagger does: an empty answer is a healthy one.
func (g *Graphite) Healthy(ctx context.Context) error {
	params := url.Values{"target": {"test"}, "from": {"-1min"}, "until": {"now"}, "format": {"json"}}
	var answer json.RawMessage
	if err := g.get(ctx, params, &answer); err != nil {
		return fmt.Errorf("probe graphite: %w", err)
	}
	return nil
}

func (g *Graphite) get(ctx context.Context, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.render+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	if g.username != "" {
		req.SetBasicAuth(g.username, g.password)
	}
	return doJSON(g.client, req, out)
}

// graphiteParams are the render parameters of a query. A query is a target
// expression, or, as in Flagger's templates, render parameters that start
// with target=, from which from and until are kept when given. Whitespace
// runs become one space, as in Flagger, so a template may spread a target
// over lines.
func graphiteParams(query string, window time.Duration) (url.Values, error) {
	query = strings.Join(strings.Fields(query), " ")
	var params url.Values
	if strings.HasPrefix(query, "target=") || strings.Contains(query, "&target=") {
		var err error
		if params, err = url.ParseQuery(query); err != nil {
			return nil, fmt.Errorf("query %q: %w", query, err)
		}
	} else {
		params = url.Values{"target": {query}}
	}
	if !params.Has("from") {
		params.Set("from", fmt.Sprintf("-%ds", windowSeconds(window)))
	}
	if !params.Has("until") {
		params.Set("until", "now")
	}
	params.Set("format", "json")
	return params, nil
}

// graphiteSeries is one target of a render answer; a datapoint is
// [value, timestamp], the value null in a gap.
type graphiteSeries struct {
	Target     string  `json:"target"`
	Datapoints [][]any `json:"datapoints"`
}

// parseGraphite is the last non-null datapoint of a render answer's one
// series.
func parseGraphite(body []byte) (float64, error) {
	var answer []graphiteSeries
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	series, err := only(answer, "series")
	if err != nil {
		return 0, err
	}
	points := series.Datapoints
	for i := len(points) - 1; i >= 0; i-- {
		if len(points[i]) == 0 {
			continue
		}
		switch v := points[i][0].(type) {
		case nil:
			continue
		case float64:
			return finiteValue(v)
		case string:
			// Some Graphite-compatible servers quote values.
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("datapoint value %q is not a number", snippet([]byte(v)))
			}
			return finiteValue(f)
		default:
			return 0, fmt.Errorf("datapoint value %v is not a number", v)
		}
	}
	return 0, fmt.Errorf("%w: series %q has no datapoints", ErrNoValues, answer[0].Target)
}
