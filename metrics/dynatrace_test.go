package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dynatraceBody is a /api/v2/metrics/query answer as Dynatrace documents
// it, with the given data entries of one metric.
func dynatraceBody(data ...string) string {
	return `{"totalCount":` + strconv.Itoa(len(data)) + `,"nextPageKey":null,"resolution":"Inf",` +
		`"result":[{"metricId":"builtin:service.response.time:avg","dataPointCountRatio":0.0012,"dimensionCountRatio":0.01,` +
		`"data":[` + strings.Join(data, ",") + `]}]}`
}

// dynatraceData is one series of a metrics query answer.
func dynatraceData(service, values string) string {
	return `{"dimensions":["` + service + `"],"dimensionMap":{"dt.entity.service":"` + service + `"},` +
		`"timestamps":[1700000300000],"values":` + values + `}`
}

func dynatraceConfig(address string) Config {
	return Config{
		Type:    "dynatrace",
		Address: address,
		Secret:  map[string][]byte{"dynatrace_token": []byte("dt0c01.token")},
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return time.UnixMilli(1700000300000) },
	}
}

func TestDynatraceQueryReturnsTheLastValueOfItsOneSeries(t *testing.T) {
	cases := []answerCase{
		{name: "the series' value is the value", status: 200, body: dynatraceBody(dynatraceData("SERVICE-1", `[1234.5]`)), want: 1234.5},
		{name: "a null last value is skipped", status: 200, body: dynatraceBody(dynatraceData("SERVICE-1", `[10.5,null]`)), want: 10.5},
		{name: "no series is no values", status: 200, body: dynatraceBody(), wantErr: ErrNoValues},
		{name: "no metric is no values", status: 200, body: `{"totalCount":0,"nextPageKey":null,"resolution":"Inf","result":[]}`, wantErr: ErrNoValues},
		{name: "a null value is no values", status: 200, body: dynatraceBody(dynatraceData("SERVICE-1", `[null]`)), wantErr: ErrNoValues},
		{name: "two series are multiple values", status: 200,
			body: dynatraceBody(dynatraceData("SERVICE-1", `[1]`), dynatraceData("SERVICE-2", `[2]`)), wantErr: ErrMultipleValues},
		{name: "two metrics are multiple values", status: 200,
			body: `{"result":[{"metricId":"a","data":[{"values":[1]}]},{"metricId":"b","data":[{"values":[2]}]}]}`, wantErr: ErrMultipleValues},
		{name: "400 is an error", status: 400,
			body: `{"error":{"code":400,"message":"Cannot parse metric selector"}}`, wantErr: errOther},
		{name: "401 is an auth error", status: 401,
			body: `{"error":{"code":401,"message":"Missing authorization parameter."}}`, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403,
			body: `{"error":{"code":403,"message":"Token is missing required scope. Use one of: metrics.read (Read metrics)"}}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"error":{"code":500,"message":"Internal Server Error"}}`, wantErr: ErrUnreachable},
	}
	runQueryCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewDynatrace(dynatraceConfig(address))
	}, Query{Text: "builtin:service.response.time:avg", Window: 5 * time.Minute})
}

func TestDynatraceQueriesTheMetricIntervalInMilliseconds(t *testing.T) {
	srv := newRecordingServer(t, 200, "application/json", dynatraceBody(dynatraceData("SERVICE-1", `[1234.5]`)))
	p, err := New(dynatraceConfig(srv.URL + "/e/abc123/"))
	if err != nil {
		t.Fatal(err)
	}
	selector := `builtin:service.response.time:filter(eq("dt.entity.service","SERVICE-1")):avg`
	got, err := p.Query(context.Background(), Query{Text: selector, Window: 5 * time.Minute})
	checkResult(t, got, err, 1234.5, nil)
	r := srv.only(t)
	if r.Method != http.MethodGet || r.Path != "/e/abc123/api/v2/metrics/query" {
		t.Errorf("request %s %s, want GET /e/abc123/api/v2/metrics/query", r.Method, r.Path)
	}
	wantParam(t, r, "metricSelector", selector)
	wantParam(t, r, "resolution", "Inf")
	wantParam(t, r, "from", "1700000000000")
	wantParam(t, r, "to", "1700000300000")
	wantHeader(t, r, "Authorization", "Api-Token dt0c01.token")
}

func TestDynatraceHealthyListsOneMetric(t *testing.T) {
	cases := []answerCase{
		{name: "a metric list is healthy", status: 200,
			body: `{"totalCount":2000,"nextPageKey":"AQAAABQBAAAABQ==","metrics":[{"metricId":"builtin:apps.other.apdex.osAndGeo"}]}`},
		{name: "401 is an auth error", status: 401, body: `{"error":{"code":401,"message":"Token Authentication failed"}}`, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403, body: `{"error":{"code":403,"message":"Token is missing required scope."}}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"error":{"code":500,"message":"Internal Server Error"}}`, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewDynatrace(dynatraceConfig(address))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodGet || r.Path != "/api/v2/metrics" {
			t.Errorf("probe %s %s, want GET /api/v2/metrics", r.Method, r.Path)
		}
		wantParam(t, r, "pageSize", "1")
		wantHeader(t, r, "Authorization", "Api-Token dt0c01.token")
	})
}

func FuzzParseDynatrace(f *testing.F) {
	for _, seed := range []string{
		dynatraceBody(dynatraceData("SERVICE-1", `[1234.5]`)),
		dynatraceBody(dynatraceData("SERVICE-1", `[10.5,null]`)),
		dynatraceBody(dynatraceData("SERVICE-1", `[null]`)),
		dynatraceBody(dynatraceData("SERVICE-1", `[1]`), dynatraceData("SERVICE-2", `[2]`)),
		dynatraceBody(),
		`{"result":[{"metricId":"a","data":[{"values":["x"]}]}]}`,
		`{"result":[{"metricId":"a","data":null}]}`,
		`{"error":{"code":400,"message":"Cannot parse metric selector"}}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseDynatrace(body)
		if err == nil {
			if _, ferr := finiteValue(v); ferr != nil {
				t.Fatalf("value %v and no error", v)
			}
		}
	})
}
