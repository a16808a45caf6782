package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// splunkTokenKey is the Secret key of the access token, Flagger's name.
	splunkTokenKey = "sf_token_key"
	// splunkTokenHeader carries the access token.
	splunkTokenHeader = "X-SF-Token"
	// splunkDefaultAddress is the stream API of the us1 realm.
	splunkDefaultAddress = "https://stream.us1.signalfx.com"
	// splunkWindowFactor: like Flagger, a query reads ten metric intervals
	// back, so that late or sparse datapoints still give the series' last
	// value.
	splunkWindowFactor = 10
)

// Splunk runs SignalFlow programs against Splunk Observability Cloud
// (SignalFx) through the SignalFlow HTTP API: the program is POSTed to
// /v2/signalflow/execute and the answer streams back as Server-Sent
// Events. The value is the last datapoint of the one time series the
// program publishes. The Secret holds the access token (key
// sf_token_key), as in Flagger.
//
// The address may be the realm's stream API (https://stream.<realm>...,
// the default is us1) or, as Flagger documents it, its REST API
// (https://api.<realm>...); each call goes to the API it belongs to.
type Splunk struct {
	client    *http.Client
	token     string
	streamURL string
	apiURL    string
	cfg       Config
}

// NewSplunk builds a Splunk provider.
func NewSplunk(cfg Config) (Provider, error) {
	token := string(cfg.Secret[splunkTokenKey])
	if token == "" {
		return nil, fmt.Errorf("secret key %s is missing", splunkTokenKey)
	}
	address := cfg.Address
	if address == "" {
		address = splunkDefaultAddress
	}
	stream, api, err := splunkEndpoints(address)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Splunk{client: hc, token: token, streamURL: stream, apiURL: api, cfg: cfg}, nil
}

// splunkEndpoints derives the stream API and the REST API from an address
// of either: their hosts differ in the first label, stream or api. A
// WebSocket address (wss://stream...), which Flagger also takes, becomes
// its HTTP twin.
func splunkEndpoints(address string) (stream, api string, err error) {
	u, err := url.Parse(strings.TrimSuffix(address, "/"))
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("address %q is not a URL", address)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", "", fmt.Errorf("address %q: scheme %q is not http or https", address, u.Scheme)
	}
	s, a := *u, *u
	switch {
	case strings.HasPrefix(u.Host, "api."):
		s.Host = "stream." + strings.TrimPrefix(u.Host, "api.")
	case strings.HasPrefix(u.Host, "stream."):
		a.Host = "api." + strings.TrimPrefix(u.Host, "stream.")
	}
	return s.String(), a.String(), nil
}

// Query executes the program over the ten metric intervals that end now,
// with immediate=true so that the computation runs at once over past data
// and the stream ends.
func (p *Splunk) Query(ctx context.Context, q Query) (float64, error) {
	window := q.Window
	if window <= 0 {
		window = time.Minute
	}
	stop := p.cfg.now()
	start := stop.Add(-splunkWindowFactor * window)
	params := url.Values{
		"start":     {strconv.FormatInt(start.UnixMilli(), 10)},
		"stop":      {strconv.FormatInt(stop.UnixMilli(), 10)},
		"immediate": {"true"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		p.streamURL+"/v2/signalflow/execute?"+params.Encode(), strings.NewReader(q.Text))
	if err != nil {
		return 0, fmt.Errorf("query splunk: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(splunkTokenHeader, p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("query splunk: %w", classify(0, err))
	}
	defer func() { _ = resp.Body.Close() }()
	if err := classify(resp.StatusCode, nil); err != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return 0, fmt.Errorf("query splunk: %w: %s", err, snippet(body))
	}
	v, err := parseSignalFlowStream(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("query splunk: %w", err)
	}
	return v, nil
}

// Healthy lists one metric through the REST API, as Flagger does: it
// checks the token without running a computation.
func (p *Splunk) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.apiURL+"/v2/metric?limit=1", nil)
	if err != nil {
		return fmt.Errorf("probe splunk: %w", err)
	}
	req.Header.Set(splunkTokenHeader, p.token)
	var out json.RawMessage
	if err := doJSON(p.client, req, &out); err != nil {
		return fmt.Errorf("probe splunk: %w", err)
	}
	return nil
}

// signalFlowPoint is the latest non-null datapoint of a time series.
type signalFlowPoint struct {
	timestamp int64
	value     float64
}

// parseSignalFlowStream reads a SignalFlow computation's Server-Sent Events
// until END_OF_CHANNEL or the end of the stream, and takes the last value
// of the one time series with data. Each event's data is JSON, possibly
// over several data lines; data, error and control-message events matter,
// metadata and info messages do not.
func parseSignalFlowStream(r io.Reader) (float64, error) {
	series := map[string]signalFlowPoint{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBody)
	var event string
	var data strings.Builder
	hasData, done := false, false
	dispatch := func() error {
		defer func() { event, hasData = "", false; data.Reset() }()
		if !hasData {
			return nil
		}
		var err error
		done, err = signalFlowEvent(event, data.String(), series)
		return err
	}
	for !done && sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := dispatch(); err != nil {
				return 0, err
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read stream: %w", classify(0, err))
	}
	// A stream cut after its last data line still counts.
	if err := dispatch(); err != nil {
		return 0, err
	}

	var last signalFlowPoint
	switch len(series) {
	case 0:
		return 0, fmt.Errorf("%w: the program published no datapoint", ErrNoValues)
	case 1:
		for _, p := range series {
			last = p
		}
	default:
		return 0, fmt.Errorf("%w: %d time series", ErrMultipleValues, len(series))
	}
	if math.IsNaN(last.value) || math.IsInf(last.value, 0) {
		return 0, fmt.Errorf("%w: the value is %v", ErrNoValues, last.value)
	}
	return last.value, nil
}

// signalFlowEvent applies one event to the series and tells whether the
// computation ended.
func signalFlowEvent(event, data string, series map[string]signalFlowPoint) (done bool, err error) {
	switch event {
	case "data":
		var msg struct {
			LogicalTimestampMs int64 `json:"logicalTimestampMs"`
			Data               []struct {
				TSID  string   `json:"tsId"`
				Value *float64 `json:"value"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(data), &msg); err != nil {
			return false, fmt.Errorf("decode data message: %w: %s", err, snippet([]byte(data)))
		}
		for _, d := range msg.Data {
			if d.Value == nil {
				continue
			}
			if p, ok := series[d.TSID]; !ok || msg.LogicalTimestampMs >= p.timestamp {
				series[d.TSID] = signalFlowPoint{timestamp: msg.LogicalTimestampMs, value: *d.Value}
			}
		}
	case "error":
		return false, fmt.Errorf("signalflow error: %s", snippet([]byte(data)))
	case "control-message":
		var msg struct {
			Event     string          `json:"event"`
			AbortInfo json.RawMessage `json:"abortInfo"`
		}
		if err := json.Unmarshal([]byte(data), &msg); err != nil {
			return false, fmt.Errorf("decode control message: %w: %s", err, snippet([]byte(data)))
		}
		switch msg.Event {
		case "END_OF_CHANNEL":
			return true, nil
		case "CHANNEL_ABORT":
			return false, errors.New("signalflow computation aborted: " + snippet(msg.AbortInfo))
		}
	}
	return false, nil
}
