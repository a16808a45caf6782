package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/fxamacker/cbor/v2"
)

// cloudWatchErrorRate is Flagger's documented CloudWatch query: two
// metrics that feed an expression, of which only the expression returns
// data.
const cloudWatchErrorRate = `[
  {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
  {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "ErrorCount",
    "Dimensions": [{"Name": "appName", "Value": "podinfo.test"}]}, "Period": 60, "Stat": "Sum", "Unit": "Count"},
   "ReturnData": false},
  {"Id": "m2", "MetricStat": {"Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "RequestCount",
    "Dimensions": [{"Name": "appName", "Value": "podinfo.test"}]}, "Period": 60, "Stat": "Sum", "Unit": "Count"},
   "ReturnData": false}
]`

// cloudWatchTestNow is the clock of the tests: whole seconds, because the
// protocol sends timestamps with millisecond precision.
var cloudWatchTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cloudWatchRequest is what a GetMetricData request carries, decoded from
// the CBOR body the SDK sends.
type cloudWatchRequest struct {
	StartTime         time.Time
	EndTime           time.Time
	MaxDatapoints     int
	ScanBy            string
	MetricDataQueries []struct {
		ID         string `cbor:"Id"`
		Expression string
		ReturnData *bool
		MetricStat *struct {
			Metric struct {
				Namespace  string
				MetricName string
				Dimensions []struct{ Name, Value string }
			}
			Period int
			Stat   string
		}
	}
}

// cloudWatchServer is a loopback CloudWatch that speaks the Smithy RPC v2
// CBOR protocol, which this SDK version uses for CloudWatch: a POST to
// /service/GraniteServiceVersion20100801/operation/GetMetricData with a
// CBOR body, answered with a CBOR body; errors carry __type and message.
type cloudWatchServer struct {
	*httptest.Server
	status int
	answer any

	mu       sync.Mutex
	requests int
	header   http.Header
	path     string
	body     cloudWatchRequest
	bodyErr  error
}

func newCloudWatchServer(t *testing.T, status int, answer any) *cloudWatchServer {
	t.Helper()
	s := &cloudWatchServer{status: status, answer: answer}
	enc, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests++
		s.header = r.Header.Clone()
		s.path = r.Method + " " + r.URL.Path
		s.body = cloudWatchRequest{}
		s.bodyErr = cbor.Unmarshal(raw, &s.body)
		s.mu.Unlock()

		out, err := enc.Marshal(s.answer)
		if err != nil {
			t.Errorf("encode answer: %v", err)
		}
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		if m, ok := s.answer.(map[string]any); ok && s.status >= 400 {
			// Query-compatible services also name the error in a header.
			if typ, ok := m["__type"].(string); ok {
				w.Header().Set("X-Amzn-Query-Error", typ+";Sender")
			}
		}
		w.WriteHeader(s.status)
		_, _ = w.Write(out)
	}))
	t.Cleanup(s.Close)
	return s
}

// seen returns what the last request carried.
func (s *cloudWatchServer) seen() (requests int, path string, header http.Header, body cloudWatchRequest, bodyErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.path, s.header, s.body, s.bodyErr
}

// cloudWatchTestSecret holds static credentials.
func cloudWatchTestSecret() map[string][]byte {
	return map[string][]byte{
		cloudWatchAccessKeyID:     []byte("AKIDEXAMPLE"),
		cloudWatchSecretAccessKey: []byte("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
	}
}

// noEnv is an empty environment.
func noEnv(string) (string, bool) { return "", false }

// fastRetries keeps the SDK's retries but without their backoff.
func fastRetries(o *cloudwatch.Options) {
	o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), time.Millisecond)
}

func newTestCloudWatch(t *testing.T, address string) *CloudWatch {
	t.Helper()
	p, err := newCloudWatch(Config{
		Type:    "cloudwatch",
		Address: address,
		Region:  "eu-west-1",
		Secret:  cloudWatchTestSecret(),
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return cloudWatchTestNow },
	}, noEnv, fastRetries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cloudWatchAnswer is a GetMetricData answer with one result per values.
func cloudWatchAnswer(results ...map[string]any) map[string]any {
	if results == nil {
		results = []map[string]any{}
	}
	return map[string]any{"MetricDataResults": results, "Messages": []any{}}
}

func TestCloudWatchQueriesGetMetricDataSignedOverTenIntervals(t *testing.T) {
	srv := newCloudWatchServer(t, http.StatusOK, cloudWatchAnswer(map[string]any{
		"Id":         "e1",
		"Label":      "ErrorRate",
		"StatusCode": "Complete",
		"Timestamps": []time.Time{cloudWatchTestNow.Add(-time.Minute), cloudWatchTestNow.Add(-2 * time.Minute)},
		"Values":     []float64{0.25, 0.5},
	}))
	p := newTestCloudWatch(t, srv.URL)

	got, err := p.Query(context.Background(), Query{Text: cloudWatchErrorRate, Window: 2 * time.Minute})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got != 0.25 {
		t.Errorf("value = %v, want the latest datapoint 0.25", got)
	}

	_, path, header, body, bodyErr := srv.seen()
	if path != "POST /service/GraniteServiceVersion20100801/operation/GetMetricData" {
		t.Errorf("request = %q, want the RPC v2 GetMetricData operation", path)
	}
	if header.Get("Smithy-Protocol") != "rpc-v2-cbor" || header.Get("Content-Type") != "application/cbor" {
		t.Errorf("protocol headers = %q, %q; want rpc-v2-cbor, application/cbor",
			header.Get("Smithy-Protocol"), header.Get("Content-Type"))
	}
	auth := header.Get("Authorization")
	if !regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/monitoring/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`).MatchString(auth) {
		t.Errorf("Authorization = %q, want a SigV4 signature by AKIDEXAMPLE for eu-west-1/monitoring", auth)
	}
	if bodyErr != nil {
		t.Fatalf("request body is not CBOR: %v", bodyErr)
	}
	if want := cloudWatchTestNow.Add(-20 * time.Minute); !body.StartTime.Equal(want) {
		t.Errorf("StartTime = %v, want ten intervals back, %v", body.StartTime, want)
	}
	if !body.EndTime.Equal(cloudWatchTestNow) {
		t.Errorf("EndTime = %v, want now, %v", body.EndTime, cloudWatchTestNow)
	}
	if body.ScanBy != "TimestampDescending" || body.MaxDatapoints != 20 {
		t.Errorf("ScanBy, MaxDatapoints = %q, %d; want TimestampDescending, 20", body.ScanBy, body.MaxDatapoints)
	}
	if n := len(body.MetricDataQueries); n != 3 {
		t.Fatalf("sent %d queries, want 3", n)
	}
	e1, m1 := body.MetricDataQueries[0], body.MetricDataQueries[1]
	if e1.ID != "e1" || e1.Expression != "m1 / m2" {
		t.Errorf("first query = %+v, want e1 = m1 / m2", e1)
	}
	if m1.MetricStat == nil || m1.MetricStat.Metric.MetricName != "ErrorCount" || m1.MetricStat.Period != 60 ||
		m1.MetricStat.Stat != "Sum" || m1.ReturnData == nil || *m1.ReturnData ||
		len(m1.MetricStat.Metric.Dimensions) != 1 || m1.MetricStat.Metric.Dimensions[0].Value != "podinfo.test" {
		t.Errorf("second query = %+v, want the ErrorCount metric stat without data", m1)
	}
}

func TestCloudWatchQueryClassifiesAnswers(t *testing.T) {
	result := func(values ...float64) map[string]any {
		ts := make([]time.Time, len(values))
		for i := range values {
			ts[i] = cloudWatchTestNow.Add(-time.Duration(i+1) * time.Minute)
		}
		return map[string]any{"Id": "e1", "StatusCode": "Complete", "Timestamps": ts, "Values": values}
	}
	apiError := func(typ, msg string) map[string]any { return map[string]any{"__type": typ, "message": msg} }
	tests := []struct {
		name     string
		status   int
		answer   any
		want     float64
		wantErr  error
		attempts int
	}{
		{name: "one result gives its latest value", status: 200, answer: cloudWatchAnswer(result(3, 2, 1)), want: 3, attempts: 1},
		{name: "an ascending result still gives the latest value", status: 200, answer: cloudWatchAnswer(map[string]any{
			"Id": "e1", "Timestamps": []time.Time{cloudWatchTestNow.Add(-2 * time.Minute), cloudWatchTestNow.Add(-time.Minute)},
			"Values": []float64{1, 7}}), want: 7, attempts: 1},
		{name: "no result is no values", status: 200, answer: cloudWatchAnswer(), wantErr: ErrNoValues, attempts: 1},
		{name: "a result without datapoints is no values", status: 200, answer: cloudWatchAnswer(result()), wantErr: ErrNoValues, attempts: 1},
		{name: "a NaN datapoint is no values", status: 200, answer: cloudWatchAnswer(result(math.NaN())), wantErr: ErrNoValues, attempts: 1},
		{name: "two results are multiple values", status: 200, answer: cloudWatchAnswer(result(1), result(2)), wantErr: ErrMultipleValues, attempts: 1},
		{name: "a Forbidden result is an auth failure", status: 200, answer: cloudWatchAnswer(map[string]any{
			"Id": "e1", "StatusCode": "Forbidden", "Messages": []map[string]any{{"Code": "Forbidden", "Value": "no access to account"}}}),
			wantErr: ErrAuth, attempts: 1},
		{name: "an invalid key id is an auth failure", status: 403,
			answer: apiError("InvalidClientTokenId", "The security token included in the request is invalid."), wantErr: ErrAuth, attempts: 1},
		{name: "a missing permission is an auth failure", status: 403,
			answer: apiError("AccessDenied", "not authorized to perform: cloudwatch:GetMetricData"), wantErr: ErrAuth, attempts: 1},
		{name: "an expired token answered with 400 is an auth failure", status: 400,
			answer: apiError("ExpiredToken", "The security token included in the request is expired"), wantErr: ErrAuth, attempts: 1},
		{name: "401 is an auth failure", status: 401, answer: apiError("UnknownError", "unauthorized"), wantErr: ErrAuth, attempts: 1},
		{name: "500 is unreachable after the SDK's retries", status: 500,
			answer: apiError("InternalServiceError", "internal error"), wantErr: ErrUnreachable, attempts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCloudWatchServer(t, tt.status, tt.answer)
			p := newTestCloudWatch(t, srv.URL)
			got, err := p.Query(context.Background(), Query{Text: cloudWatchErrorRate, Window: time.Minute})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Query = %v, %v; want %v", got, err, tt.want)
			}
			if n, _, _, _, _ := srv.seen(); n != tt.attempts {
				t.Errorf("server saw %d requests, want %d", n, tt.attempts)
			}
		})
	}
}

func TestCloudWatchQueryOfAnUnreachableEndpointIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	p := newTestCloudWatch(t, srv.URL)
	_, err := p.Query(context.Background(), Query{Text: cloudWatchErrorRate, Window: time.Minute})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("error = %v, want ErrUnreachable", err)
	}
}

func TestCloudWatchRejectsQueriesThatAreNotMetricDataQueries(t *testing.T) {
	srv := newCloudWatchServer(t, http.StatusOK, cloudWatchAnswer())
	p := newTestCloudWatch(t, srv.URL)
	for _, text := range []string{
		``,
		`{"Id": "e1", "Expression": "m1"}`,
		`[]`,
		`[{"Id": "e1", "Expresion": "m1 / m2"}]`,
		`[{"Id": "e1", "Expression": "m1"}] [1]`,
	} {
		if _, err := p.Query(context.Background(), Query{Text: text, Window: time.Minute}); err == nil {
			t.Errorf("query %q: no error", text)
		}
	}
	if n, _, _, _, _ := srv.seen(); n != 0 {
		t.Errorf("server saw %d requests for invalid queries, want none", n)
	}
}

func TestNewCloudWatchNeedsARegionAndBothKeys(t *testing.T) {
	secret := func(drop string) map[string][]byte {
		s := cloudWatchTestSecret()
		delete(s, drop)
		return s
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no region", cfg: Config{Type: "cloudwatch", Secret: cloudWatchTestSecret()}, wantErr: "region"},
		{name: "no secret key", cfg: Config{Type: "cloudwatch", Region: "eu-west-1", Secret: secret(cloudWatchSecretAccessKey)},
			wantErr: cloudWatchSecretAccessKey},
		{name: "no key id", cfg: Config{Type: "cloudwatch", Region: "eu-west-1", Secret: secret(cloudWatchAccessKeyID)},
			wantErr: cloudWatchAccessKeyID},
		{name: "no credentials anywhere", cfg: Config{Type: "cloudwatch", Region: "eu-west-1"}, wantErr: cloudWatchAccessKeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCloudWatch(tt.cfg, noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestCloudWatchFallsBackToTheEnvironmentsCredentials(t *testing.T) {
	srv := newCloudWatchServer(t, http.StatusOK, cloudWatchAnswer(map[string]any{
		"Id": "e1", "Timestamps": []time.Time{cloudWatchTestNow}, "Values": []float64{1}}))
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIDFROMENV",
		"AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN":     "session-token",
	}
	p, err := newCloudWatch(Config{Address: srv.URL, Region: "us-east-2"}, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, fastRetries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(context.Background(), Query{Text: cloudWatchErrorRate, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	_, _, header, _, _ := srv.seen()
	if auth := header.Get("Authorization"); !strings.Contains(auth, "Credential=AKIDFROMENV/") || !strings.Contains(auth, "/us-east-2/monitoring/") {
		t.Errorf("Authorization = %q, want the environment's key id for us-east-2", auth)
	}
	if got := header.Get("X-Amz-Security-Token"); got != "session-token" {
		t.Errorf("X-Amz-Security-Token = %q, want the session token", got)
	}
}

func TestCloudWatchHealthyTakesAValidationErrorAsReachableAndAuthorized(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		answer  any
		wantErr error
		healthy bool
	}{
		{name: "400 for the empty request is healthy", status: 400,
			answer: map[string]any{"__type": "InvalidParameterValue", "message": "The parameter MetricDataQueries is required."}, healthy: true},
		{name: "403 is an auth failure", status: 403,
			answer: map[string]any{"__type": "AccessDenied", "message": "not authorized"}, wantErr: ErrAuth},
		{name: "400 for an expired token is an auth failure", status: 400,
			answer: map[string]any{"__type": "ExpiredToken", "message": "expired"}, wantErr: ErrAuth},
		{name: "503 is unreachable", status: 503,
			answer: map[string]any{"__type": "ServiceUnavailable", "message": "try later"}, wantErr: ErrUnreachable},
		{name: "200 is healthy", status: 200, answer: cloudWatchAnswer(), healthy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCloudWatchServer(t, tt.status, tt.answer)
			err := newTestCloudWatch(t, srv.URL).Healthy(context.Background())
			if tt.healthy {
				if err != nil {
					t.Fatalf("Healthy = %v, want nil", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Healthy = %v, want %v", err, tt.wantErr)
			}
			_, _, header, _, _ := srv.seen()
			if !strings.Contains(header.Get("Authorization"), "Credential=AKIDEXAMPLE/") {
				t.Errorf("the probe was not signed: %q", header.Get("Authorization"))
			}
		})
	}

	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if err := newTestCloudWatch(t, srv.URL).Healthy(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Healthy of a closed port = %v, want ErrUnreachable", err)
	}
}

func TestCloudWatchIsBuiltByNew(t *testing.T) {
	p, err := New(Config{Type: "cloudwatch", Region: "eu-west-1", Secret: cloudWatchTestSecret()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*CloudWatch); !ok {
		t.Fatalf("New built a %T", p)
	}
}

func FuzzCloudWatchQuery(f *testing.F) {
	f.Add(cloudWatchErrorRate)
	f.Add(`[{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count"}, "Period": 60, "Stat": "Sum"}}]`)
	f.Add(`[{"Id": "q1", "Expression": "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId)", "Period": 300}]`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Add(`[{"Id": 1}]`)
	f.Add(`[{"ReturnData": "yes"}]`)
	f.Fuzz(func(t *testing.T, text string) {
		qs, err := parseCloudWatchQuery(text)
		if err == nil && len(qs) == 0 {
			t.Errorf("query %q parsed to no queries without an error", text)
		}
	})
}

func FuzzCloudWatchResults(f *testing.F) {
	f.Add(`[{"Id": "e1", "Label": "ErrorRate", "StatusCode": "Complete",
	  "Timestamps": ["2026-03-01T11:59:00Z", "2026-03-01T11:58:00Z"], "Values": [0.25, 0.5]}]`)
	f.Add(`[{"Id": "e1", "StatusCode": "PartialData", "Timestamps": [], "Values": []}]`)
	f.Add(`[{"Id": "e1", "StatusCode": "Forbidden", "Messages": [{"Code": "Forbidden", "Value": "denied"}]}]`)
	f.Add(`[{"Id": "e1", "Values": [1, 2, 3]}]`)
	f.Add(`[{"Id": "a", "Values": [1]}, {"Id": "b", "Values": [2]}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var results []types.MetricDataResult
		if json.Unmarshal([]byte(body), &results) != nil {
			return
		}
		v, err := cloudWatchValue(results)
		if err != nil {
			if !errors.Is(err, ErrNoValues) && !errors.Is(err, ErrMultipleValues) && !errors.Is(err, ErrAuth) {
				t.Errorf("results %s: unclassified error %v", body, err)
			}
			return
		}
		if len(results) != 1 || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("results %s gave %v", body, v)
		}
	})
}
