package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// newRelicMetadata is the metadata of an Insights query answer.
const newRelicMetadata = `"performanceStats":{"inspectedCount":1200,"wallClockTime":25},` +
	`"metadata":{"eventTypes":["Metric"],"eventType":"Metric","openEnded":true,` +
	`"beginTime":"2023-11-14T22:08:20Z","endTime":"2023-11-14T22:13:20Z",` +
	`"beginTimeMillis":1700000000000,"endTimeMillis":1700000300000,"rawSince":"300 SECONDS AGO",` +
	`"rawUntil":"NOW","rawCompareWith":"","guid":"6f3a","routerGuid":"6f3a","messages":[],` +
	`"contents":[{"function":"alias","alias":"result","contents":{"function":"binop"}}]}`

func newRelicConfig(address string) Config {
	return Config{
		Type:    "newrelic",
		Address: address,
		Secret: map[string][]byte{
			"newrelic_query_key":  []byte("NRIQ-key"),
			"newrelic_account_id": []byte("1234567"),
		},
		Timeout: 5 * time.Second,
	}
}

func TestNewRelicQueryReturnsTheOneValueOfItsOneResult(t *testing.T) {
	cases := []answerCase{
		{name: "an expression's result is the value", status: 200,
			body: `{"results":[{"result":99.5}],` + newRelicMetadata + `}`, want: 99.5},
		{name: "a function's value is the value", status: 200,
			body: `{"results":[{"count":1200}],` + newRelicMetadata + `}`, want: 1200},
		{name: "a percentile's value is the value", status: 200,
			body: `{"results":[{"percentiles":{"99":0.25}}],` + newRelicMetadata + `}`, want: 0.25},
		{name: "the one facet's value is the value", status: 200,
			body: `{"facets":[{"name":"podinfo","results":[{"average":12.5}]}],"totalResult":{"results":[{"average":12.5}]},` + newRelicMetadata + `}`, want: 12.5},
		{name: "a null result is no values", status: 200,
			body: `{"results":[{"result":null}],` + newRelicMetadata + `}`, wantErr: ErrNoValues},
		{name: "no results are no values", status: 200, body: `{"results":[],` + newRelicMetadata + `}`, wantErr: ErrNoValues},
		{name: "two functions are multiple values", status: 200,
			body: `{"results":[{"count":1200},{"average":12.5}],` + newRelicMetadata + `}`, wantErr: ErrMultipleValues},
		{name: "two percentiles are multiple values", status: 200,
			body: `{"results":[{"percentiles":{"95":0.2,"99":0.25}}],` + newRelicMetadata + `}`, wantErr: ErrMultipleValues},
		{name: "two facets are multiple values", status: 200,
			body: `{"facets":[{"name":"a","results":[{"count":1}]},{"name":"b","results":[{"count":2}]}],` + newRelicMetadata + `}`, wantErr: ErrMultipleValues},
		{name: "events are not a number", status: 200,
			body: `{"results":[{"events":[{"timestamp":1700000000000,"duration":0.1}]}],` + newRelicMetadata + `}`, wantErr: errOther},
		{name: "400 of a syntax error is an error", status: 400, body: `{"error":"NRQL Syntax Error: Error at line 1 position 8"}`, wantErr: errOther},
		{name: "401 is an auth error", status: 401, body: `{"error":"Invalid query key"}`, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403, body: `{"error":"Forbidden"}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"error":"Internal Server Error"}`, wantErr: ErrUnreachable},
	}
	runQueryCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewNewRelic(newRelicConfig(address))
	}, Query{Text: "SELECT percentage(count(*), WHERE httpResponseCode < 500) FROM Transaction", Window: 5 * time.Minute})
}

func TestNewRelicQueriesTheMetricIntervalWithSinceUnlessTheQuerySaysSince(t *testing.T) {
	cases := []struct {
		name     string
		query    string
		window   time.Duration
		wantNRQL string
	}{
		{
			name:     "a query without SINCE gets the interval",
			query:    "SELECT count(*) FROM Transaction WHERE appName = 'podinfo'\n",
			window:   5 * time.Minute,
			wantNRQL: "SELECT count(*) FROM Transaction WHERE appName = 'podinfo' SINCE 300 seconds ago",
		},
		{
			name:     "a query with its own SINCE is left alone",
			query:    "SELECT count(*) FROM Transaction since 30 minutes ago",
			window:   5 * time.Minute,
			wantNRQL: "SELECT count(*) FROM Transaction since 30 minutes ago",
		},
		{
			name:     "since in a string is not a SINCE clause",
			query:    "SELECT count(*) FROM Log WHERE message = 'down since noon'",
			window:   90 * time.Second,
			wantNRQL: "SELECT count(*) FROM Log WHERE message = 'down since noon' SINCE 90 seconds ago",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, 200, "application/json", `{"results":[{"count":3}],`+newRelicMetadata+`}`)
			p, err := New(newRelicConfig(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), Query{Text: tc.query, Window: tc.window})
			checkResult(t, got, err, 3, nil)
			r := srv.only(t)
			if r.Method != http.MethodGet || r.Path != "/v1/accounts/1234567/query" {
				t.Errorf("request %s %s, want GET /v1/accounts/1234567/query", r.Method, r.Path)
			}
			wantParam(t, r, "nrql", tc.wantNRQL)
			wantHeader(t, r, "X-Query-Key", "NRIQ-key")
		})
	}
}

func TestNewRelicHealthyRunsASmallCount(t *testing.T) {
	cases := []answerCase{
		{name: "a count is healthy", status: 200, body: `{"results":[{"count":0}],` + newRelicMetadata + `}`},
		{name: "401 is an auth error", status: 401, body: `{"error":"Invalid query key"}`, wantErr: ErrAuth},
		{name: "503 is unreachable", status: 503, body: `{"error":"Service Unavailable"}`, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewNewRelic(newRelicConfig(address))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodGet || r.Path != "/v1/accounts/1234567/query" {
			t.Errorf("probe %s %s, want GET /v1/accounts/1234567/query", r.Method, r.Path)
		}
		wantParam(t, r, "nrql", newRelicProbe)
		wantHeader(t, r, "X-Query-Key", "NRIQ-key")
	})
}

func TestNewRelicDefaultsToTheUSInsightsAPI(t *testing.T) {
	p, err := NewNewRelic(newRelicConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.(*NewRelic).endpoint, "https://insights-api.newrelic.com/v1/accounts/1234567/query"; got != want {
		t.Fatalf("endpoint %q, want %q", got, want)
	}
}

func FuzzParseNewRelic(f *testing.F) {
	for _, seed := range []string{
		`{"results":[{"result":99.5}],` + newRelicMetadata + `}`,
		`{"results":[{"percentiles":{"99":0.25}}]}`,
		`{"results":[{"result":null}]}`,
		`{"results":[{"count":1},{"average":2}]}`,
		`{"facets":[{"name":"a","results":[{"count":1}]}],"totalResult":{"results":[{"count":1}]}}`,
		`{"timeSeries":[{"results":[{"count":1}],"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060}]}`,
		`{"results":[{"events":[{"x":1}]}]}`,
		`{"results":[null]}`,
		`{"error":"NRQL Syntax Error"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseNewRelic(body)
		if err == nil {
			if _, ferr := finiteValue(v); ferr != nil {
				t.Fatalf("value %v and no error", v)
			}
		}
	})
}
