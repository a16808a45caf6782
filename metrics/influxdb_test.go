package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// influxCSV joins lines the way InfluxDB writes CSV, with CRLF.
func influxCSV(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n"
}

// Answers of /api/v2/query as InfluxDB documents them.
var (
	influxAnnotatedRow = influxCSV(
		"#group,false,false,true,true,false,false,true,true,true",
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string",
		"#default,_result,,,,,,,,",
		",result,table,_start,_stop,_time,_value,_field,_measurement,service",
		",,0,2023-11-14T22:08:20Z,2023-11-14T22:13:20Z,2023-11-14T22:13:20Z,99.5,success_rate,http,podinfo",
	)
	influxPlainRow = influxCSV(
		",result,table,_start,_stop,_time,_value,_field,_measurement,service",
		",_result,0,2023-11-14T22:08:20Z,2023-11-14T22:13:20Z,2023-11-14T22:13:20Z,42,requests,http,podinfo",
	)
	influxNullRow = influxCSV(
		",result,table,_start,_stop,_value,_field",
		",_result,0,2023-11-14T22:08:20Z,2023-11-14T22:13:20Z,,success_rate",
	)
	influxTwoTables = influxCSV(
		",result,table,_value,_field,service",
		",_result,0,99.5,success_rate,podinfo",
		"",
		",result,table,_value,_field,service",
		",_result,1,98.0,success_rate,backend",
	)
	influxTwoAnnotatedTables = influxCSV(
		"#datatype,string,long,double,string",
		"#group,false,false,false,true",
		"#default,_result,,,",
		",result,table,_value,service",
		",,0,1,podinfo",
		"",
		"#datatype,string,long,long,string",
		"#group,false,false,false,true",
		"#default,_result,,,",
		",result,table,_value,service",
		",,1,2,backend",
	)
	influxErrorTable = influxCSV(
		"#datatype,string,string",
		"#group,true,true",
		"#default,,",
		",error,reference",
		`,"runtime error @1:1-1:40: from: bucket ""podinfo"" not found",`,
	)
)

func influxDBConfig(address string) Config {
	return Config{
		Type:    "influxdb",
		Address: address,
		Secret:  map[string][]byte{"token": []byte("influx-token"), "org": []byte("my-org")},
		Timeout: 5 * time.Second,
	}
}

func TestInfluxDBQueryReturnsTheValueOfItsOneRow(t *testing.T) {
	cases := []answerCase{
		{name: "an annotated row is the value", status: 200, body: influxAnnotatedRow, want: 99.5},
		{name: "a row without annotations is the value", status: 200, body: influxPlainRow, want: 42},
		{name: "an empty answer is no values", status: 200, body: "\r\n", wantErr: ErrNoValues},
		{name: "a null _value is no values", status: 200, body: influxNullRow, wantErr: ErrNoValues},
		{name: "a NaN _value is no values", status: 200, body: influxCSV(",result,table,_value", ",_result,0,NaN"), wantErr: ErrNoValues},
		{name: "two tables are multiple values", status: 200, body: influxTwoTables, wantErr: ErrMultipleValues},
		{name: "two annotated tables are multiple values", status: 200, body: influxTwoAnnotatedTables, wantErr: ErrMultipleValues},
		{name: "two rows are multiple values", status: 200, body: influxCSV(",result,table,_value", ",_result,0,1", ",_result,0,2"), wantErr: ErrMultipleValues},
		{name: "an error table is an error", status: 200, body: influxErrorTable, wantErr: errOther},
		{name: "a string _value is not a number", status: 200, body: influxCSV(",result,table,_value", ",_result,0,high"), wantErr: errOther},
		{name: "a table without _value is an error", status: 200, body: influxCSV(",result,table,name", ",_result,0,podinfo"), wantErr: errOther},
		{name: "400 is an error", status: 400, body: `{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier frm"}`, wantErr: errOther},
		{name: "401 is an auth error", status: 401, body: `{"code":"unauthorized","message":"unauthorized access"}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"code":"internal error","message":"internal error"}`, wantErr: ErrUnreachable},
	}
	runQueryCases(t, "text/csv; charset=utf-8", cases, func(address string) (Provider, error) {
		return NewInfluxDB(influxDBConfig(address))
	}, Query{Text: `from(bucket: "podinfo") |> range(start: -5m) |> last()`, Window: 5 * time.Minute})
}

func TestInfluxDBPostsTheFluxQueryWithTheTokenAndOrg(t *testing.T) {
	srv := newRecordingServer(t, 200, "text/csv; charset=utf-8", influxPlainRow)
	p, err := New(influxDBConfig(srv.URL + "/"))
	if err != nil {
		t.Fatal(err)
	}
	query := "from(bucket: \"podinfo\")\n  |> range(start: -5m)\n  |> last()"
	got, err := p.Query(context.Background(), Query{Text: query, Window: 5 * time.Minute})
	checkResult(t, got, err, 42, nil)
	r := srv.only(t)
	if r.Method != http.MethodPost || r.Path != "/api/v2/query" || r.Body != query {
		t.Errorf("request %s %s %q, want POST /api/v2/query %q", r.Method, r.Path, r.Body, query)
	}
	wantParam(t, r, "org", "my-org")
	wantHeader(t, r, "Authorization", "Token influx-token")
	wantHeader(t, r, "Content-Type", "application/vnd.flux")
	wantHeader(t, r, "Accept", "application/csv")
}

func TestInfluxDBHealthyRunsAQueryThatReadsNoData(t *testing.T) {
	cases := []answerCase{
		{name: "the probe's row is healthy", status: 200, body: influxCSV(",result,table,_value", ",_result,0,1")},
		{name: "an error table is unhealthy", status: 200, body: influxErrorTable, wantErr: errOther},
		{name: "401 is an auth error", status: 401, body: `{"code":"unauthorized","message":"unauthorized access"}`, wantErr: ErrAuth},
		{name: "404 of an unknown org is an error", status: 404, body: `{"code":"not found","message":"organization name \"my-org\" not found"}`, wantErr: errOther},
		{name: "503 is unreachable", status: 503, body: `{"code":"unavailable","message":"unavailable"}`, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "text/csv; charset=utf-8", cases, func(address string) (Provider, error) {
		return NewInfluxDB(influxDBConfig(address))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodPost || r.Path != "/api/v2/query" || r.Body != influxDBProbe {
			t.Errorf("probe %s %s %q, want POST /api/v2/query %q", r.Method, r.Path, r.Body, influxDBProbe)
		}
		wantParam(t, r, "org", "my-org")
		wantHeader(t, r, "Authorization", "Token influx-token")
	})
}

func FuzzParseInfluxDB(f *testing.F) {
	for _, seed := range []string{
		influxAnnotatedRow,
		influxPlainRow,
		influxNullRow,
		influxTwoTables,
		influxTwoAnnotatedTables,
		influxErrorTable,
		influxCSV(",result,table,_value", ",_result,0,NaN"),
		influxCSV(",result,table,_value", `,"_result,0`),
		"#datatype\n",
		"\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseInfluxDB(body)
		if err == nil {
			if _, ferr := finiteValue(v); ferr != nil {
				t.Fatalf("value %v and no error", v)
			}
		}
	})
}
