package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// splunkTestNow is the clock of the tests: 2026-03-01T12:00:00Z.
var splunkTestNow = time.UnixMilli(1772366400000).UTC()

// splunkSuccessRate is Flagger's documented SignalFlow program.
const splunkSuccessRate = `total = data('traces.count', filter=filter('sf_service', 'podinfo')).sum().publish(enable=False)
success = data('traces.count', filter=filter('sf_service', 'podinfo') and filter('sf_error', 'false')).sum().publish(enable=False)
((success/total) * 100).publish()`

// sse renders one Server-Sent Event the way SignalFlow sends them: the
// event name, then the pretty-printed JSON payload one data line per line.
func sse(event, payload string) string {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(payload, "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

const (
	signalFlowStart = `{
  "event" : "STREAM_START",
  "timestampMs" : 1772366400100
}`
	signalFlowJobStart = `{
  "event" : "JOB_START",
  "handle" : "EnVfNhOAYAA",
  "timestampMs" : 1772366400120
}`
	signalFlowMetadata = `{
  "properties" : {
    "computationId" : "EnVfNhOAYAA",
    "sf_key" : [ "sf_originatingMetric", "sf_metric" ],
    "sf_metric" : "_SF_COMP_EnVfNhOAYAA_02-PUBLISH_METRIC",
    "sf_organizationID" : "AAAAAAAAAAA",
    "sf_resolutionMs" : 60000,
    "sf_type" : "MetricTimeSeries"
  },
  "tsId" : "AAAAAKqVjXg"
}`
	signalFlowEnd = `{
  "event" : "END_OF_CHANNEL",
  "timestampMs" : 1772366400300
}`
)

// signalFlowData is a data message with one datapoint per tsId/value pair.
func signalFlowData(ts string, points ...string) string {
	var data []string
	for i := 0; i+1 < len(points); i += 2 {
		data = append(data, "{\n    \"tsId\" : \""+points[i]+"\",\n    \"value\" : "+points[i+1]+"\n  }")
	}
	return "{\n  \"data\" : [ " + strings.Join(data, ", ") + " ],\n  \"logicalTimestampMs\" : " + ts + "\n}"
}

// signalFlowStream is a whole computation around the given events.
func signalFlowStream(events ...string) string {
	return sse("control-message", signalFlowStart) + sse("control-message", signalFlowJobStart) +
		sse("metadata", signalFlowMetadata) + strings.Join(events, "") + sse("control-message", signalFlowEnd)
}

// splunkServer is a loopback Splunk Observability realm: the SignalFlow
// execute endpoint of the stream API and the metric listing of the REST
// API.
type splunkServer struct {
	*httptest.Server
	status int
	body   string
	// hold keeps the stream open after the body, like a live computation.
	hold bool

	mu          sync.Mutex
	executes    int
	params      url.Values
	token       string
	contentType string
	program     string
	metricCalls int
	metricQuery string
}

func newSplunkServer(t *testing.T, status int, body string) *splunkServer {
	t.Helper()
	s := &splunkServer{status: status, body: body}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/signalflow/execute", func(w http.ResponseWriter, r *http.Request) {
		program, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.executes++
		s.params = r.URL.Query()
		s.token = r.Header.Get("X-SF-Token")
		s.contentType = r.Header.Get("Content-Type")
		s.program = string(program)
		s.mu.Unlock()
		if s.status == http.StatusOK {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
		if s.hold {
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	mux.HandleFunc("GET /v2/metric", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.metricCalls++
		s.metricQuery = r.URL.RawQuery
		s.token = r.Header.Get("X-SF-Token")
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, `{"count": 1, "results": [{"name": "traces.count", "type": "COUNTER", "custom": false}]}`)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newTestSplunk(t *testing.T, address string) *Splunk {
	t.Helper()
	p, err := NewSplunk(Config{
		Type:    "splunk",
		Address: address,
		Secret:  map[string][]byte{splunkTokenKey: []byte("sf-test-token")},
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return splunkTestNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Splunk)
}

func TestSplunkExecutesTheProgramOverTenIntervals(t *testing.T) {
	srv := newSplunkServer(t, http.StatusOK, signalFlowStream(
		sse("data", signalFlowData("1772366280000", "AAAAAKqVjXg", "97.5")),
		sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "98.25")),
	))
	p := newTestSplunk(t, srv.URL)

	got, err := p.Query(context.Background(), Query{Text: splunkSuccessRate, Window: 2 * time.Minute})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got != 98.25 {
		t.Errorf("value = %v, want the last datapoint 98.25", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.token != "sf-test-token" {
		t.Errorf("X-SF-Token = %q, want the secret's token", srv.token)
	}
	if srv.program != splunkSuccessRate || srv.contentType != "text/plain" {
		t.Errorf("body = %q (%s), want the program as text/plain", srv.program, srv.contentType)
	}
	want := url.Values{"start": {"1772365200000"}, "stop": {"1772366400000"}, "immediate": {"true"}}
	if srv.params.Encode() != want.Encode() {
		t.Errorf("parameters = %v, want start twenty minutes back, stop now, immediate: %v", srv.params, want)
	}
}

func TestSplunkQueryClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    float64
		wantErr error
		plain   bool
	}{
		{name: "an integer datapoint is a value", status: 200,
			body: signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "42"))), want: 42},
		{name: "null datapoints are skipped", status: 200, body: signalFlowStream(
			sse("data", signalFlowData("1772366280000", "AAAAAKqVjXg", "5")),
			sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "null"))), want: 5},
		{name: "no data message is no values", status: 200, body: signalFlowStream(), wantErr: ErrNoValues},
		{name: "only null datapoints are no values", status: 200,
			body: signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "null"))), wantErr: ErrNoValues},
		{name: "two time series are multiple values", status: 200, body: signalFlowStream(
			sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "1", "AAAAAH9_nQk", "2"))), wantErr: ErrMultipleValues},
		{name: "an error message is a query error", status: 200, plain: true, body: sse("control-message", signalFlowStart) +
			sse("error", `{
  "errors" : [ {
    "code" : "ANALYTICS_PROGRAM_NAME_ERROR",
    "context" : { "column" : 1, "line" : 1, "programText" : "dat('x').publish()", "reference" : "dat" }
  } ]
}`)},
		{name: "an aborted computation is a query error", status: 200, plain: true, body: sse("control-message", `{
  "abortInfo" : { "sf_job_abortReason" : "Job exceeded max timeseries", "sf_job_abortState" : "ABORTED" },
  "event" : "CHANNEL_ABORT",
  "timestampMs" : 1772366400200
}`)},
		{name: "a malformed data message is a query error", status: 200, plain: true, body: sse("data", `{"data": [{"tsId": 7}]}`)},
		{name: "401 is an auth failure", status: 401, body: `{"code": 401, "message": "Unauthorized"}`, wantErr: ErrAuth},
		{name: "403 is an auth failure", status: 403, body: `{"code": 403, "message": "token has no API scope"}`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `{"code": 500, "message": "internal"}`, wantErr: ErrUnreachable},
		{name: "a bad program is a query error", status: 400, plain: true,
			body: `{"code": 400, "errorType": "ANALYTICS_PROGRAM_SYNTAX_ERROR", "message": "syntax error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSplunkServer(t, tt.status, tt.body)
			got, err := newTestSplunk(t, srv.URL).Query(context.Background(), Query{Text: splunkSuccessRate, Window: time.Minute})
			switch {
			case tt.plain:
				if err == nil || errors.Is(err, ErrNoValues) || errors.Is(err, ErrMultipleValues) ||
					errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
					t.Fatalf("error = %v, want a plain query error", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("Query = %v, %v; want %v", got, err, tt.want)
				}
			}
		})
	}
}

func TestSplunkStopsReadingAtTheEndOfTheChannel(t *testing.T) {
	srv := newSplunkServer(t, http.StatusOK, signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "7"))))
	srv.hold = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got, err := newTestSplunk(t, srv.URL).Query(ctx, Query{Text: splunkSuccessRate, Window: time.Minute})
	if err != nil || got != 7 {
		t.Fatalf("Query = %v, %v; want 7 without waiting for the stream to close", got, err)
	}
}

func TestSplunkQueryOfAnUnreachableRealmIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	p := newTestSplunk(t, srv.URL)
	if _, err := p.Query(context.Background(), Query{Text: splunkSuccessRate}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Query = %v, want ErrUnreachable", err)
	}
	if err := p.Healthy(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Healthy = %v, want ErrUnreachable", err)
	}
}

func TestSplunkHealthyListsOneMetricWithTheToken(t *testing.T) {
	tests := []struct {
		status  int
		wantErr error
	}{
		{status: 200},
		{status: 401, wantErr: ErrAuth},
		{status: 403, wantErr: ErrAuth},
		{status: 503, wantErr: ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := newSplunkServer(t, tt.status, "")
			err := newTestSplunk(t, srv.URL).Healthy(context.Background())
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Healthy = %v, want %v", err, tt.wantErr)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.metricCalls != 1 || srv.metricQuery != "limit=1" || srv.token != "sf-test-token" || srv.executes != 0 {
				t.Errorf("probe = %d metric calls (%s, token %q), %d executions; want one limit=1 listing with the token",
					srv.metricCalls, srv.metricQuery, srv.token, srv.executes)
			}
		})
	}
}

func TestSplunkEndpointsFollowTheAddressesRealm(t *testing.T) {
	tests := []struct {
		address, stream, api string
	}{
		{"https://api.us1.signalfx.com", "https://stream.us1.signalfx.com", "https://api.us1.signalfx.com"},
		{"https://stream.eu0.signalfx.com/", "https://stream.eu0.signalfx.com", "https://api.eu0.signalfx.com"},
		{"wss://stream.jp0.signalfx.com", "https://stream.jp0.signalfx.com", "https://api.jp0.signalfx.com"},
		{"https://api.us2.observability.splunkcloud.com", "https://stream.us2.observability.splunkcloud.com", "https://api.us2.observability.splunkcloud.com"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		stream, api, err := splunkEndpoints(tt.address)
		if err != nil || stream != tt.stream || api != tt.api {
			t.Errorf("splunkEndpoints(%q) = %q, %q, %v; want %q, %q", tt.address, stream, api, err, tt.stream, tt.api)
		}
	}
	for _, bad := range []string{"ftp://stream.us1.signalfx.com", "stream.us1.signalfx.com", "://"} {
		if _, _, err := splunkEndpoints(bad); err == nil {
			t.Errorf("splunkEndpoints(%q): no error", bad)
		}
	}
}

func TestNewSplunkNeedsTheToken(t *testing.T) {
	_, err := NewSplunk(Config{Type: "splunk"})
	if err == nil || !strings.Contains(err.Error(), splunkTokenKey) {
		t.Fatalf("error = %v, want one naming %s", err, splunkTokenKey)
	}
	p, err := New(Config{Type: "splunk", Secret: map[string][]byte{splunkTokenKey: []byte("t")}})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := p.(*Splunk); !ok || s.streamURL != splunkDefaultAddress {
		t.Fatalf("New built %#v, want a Splunk provider for %s", p, splunkDefaultAddress)
	}
}

func FuzzSplunkSignalFlowStream(f *testing.F) {
	f.Add(signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "98.25"))))
	f.Add(signalFlowStream())
	f.Add(signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "1", "AAAAAH9_nQk", "2"))))
	f.Add(signalFlowStream(sse("data", signalFlowData("1772366340000", "AAAAAKqVjXg", "null"))))
	f.Add(sse("error", `{"errors": [{"code": "ANALYTICS_PROGRAM_NAME_ERROR"}]}`))
	f.Add(sse("control-message", `{"event": "CHANNEL_ABORT", "abortInfo": {"sf_job_abortState": "ABORTED"}}`))
	f.Add("event: data\r\ndata: {\"data\": [{\"tsId\": \"a\", \"value\": 1e308}], \"logicalTimestampMs\": 1}\r\n\r\n")
	f.Add(": keep-alive comment\n\nevent: data\ndata: {\"data\": [{\"tsId\": \"a\", \"value\": -3}]}")
	f.Add("data\n\nevent\n\n:\n")
	f.Fuzz(func(t *testing.T, body string) {
		v, err := parseSignalFlowStream(strings.NewReader(body))
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("stream %q gave %v without an error", body, v)
		}
	})
}
