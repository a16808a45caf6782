package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// webToken is the optional Secret key of the web provider's bearer token.
const webToken = "token"

// Web queries any HTTP endpoint that answers JSON, like Argo Rollouts'
// web provider: a GET of the address with the rendered query appended, or
// a POST of the rendered query to the address, and the value picked from
// the answer with a kubectl JSONPath. Its Secret may hold a bearer token
// (key token) and the TLS keys of httpClient.
type Web struct {
	client  *http.Client
	address string
	method  string
	// jsonPath is kept as text: a parsed jsonpath.JSONPath changes while it
	// evaluates, so each query parses its own.
	jsonPath string
	token    string
}

// NewWeb builds a web provider for cfg.Address, cfg.Method and cfg.JSONPath.
func NewWeb(cfg Config) (Provider, error) {
	if cfg.Address == "" {
		return nil, errors.New("address is required")
	}
	method := strings.ToUpper(cfg.Method)
	switch method {
	case "":
		method = http.MethodGet
	case http.MethodGet, http.MethodPost:
	default:
		return nil, fmt.Errorf("method %q is not GET or POST", cfg.Method)
	}
	if cfg.JSONPath == "" {
		return nil, errors.New("jsonPath is required")
	}
	path := webJSONPath(cfg.JSONPath)
	if err := jsonpath.New("web").Parse(path); err != nil {
		return nil, fmt.Errorf("jsonPath %q: %w", cfg.JSONPath, err)
	}
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Web{
		client:   client,
		address:  cfg.Address,
		method:   method,
		jsonPath: path,
		token:    string(cfg.Secret[webToken]),
	}, nil
}

// webJSONPath accepts kubectl's relaxed form too: a path without braces,
// such as .data.value, is wrapped in them as kubectl does.
func webJSONPath(path string) string {
	path = strings.TrimSpace(path)
	if strings.Contains(path, "{") {
		return path
	}
	return "{" + path + "}"
}

// Query sends the rendered query and picks the value out of the answer.
// The window is in the query itself, if the endpoint takes one.
func (w *Web) Query(ctx context.Context, q Query) (float64, error) {
	req, err := w.request(ctx, q.Text)
	if err != nil {
		return 0, fmt.Errorf("query web: %w", err)
	}
	var answer json.RawMessage
	if err := doJSON(w.client, req, &answer); err != nil {
		return 0, fmt.Errorf("query web: %w", err)
	}
	v, err := parseWeb(answer, w.jsonPath)
	if err != nil {
		return 0, fmt.Errorf("query web: %w", err)
	}
	return v, nil
}

// request builds the query's request: the query appended verbatim to the
// address for GET, so it may carry its own ?parameters, or as the body for
// POST.
func (w *Web) request(ctx context.Context, query string) (*http.Request, error) {
	target, body := w.address+query, io.Reader(nil)
	if w.method == http.MethodPost {
		target, body = w.address, strings.NewReader(query)
	}
	req, err := http.NewRequestWithContext(ctx, w.method, target, body)
	if err != nil {
		return nil, err
	}
	if w.method == http.MethodPost {
		contentType := "text/plain"
		if json.Valid([]byte(query)) {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	return req, nil
}

// Healthy GETs the address. Any answer but a refusal of the credentials or
// a server error counts: the address alone need not be a valid query.
func (w *Web) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.address, nil)
	if err != nil {
		return fmt.Errorf("probe web: %w", err)
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe web: %w", classify(0, err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err := classify(resp.StatusCode, nil); errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
		return fmt.Errorf("probe web: %w: %s", err, snippet(body))
	}
	return nil
}

// parseWeb picks the one value that jsonPath selects in a JSON answer.
func parseWeb(body []byte, jsonPath string) (float64, error) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	jp := jsonpath.New("web").AllowMissingKeys(true)
	if err := jp.Parse(jsonPath); err != nil {
		return 0, fmt.Errorf("jsonPath %q: %w", jsonPath, err)
	}
	results, err := jp.FindResults(doc)
	if err != nil {
		return 0, fmt.Errorf("jsonPath %q: %w", jsonPath, err)
	}
	var values []any
	for _, set := range results {
		for _, r := range set {
			if r.IsValid() {
				values = append(values, r.Interface())
			} else {
				values = append(values, nil)
			}
		}
	}
	if len(values) == 1 {
		return webNumber(values[0])
	}
	return webNumber(values)
}

// webNumber turns a selected JSON value into a number: a JSON number, a
// numeric string, or a list that holds exactly one of them.
func webNumber(v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, fmt.Errorf("%w: the selected value is null or absent", ErrNoValues)
	case float64:
		return finiteValue(v)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("the selected value %q is not a number", snippet([]byte(v)))
		}
		return finiteValue(f)
	case []any:
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("%w: the selection is empty", ErrNoValues)
		case 1:
			return webNumber(v[0])
		default:
			return 0, fmt.Errorf("%w: %d values selected", ErrMultipleValues, len(v))
		}
	default:
		return 0, fmt.Errorf("the selected value is a %s, not a number", webJSONKind(v))
	}
}

// webJSONKind names a decoded JSON value's kind for error messages.
func webJSONKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
