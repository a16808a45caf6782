package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
)

// The Datadog provider's Secret keys and default address, as in Flagger.
const (
	datadogAPIKey         = "datadog_api_key"
	datadogApplicationKey = "datadog_application_key"
	datadogDefaultAddress = "https://api.datadoghq.com"
)

// datadogNamedServer is the index of the client's "{protocol}://{name}"
// server, the one that takes a full host name: it points the client at the
// template's address.
const datadogNamedServer = 1

// Datadog runs timeseries queries through Datadog's v1 query API with the
// official client, as Flagger does. Its Secret holds datadog_api_key and
// datadog_application_key.
type Datadog struct {
	metrics *datadogV1.MetricsApi
	auth    *datadogV1.AuthenticationApi
	// server holds the protocol and name variables of the named server.
	server map[string]string
	keys   map[string]datadog.APIKey
	now    func() time.Time
}

// NewDatadog builds a Datadog provider for cfg.Address, by default
// https://api.datadoghq.com; another site is another address, such as
// https://api.datadoghq.eu.
func NewDatadog(cfg Config) (Provider, error) {
	apiKey, appKey := string(cfg.Secret[datadogAPIKey]), string(cfg.Secret[datadogApplicationKey])
	if apiKey == "" {
		return nil, fmt.Errorf("secret key %s is required", datadogAPIKey)
	}
	if appKey == "" {
		return nil, fmt.Errorf("secret key %s is required", datadogApplicationKey)
	}
	address := cfg.Address
	if address == "" {
		address = datadogDefaultAddress
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("address %q is not an http or https URL", address)
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	server := map[string]string{
		"protocol": u.Scheme,
		"name":     u.Host + strings.TrimSuffix(u.Path, "/"),
	}
	dd := datadog.NewConfiguration()
	dd.HTTPClient = client
	// The client's servers are a list; make sure the named one is still
	// where this code expects it, should a new client version reorder them.
	if got, err := dd.ServerURL(datadogNamedServer, server); err != nil || got != u.Scheme+"://"+server["name"] {
		return nil, fmt.Errorf("datadog client: server %d is not {protocol}://{name}", datadogNamedServer)
	}
	api := datadog.NewAPIClient(dd)
	return &Datadog{
		metrics: datadogV1.NewMetricsApi(api),
		auth:    datadogV1.NewAuthenticationApi(api),
		server:  server,
		keys: map[string]datadog.APIKey{
			"apiKeyAuth": {Key: apiKey},
			"appKeyAuth": {Key: appKey},
		},
		now: cfg.now,
	}, nil
}

// context carries the keys and the server to the client, which reads both
// from the request's context.
func (d *Datadog) context(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, d.keys)
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, datadogNamedServer)
	return context.WithValue(ctx, datadog.ContextServerVariables, d.server)
}

// Query runs q over [now-Window, now] and returns the last non-null point
// of its one series, so the value is about the analysis' last interval.
// (Flagger queries ten intervals back; the range here is the interval.)
func (d *Datadog) Query(ctx context.Context, q Query) (float64, error) {
	to := d.now().Unix()
	from := to - windowSeconds(q.Window)
	answer, resp, err := d.metrics.QueryMetrics(d.context(ctx), from, to, q.Text) //nolint:bodyclose // the client reads and closes the body
	if err != nil {
		return 0, fmt.Errorf("query datadog: %w", datadogError(resp, err))
	}
	v, err := datadogValue(answer)
	if err != nil {
		return 0, fmt.Errorf("query datadog: %w", err)
	}
	return v, nil
}

// Healthy asks Datadog to validate the API key, the one call that needs no
// other permission.
func (d *Datadog) Healthy(ctx context.Context) error {
	answer, resp, err := d.auth.Validate(d.context(ctx)) //nolint:bodyclose // the client reads and closes the body
	if err != nil {
		return fmt.Errorf("validate datadog API key: %w", datadogError(resp, err))
	}
	if !answer.GetValid() {
		return fmt.Errorf("validate datadog API key: %w: the key is not valid", ErrAuth)
	}
	return nil
}

// datadogError classifies the client's errors by the answer's status, or
// as a transport error when there was no answer.
func datadogError(resp *http.Response, err error) error {
	if resp == nil {
		return classify(0, err)
	}
	kind := classify(resp.StatusCode, nil)
	var apiErr datadog.GenericOpenAPIError
	if errors.As(err, &apiErr) {
		if kind == nil {
			return fmt.Errorf("%s: %s", apiErr.Error(), snippet(apiErr.Body()))
		}
		return fmt.Errorf("%w: %s", kind, snippet(apiErr.Body()))
	}
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// parseDatadog decodes a /api/v1/query answer and takes its value.
func parseDatadog(body []byte) (float64, error) {
	var answer datadogV1.MetricsQueryResponse
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	return datadogValue(answer)
}

// datadogValue is the last non-null point of the answer's one series.
func datadogValue(answer datadogV1.MetricsQueryResponse) (float64, error) {
	if answer.UnparsedObject != nil {
		return 0, errors.New("the answer is not a query response")
	}
	if answer.GetStatus() == "error" || answer.GetError() != "" {
		return 0, fmt.Errorf("datadog: %s", answer.GetError())
	}
	series, err := only(answer.Series, "series")
	if err != nil {
		return 0, err
	}
	if series.UnparsedObject != nil {
		return 0, errors.New("the answer's series is not a series")
	}
	for i := len(series.Pointlist) - 1; i >= 0; i-- {
		// A point is [timestamp, value]; the value is null in a gap.
		if p := series.Pointlist[i]; len(p) == 2 && p[1] != nil {
			return finiteValue(*p[1])
		}
	}
	return 0, fmt.Errorf("%w: the series has no points", ErrNoValues)
}
