package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus runs instant queries through Prometheus' HTTP API. Its Secret
// may hold a bearer token (key token) or basic auth (keys username and
// password), as in Flagger, and the TLS keys of httpClient.
type Prometheus struct {
	api promv1.API
	cfg Config
}

// NewPrometheus builds a Prometheus provider for cfg.Address.
func NewPrometheus(cfg Config) (Provider, error) {
	if cfg.Address == "" {
		return nil, errors.New("address is required")
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	auth, err := prometheusAuth(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		hc.Transport = &headerTransport{headers: auth, next: hc.Transport}
	}
	c, err := promapi.NewClient(promapi.Config{Address: cfg.Address, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", cfg.Address, err)
	}
	return &Prometheus{api: promv1.NewAPI(c), cfg: cfg}, nil
}

// prometheusAuth turns the Secret into an Authorization header.
func prometheusAuth(secret map[string][]byte) (http.Header, error) {
	token, user, pass := secret["token"], secret["username"], secret["password"]
	switch {
	case len(token) > 0:
		return http.Header{"Authorization": {"Bearer " + string(token)}}, nil
	case len(user) > 0 || len(pass) > 0:
		if len(user) == 0 || len(pass) == 0 {
			return nil, errors.New("secret needs both username and password for basic auth")
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(string(user), string(pass))
		return http.Header{"Authorization": req.Header["Authorization"]}, nil
	}
	return nil, nil
}

// Query runs q as an instant query at the configured clock's now. The
// window is in the query itself ({{ interval }}).
func (p *Prometheus) Query(ctx context.Context, q Query) (float64, error) {
	value, _, _, err := p.api.Query(ctx, q.Text, p.cfg.now(), promv1.WithTimeout(p.cfg.timeout()))
	if err != nil {
		return 0, prometheusError(err)
	}
	return prometheusValue(value)
}

// Healthy runs vector(1), which needs no series.
func (p *Prometheus) Healthy(ctx context.Context) error {
	_, err := p.Query(ctx, Query{Text: "vector(1)"})
	return err
}

// prometheusError classifies the client's errors.
func prometheusError(err error) error {
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Type {
		case promv1.ErrClient:
			// The client reports 4xx as ErrClient with the status in the
			// message; 401 and 403 come without a Prometheus error body.
			if apiErr.Msg == "client error: 401" || apiErr.Msg == "client error: 403" {
				return fmt.Errorf("%w: %s", ErrAuth, apiErr.Msg)
			}
		case promv1.ErrServer, promv1.ErrTimeout, promv1.ErrCanceled:
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return fmt.Errorf("query prometheus: %w", err)
	}
	return classify(0, err)
}

// prometheusValue takes the one number of an instant query's answer.
func prometheusValue(v model.Value) (float64, error) {
	switch v := v.(type) {
	case model.Vector:
		sample, err := only(v, "series")
		if err != nil {
			return 0, err
		}
		return finiteValue(float64(sample.Value))
	case *model.Scalar:
		return finiteValue(float64(v.Value))
	}
	return 0, fmt.Errorf("query answered a %s, want a vector or scalar", v.Type())
}
