package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordedRequest is what a recordingServer received.
type recordedRequest struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// recordingServer is a loopback backend that gives one canned answer and
// records the requests it received.
type recordingServer struct {
	URL string

	mu       sync.Mutex
	requests []recordedRequest
}

// newRecordingServer answers every request with status, contentType and
// body.
func newRecordingServer(t *testing.T, status int, contentType, body string) *recordingServer {
	t.Helper()
	rs := &recordingServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.requests = append(rs.requests, recordedRequest{
			Method: r.Method,
			Path:   r.URL.Path,
			Query:  r.URL.Query(),
			Header: r.Header.Clone(),
			Body:   string(b),
		})
		rs.mu.Unlock()
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	rs.URL = srv.URL
	return rs
}

// only returns the one request the server received.
func (rs *recordingServer) only(t *testing.T) recordedRequest {
	t.Helper()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.requests) != 1 {
		t.Fatalf("server received %d requests, want 1", len(rs.requests))
	}
	return rs.requests[0]
}

// unreachableAddress is the address of a server that is gone.
func unreachableAddress(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// errOther stands for an error that wraps none of the sentinel errors.
var errOther = errors.New("an error that is none of the sentinels")

// checkResult fails t unless (got, err) is want, or an error that matches
// wantErr when that is set.
func checkResult(t *testing.T, got float64, err error, want float64, wantErr error) {
	t.Helper()
	switch {
	case wantErr == nil:
		if err != nil {
			t.Fatalf("got error %v, want %v", err, want)
		}
		if got != want {
			t.Fatalf("got %v, want %v", got, want)
		}
	case errors.Is(wantErr, errOther):
		if err == nil {
			t.Fatalf("got %v, want an error", got)
		}
		for _, sentinel := range []error{ErrNoValues, ErrMultipleValues, ErrUnreachable, ErrAuth} {
			if errors.Is(err, sentinel) {
				t.Fatalf("got error %q, want one that is not %q", err, sentinel)
			}
		}
	default:
		if !errors.Is(err, wantErr) {
			t.Fatalf("got %v, %v; want an error that is %q", got, err, wantErr)
		}
	}
}

// answerCase is a backend's canned answer and what a query or a probe
// should make of it.
type answerCase struct {
	name    string
	status  int
	body    string
	want    float64
	wantErr error
}

// runQueryCases queries a provider built for a recordingServer with each
// case's answer, and one built for an unreachable address.
func runQueryCases(t *testing.T, contentType string, cases []answerCase, build func(address string) (Provider, error), q Query) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, tc.status, contentType, tc.body)
			p, err := build(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), q)
			checkResult(t, got, err, tc.want, tc.wantErr)
		})
	}
	t.Run("an unreachable address is unreachable", func(t *testing.T) {
		p, err := build(unreachableAddress(t))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Query(context.Background(), q)
		checkResult(t, got, err, 0, ErrUnreachable)
	})
}

// runHealthCases probes a provider built for a recordingServer with each
// case's answer, and one built for an unreachable address; check asserts
// the probe's request.
func runHealthCases(t *testing.T, contentType string, cases []answerCase, build func(address string) (Provider, error), check func(t *testing.T, r recordedRequest)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, tc.status, contentType, tc.body)
			p, err := build(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Healthy(context.Background())
			checkResult(t, 0, err, 0, tc.wantErr)
			check(t, srv.only(t))
		})
	}
	t.Run("an unreachable address is unreachable", func(t *testing.T) {
		p, err := build(unreachableAddress(t))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, 0, p.Healthy(context.Background()), 0, ErrUnreachable)
	})
}

// wantHeader fails t unless header key of r is want.
func wantHeader(t *testing.T, r recordedRequest, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

// wantParam fails t unless query parameter key of r is want, once.
func wantParam(t *testing.T, r recordedRequest, key, want string) {
	t.Helper()
	if got := r.Query[key]; len(got) != 1 || got[0] != want {
		t.Errorf("query parameter %s = %q, want %q", key, got, want)
	}
}

func webConfig(address, method, jsonPath string) Config {
	return Config{
		Type:     "web",
		Address:  address,
		Method:   method,
		JSONPath: jsonPath,
		Secret:   map[string][]byte{"token": []byte("web-token")},
		Timeout:  5 * time.Second,
	}
}

func TestWebQueryTakesTheOneValueAtItsJSONPath(t *testing.T) {
	cases := []struct {
		answerCase
		jsonPath string
	}{
		{answerCase{name: "a JSON number is the value", status: 200, body: `{"data":{"value":99.5}}`, want: 99.5}, "{.data.value}"},
		{answerCase{name: "a numeric string is the value", status: 200, body: `{"data":{"value":" 0.25 "}}`, want: 0.25}, "{.data.value}"},
		{answerCase{name: "a path without braces is taken as kubectl takes it", status: 200, body: `{"data":{"value":7}}`, want: 7}, ".data.value"},
		{answerCase{name: "a list of one value is the value", status: 200, body: `{"data":{"values":[3]}}`, want: 3}, "{.data.values}"},
		{answerCase{name: "a filter that selects one item is its value", status: 200, body: `{"series":[{"name":"a","v":1},{"name":"b","v":2}]}`, want: 2}, `{.series[?(@.name=="b")].v}`},
		{answerCase{name: "null is no values", status: 200, body: `{"data":{"value":null}}`, wantErr: ErrNoValues}, "{.data.value}"},
		{answerCase{name: "a missing key is no values", status: 200, body: `{"data":{}}`, wantErr: ErrNoValues}, "{.data.value}"},
		{answerCase{name: "an empty list is no values", status: 200, body: `{"data":{"values":[]}}`, wantErr: ErrNoValues}, "{.data.values}"},
		{answerCase{name: "a NaN string is no values", status: 200, body: `{"data":{"value":"NaN"}}`, wantErr: ErrNoValues}, "{.data.value}"},
		{answerCase{name: "two selected values are multiple values", status: 200, body: `{"data":{"values":[1,2]}}`, wantErr: ErrMultipleValues}, "{.data.values[*]}"},
		{answerCase{name: "a selected list of two is multiple values", status: 200, body: `{"data":{"values":[1,2]}}`, wantErr: ErrMultipleValues}, "{.data.values}"},
		{answerCase{name: "a word is not a number", status: 200, body: `{"data":{"value":"high"}}`, wantErr: errOther}, "{.data.value}"},
		{answerCase{name: "a boolean is not a number", status: 200, body: `{"data":{"value":true}}`, wantErr: errOther}, "{.data.value}"},
		{answerCase{name: "an answer that is not JSON is an error", status: 200, body: `<html>ok</html>`, wantErr: errOther}, "{.data.value}"},
		{answerCase{name: "401 is an auth error", status: 401, body: `unauthorized`, wantErr: ErrAuth}, "{.data.value}"},
		{answerCase{name: "403 is an auth error", status: 403, body: `forbidden`, wantErr: ErrAuth}, "{.data.value}"},
		{answerCase{name: "500 is unreachable", status: 500, body: `oops`, wantErr: ErrUnreachable}, "{.data.value}"},
		{answerCase{name: "404 is an error", status: 404, body: `not found`, wantErr: errOther}, "{.data.value}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, tc.status, "application/json", tc.body)
			p, err := NewWeb(webConfig(srv.URL, "", tc.jsonPath))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), Query{Text: "?service=podinfo", Window: time.Minute})
			checkResult(t, got, err, tc.want, tc.wantErr)
		})
	}
	t.Run("an unreachable address is unreachable", func(t *testing.T) {
		p, err := NewWeb(webConfig(unreachableAddress(t), "", "{.data.value}"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Query(context.Background(), Query{Text: "?service=podinfo", Window: time.Minute})
		checkResult(t, got, err, 0, ErrUnreachable)
	})
}

func TestWebGetAppendsTheQueryToTheAddressVerbatim(t *testing.T) {
	cases := []struct {
		name      string
		query     string
		wantPath  string
		wantQuery url.Values
	}{
		{"query parameters", "?service=podinfo&window=5m", "/api/rate", url.Values{"service": {"podinfo"}, "window": {"5m"}}},
		{"a path and parameters", "/podinfo?window=5m", "/api/rate/podinfo", url.Values{"window": {"5m"}}},
		{"nothing", "", "/api/rate", url.Values{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, 200, "application/json", `{"value":1}`)
			cfg := webConfig(srv.URL+"/api/rate", "GET", "{.value}")
			cfg.Headers = http.Header{"X-Tenant": {"team-a"}}
			p, err := NewWeb(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Query(context.Background(), Query{Text: tc.query, Window: time.Minute}); err != nil {
				t.Fatal(err)
			}
			r := srv.only(t)
			if r.Method != http.MethodGet || r.Path != tc.wantPath {
				t.Errorf("request %s %s, want GET %s", r.Method, r.Path, tc.wantPath)
			}
			if r.Query.Encode() != tc.wantQuery.Encode() {
				t.Errorf("query %q, want %q", r.Query.Encode(), tc.wantQuery.Encode())
			}
			wantHeader(t, r, "Authorization", "Bearer web-token")
			wantHeader(t, r, "X-Tenant", "team-a")
		})
	}
}

func TestWebPostSendsTheQueryAsItsBody(t *testing.T) {
	cases := []struct {
		name            string
		query           string
		wantContentType string
	}{
		{"a JSON query is sent as JSON", `{"service":"podinfo","window":"5m"}`, "application/json"},
		{"any other query is sent as text", `rate(podinfo[5m])`, "text/plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, 200, "application/json", `{"result":{"value":"42"}}`)
			p, err := NewWeb(webConfig(srv.URL+"/query", "post", "{.result.value}"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), Query{Text: tc.query, Window: time.Minute})
			checkResult(t, got, err, 42, nil)
			r := srv.only(t)
			if r.Method != http.MethodPost || r.Path != "/query" || r.Body != tc.query {
				t.Errorf("request %s %s %q, want POST /query %q", r.Method, r.Path, r.Body, tc.query)
			}
			wantHeader(t, r, "Content-Type", tc.wantContentType)
			wantHeader(t, r, "Authorization", "Bearer web-token")
		})
	}
}

func TestWebHealthyGetsTheAddressAndFailsOnlyOnAuthOrServerErrors(t *testing.T) {
	cases := []answerCase{
		{name: "200 is healthy", status: 200, body: `{}`},
		{name: "404 is healthy: the address alone need not be a query", status: 404, body: `not found`},
		{name: "405 is healthy", status: 405, body: `method not allowed`},
		{name: "401 is an auth error", status: 401, wantErr: ErrAuth},
		{name: "403 is an auth error", status: 403, wantErr: ErrAuth},
		{name: "503 is unreachable", status: 503, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewWeb(webConfig(address+"/api/rate", "POST", "{.value}"))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodGet || r.Path != "/api/rate" {
			t.Errorf("probe %s %s, want GET /api/rate", r.Method, r.Path)
		}
		wantHeader(t, r, "Authorization", "Bearer web-token")
	})
}

func TestNewWebRejectsAnIncompleteConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no address", webConfig("", "", "{.value}"), "address"},
		{"a method other than GET or POST", webConfig("http://metrics", "PUT", "{.value}"), "PUT"},
		{"no jsonPath", webConfig("http://metrics", "", ""), "jsonPath"},
		{"a jsonPath that does not parse", webConfig("http://metrics", "", "{.data[}"), "jsonPath"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one that names %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseWeb(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"value":99.5}}`,
		`{"data":{"value":"0.25"}}`,
		`{"data":{"value":null}}`,
		`{"data":{"values":[1,2]}}`,
		`{"data":{"values":[]}}`,
		`{"series":[{"name":"b","v":2}]}`,
		`{"data":{"value":"NaN"}}`,
		`{"data":{"value":1e400}}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	paths := []string{"{.data.value}", "{.data.values}", "{.data.values[*]}", `{.series[?(@.name=="b")].v}`, "{$}", "{..v}"}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range paths {
			v, err := parseWeb(body, path)
			if err == nil {
				if _, ferr := finiteValue(v); ferr != nil {
					t.Fatalf("path %s: value %v and no error", path, v)
				}
			}
		}
	})
}
