package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func graphiteConfig(address string) Config {
	return Config{
		Type:    "graphite",
		Address: address,
		Secret:  map[string][]byte{"username": []byte("flagger"), "password": []byte("s3cret")},
		Timeout: 5 * time.Second,
	}
}

func TestGraphiteQueryReturnsTheLastDatapointOfItsOneSeries(t *testing.T) {
	cases := []answerCase{
		{name: "the last non-null datapoint is the value", status: 200,
			body: `[{"target":"podinfo.success","tags":{"name":"podinfo.success"},"datapoints":[[99.0,1700000000],[99.5,1700000060],[null,1700000120]]}]`,
			want: 99.5},
		{name: "a quoted datapoint is a number", status: 200,
			body: `[{"target":"podinfo.success","datapoints":[["98.5",1700000000]]}]`, want: 98.5},
		{name: "no series is no values", status: 200, body: `[]`, wantErr: ErrNoValues},
		{name: "a series of nulls is no values", status: 200,
			body: `[{"target":"podinfo.success","datapoints":[[null,1700000000],[null,1700000060]]}]`, wantErr: ErrNoValues},
		{name: "two series are multiple values", status: 200,
			body: `[{"target":"a","datapoints":[[1,1700000000]]},{"target":"b","datapoints":[[2,1700000000]]}]`, wantErr: ErrMultipleValues},
		{name: "a word is not a number", status: 200,
			body: `[{"target":"a","datapoints":[["high",1700000000]]}]`, wantErr: errOther},
		{name: "400 is an error", status: 400, body: `Invalid function: "sumSerie"`, wantErr: errOther},
		{name: "401 is an auth error", status: 401, body: `Unauthorized`, wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: `Internal Server Error`, wantErr: ErrUnreachable},
	}
	runQueryCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewGraphite(graphiteConfig(address))
	}, Query{Text: "sumSeries(podinfo.success)", Window: time.Minute})
}

func TestGraphiteRendersTheTargetOverTheMetricInterval(t *testing.T) {
	cases := []struct {
		name       string
		query      string
		wantTarget string
		wantFrom   string
	}{
		{
			name:       "a target expression",
			query:      "asPercent(\n  sumSeries(stats.podinfo.ok),\n  sumSeries(stats.podinfo.total)\n)",
			wantTarget: "asPercent( sumSeries(stats.podinfo.ok), sumSeries(stats.podinfo.total) )",
			wantFrom:   "-300s",
		},
		{
			name:       "Flagger's target= form",
			query:      "target=summarize(\n  sumSeries(stats.podinfo.ok),\n  '5m',\n  'avg'\n)",
			wantTarget: "summarize( sumSeries(stats.podinfo.ok), '5m', 'avg' )",
			wantFrom:   "-300s",
		},
		{
			name:       "Flagger's form keeps its own from",
			query:      "target=sumSeries(stats.podinfo.ok)&from=-10min",
			wantTarget: "sumSeries(stats.podinfo.ok)",
			wantFrom:   "-10min",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, 200, "application/json", `[{"target":"x","datapoints":[[1,1700000000]]}]`)
			p, err := New(graphiteConfig(srv.URL + "/graphite"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Query(context.Background(), Query{Text: tc.query, Window: 5 * time.Minute}); err != nil {
				t.Fatal(err)
			}
			r := srv.only(t)
			if r.Method != http.MethodGet || r.Path != "/graphite/render" {
				t.Errorf("request %s %s, want GET /graphite/render", r.Method, r.Path)
			}
			wantParam(t, r, "target", tc.wantTarget)
			wantParam(t, r, "from", tc.wantFrom)
			wantParam(t, r, "until", "now")
			wantParam(t, r, "format", "json")
			wantHeader(t, r, "Authorization", "Basic ZmxhZ2dlcjpzM2NyZXQ=")
		})
	}
}

func TestGraphiteHealthyRendersATargetThatNeedNotExist(t *testing.T) {
	cases := []answerCase{
		{name: "an empty render is healthy", status: 200, body: `[]`},
		{name: "401 is an auth error", status: 401, body: `Unauthorized`, wantErr: ErrAuth},
		{name: "502 is unreachable", status: 502, body: `Bad Gateway`, wantErr: ErrUnreachable},
	}
	runHealthCases(t, "application/json", cases, func(address string) (Provider, error) {
		return NewGraphite(graphiteConfig(address))
	}, func(t *testing.T, r recordedRequest) {
		if r.Method != http.MethodGet || r.Path != "/render" {
			t.Errorf("probe %s %s, want GET /render", r.Method, r.Path)
		}
		wantParam(t, r, "format", "json")
		wantHeader(t, r, "Authorization", "Basic ZmxhZ2dlcjpzM2NyZXQ=")
	})
}

func TestNewGraphiteNamesTheMissingSecretKey(t *testing.T) {
	cases := []struct {
		name    string
		secret  map[string][]byte
		address string
		wantErr string
	}{
		{"no address", nil, "", "address"},
		{"a username without a password", map[string][]byte{"username": []byte("u")}, "http://graphite", "password"},
		{"a password without a username", map[string][]byte{"password": []byte("p")}, "http://graphite", "username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := graphiteConfig(tc.address)
			cfg.Secret = tc.secret
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one that names %q", err, tc.wantErr)
			}
		})
	}
}

func TestGraphiteNeedsNoCredentials(t *testing.T) {
	srv := newRecordingServer(t, 200, "application/json", `[{"target":"x","datapoints":[[1,1700000000]]}]`)
	p, err := New(Config{Type: "graphite", Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Query(context.Background(), Query{Text: "x", Window: time.Minute})
	checkResult(t, got, err, 1, nil)
	wantHeader(t, srv.only(t), "Authorization", "")
}

func FuzzParseGraphite(f *testing.F) {
	for _, seed := range []string{
		`[{"target":"podinfo.success","tags":{"name":"podinfo.success"},"datapoints":[[99.0,1700000000],[99.5,1700000060],[null,1700000120]]}]`,
		`[{"target":"a","datapoints":[["98.5",1700000000]]}]`,
		`[{"target":"a","datapoints":[[null,1700000000]]}]`,
		`[{"target":"a","datapoints":[[1,1]]},{"target":"b","datapoints":[[2,1]]}]`,
		`[{"target":"a","datapoints":[[],[{}],[true]]}]`,
		`[{"target":"a","datapoints":null}]`,
		`[]`,
		`{}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseGraphite(body)
		if err == nil {
			if _, ferr := finiteValue(v); ferr != nil {
				t.Fatalf("value %v and no error", v)
			}
		}
	})
}
