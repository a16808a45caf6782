package metrics

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The InfluxDB provider's Secret keys, as in Flagger.
const (
	influxDBToken = "token"
	influxDBOrg   = "org"
)

// influxDBProbe is the Flux query Healthy runs: one row built in memory,
// so it reads no bucket yet goes through the query API with the token and
// the organization of real queries.
const influxDBProbe = "import \"array\"\narray.from(rows: [{_value: 1.0}])"

// InfluxDB runs Flux queries through the InfluxDB 2.x query API. Its
// Secret holds an API token (key token) and the organization (key org, a
// name or an ID).
type InfluxDB struct {
	client *http.Client
	query  string
	token  string
}

// NewInfluxDB builds an InfluxDB provider for cfg.Address.
func NewInfluxDB(cfg Config) (Provider, error) {
	if cfg.Address == "" {
		return nil, errors.New("address is required")
	}
	token, org := string(cfg.Secret[influxDBToken]), string(cfg.Secret[influxDBOrg])
	if token == "" {
		return nil, fmt.Errorf("secret key %s is required", influxDBToken)
	}
	if org == "" {
		return nil, fmt.Errorf("secret key %s is required", influxDBOrg)
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &InfluxDB{
		client: client,
		query:  strings.TrimSuffix(cfg.Address, "/") + "/api/v2/query?" + url.Values{"org": {org}}.Encode(),
		token:  token,
	}, nil
}

// Query runs the Flux query q and returns the _value of its one row. The
// window is in the query itself (range(start: -{{ interval }})).
func (i *InfluxDB) Query(ctx context.Context, q Query) (float64, error) {
	body, err := i.run(ctx, q.Text)
	if err != nil {
		return 0, fmt.Errorf("query influxdb: %w", err)
	}
	v, err := parseInfluxDB(body)
	if err != nil {
		return 0, fmt.Errorf("query influxdb: %w", err)
	}
	return v, nil
}

// Healthy runs a query that reads no data. GET /health would neither check
// the token nor answer on InfluxDB Cloud.
func (i *InfluxDB) Healthy(ctx context.Context) error {
	body, err := i.run(ctx, influxDBProbe)
	if err != nil {
		return fmt.Errorf("probe influxdb: %w", err)
	}
	if _, err := parseInfluxDB(body); err != nil {
		return fmt.Errorf("probe influxdb: %w", err)
	}
	return nil
}

// run posts a Flux query and returns the CSV answer.
func (i *InfluxDB) run(ctx context.Context, flux string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.query, strings.NewReader(flux))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Token "+i.token)
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")
	resp, err := i.client.Do(req)
	if err != nil {
		return nil, classify(0, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := readAnswer(resp.Body)
	if err != nil {
		return nil, classify(0, err)
	}
	if err := classify(resp.StatusCode, nil); err != nil {
		return nil, fmt.Errorf("%w: %s", err, snippet(body))
	}
	return body, nil
}

// parseInfluxDB is the _value of the one row of a Flux CSV answer, with or
// without annotation rows (#datatype, #group, #default). Each table starts
// with a header row whose first cells are "", "result", "table"; an error
// met while the answer streamed comes as a table with an error column.
func parseInfluxDB(body []byte) (float64, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	var header []string
	var values []string
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
		}
		switch {
		case strings.HasPrefix(record[0], "#"):
			// Annotations come before a table's header.
			header = nil
			continue
		case header == nil || influxDBHeader(record):
			header = record
			continue
		}
		if col := slices.Index(header, "error"); col >= 0 && !slices.Contains(header, "_value") {
			return 0, fmt.Errorf("influxdb: %s", snippet([]byte(influxDBCell(record, col))))
		}
		col := slices.Index(header, "_value")
		if col < 0 {
			return 0, errors.New("the answer has no _value column")
		}
		values = append(values, influxDBCell(record, col))
	}
	value, err := only(values, "rows")
	if err != nil {
		return 0, err
	}
	if value == "" {
		return 0, fmt.Errorf("%w: the _value is null", ErrNoValues)
	}
	f, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("the _value %q is not a number", snippet([]byte(value)))
	}
	return finiteValue(f)
}

// influxDBHeader tells a header row from a data row of the previous table,
// which an answer without annotations separates only by a blank line.
func influxDBHeader(record []string) bool {
	return len(record) > 2 && record[0] == "" && record[1] == "result" && record[2] == "table"
}

// influxDBCell is a record's cell, empty if the record is short.
func influxDBCell(record []string, col int) string {
	if col < len(record) {
		return record[col]
	}
	return ""
}
