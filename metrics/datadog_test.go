package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// datadogAnswer is a /api/v1/query answer as Datadog documents it, with
// the given series.
func datadogAnswer(series ...string) string {
	return `{"status":"ok","res_type":"time_series","resp_version":1,` +
		`"query":"sum:trace.http.request.errors{service:podinfo}.as_count()",` +
		`"from_date":1700000000000,"to_date":1700000300000,"message":"","group_by":[],` +
		`"series":[` + strings.Join(series, ",") + `],"values":[],"times":[]}`
}

// datadogSeries is one series of a /api/v1/query answer.
func datadogSeries(scope, pointlist string) string {
	return `{"metric":"trace.http.request.errors","display_name":"trace.http.request.errors",` +
		`"unit":[{"family":"network","name":"request","plural":"requests","scale_factor":1.0,"short_name":"req"},null],` +
		`"pointlist":` + pointlist + `,"start":1700000000000,"end":1700000299000,"interval":60,"length":3,` +
		`"aggr":"sum","scope":"` + scope + `","expression":"sum:trace.http.request.errors{` + scope + `}.as_count()",` +
		`"query_index":0,"tag_set":[],"attributes":{}}`
}

func datadogConfig(address string) Config {
	return Config{
		Type:    "datadog",
		Address: address,
		Secret: map[string][]byte{
			"datadog_api_key":         []byte("api-key"),
			"datadog_application_key": []byte("app-key"),
		},
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return time.Unix(1700000300, 0) },
	}
}

func TestDatadogQueryReturnsTheLastPointOfItsOneSeries(t *testing.T) {
	cases := []answerCase{
		{name: "the last point of the series is the value", status: 200,
			body: datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,1.0],[1700000060000.0,2.5]]`)), want: 2.5},
		{name: "a null last point is skipped", status: 200,
			body: datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,1.0],[1700000060000.0,4.0],[1700000120000.0,null]]`)), want: 4},
		{name: "no series is no values", status: 200, body: datadogAnswer(), wantErr: ErrNoValues},
		{name: "a series of null points is no values", status: 200,
			body: datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,null]]`)), wantErr: ErrNoValues},
		{name: "a series without points is no values", status: 200,
			body: datadogAnswer(datadogSeries("service:podinfo", `[]`)), wantErr: ErrNoValues},
		{name: "two series are multiple values", status: 200,
			body: datadogAnswer(
				datadogSeries("service:podinfo,env:a", `[[1700000000000.0,1.0]]`),
				datadogSeries("service:podinfo,env:b", `[[1700000000000.0,2.0]]`)),
			wantErr: ErrMultipleValues},
		{name: "an error in the answer is an error", status: 200,
			body: `{"status":"error","res_type":"time_series","series":[],"error":"Error parsing query: unable to parse sum:"}`, wantErr: errOther},
		{name: "400 is an error", status: 400, body: `{"errors":["Error parsing query"]}`, wantErr: errOther},
		{name: "401 is an auth error", status: 401, body: `{"errors":["Unauthorized"]}`, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403, body: `{"errors":["Forbidden"]}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"errors":["Internal Server Error"]}`, wantErr: ErrUnreachable},
	}
	runQueryCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewDatadog(datadogConfig(address))
	}, Query{Text: "sum:trace.http.request.errors{service:podinfo}.as_count()", Window: 5 * time.Minute})
}

func TestDatadogQueriesTheMetricIntervalAsItsTimeWindow(t *testing.T) {
	cases := []struct {
		name     string
		window   time.Duration
		wantFrom string
	}{
		{"a five minute interval", 5 * time.Minute, "1700000000"},
		{"a sub-second interval rounds up to a second", 300 * time.Millisecond, "1700000299"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, 200, "application/json",
				datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,1.0]]`)))
			// A path on the address, as behind a proxy, is kept.
			cfg := datadogConfig(srv.URL + "/datadog/")
			cfg.Headers = http.Header{"X-Proxy-Tenant": {"team-a"}}
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			query := "sum:trace.http.request.errors{service:podinfo}.as_count()"
			if _, err := p.Query(context.Background(), Query{Text: query, Window: tc.window}); err != nil {
				t.Fatal(err)
			}
			r := srv.only(t)
			if r.Method != http.MethodGet || r.Path != "/datadog/api/v1/query" {
				t.Errorf("request %s %s, want GET /datadog/api/v1/query", r.Method, r.Path)
			}
			wantParam(t, r, "query", query)
			wantParam(t, r, "from", tc.wantFrom)
			wantParam(t, r, "to", "1700000300")
			wantHeader(t, r, "DD-API-KEY", "api-key")
			wantHeader(t, r, "DD-APPLICATION-KEY", "app-key")
			wantHeader(t, r, "X-Proxy-Tenant", "team-a")
		})
	}
}

func TestDatadogHealthyValidatesTheAPIKey(t *testing.T) {
	cases := []answerCase{
		{name: "a valid key is healthy", status: 200, body: `{"valid":true}`},
		{name: "a key that is not valid is an auth error", status: 200, body: `{"valid":false}`, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403, body: `{"errors":["Forbidden"]}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"errors":["Internal Server Error"]}`, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewDatadog(datadogConfig(address))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodGet || r.Path != "/api/v1/validate" {
			t.Errorf("probe %s %s, want GET /api/v1/validate", r.Method, r.Path)
		}
		wantHeader(t, r, "DD-API-KEY", "api-key")
	})
}

func TestNewDatadogDefaultsToTheUSSite(t *testing.T) {
	p, err := NewDatadog(datadogConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	dd := p.(*Datadog)
	got, err := dd.metrics.Client.Cfg.ServerURLWithContext(dd.context(context.Background()), "v1.MetricsApi.QueryMetrics")
	if err != nil || got != "https://api.datadoghq.com" {
		t.Fatalf("server %q, %v; want https://api.datadoghq.com", got, err)
	}
}

func FuzzParseDatadog(f *testing.F) {
	for _, seed := range []string{
		datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,1.0],[1700000060000.0,2.5]]`)),
		datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0,null]]`)),
		datadogAnswer(datadogSeries("a", `[[1.0,1.0]]`), datadogSeries("b", `[[1.0,2.0]]`)),
		datadogAnswer(datadogSeries("service:podinfo", `[[1700000000000.0],[]]`)),
		datadogAnswer(datadogSeries("service:podinfo", `[["x",1]]`)),
		datadogAnswer(),
		`{"status":"error","error":"Error parsing query"}`,
		`{"series":[null]}`,
		`{"series":{}}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseDatadog(body)
		if err == nil {
			if _, ferr := finiteValue(v); ferr != nil {
				t.Fatalf("value %v and no error", v)
			}
		}
	})
}
