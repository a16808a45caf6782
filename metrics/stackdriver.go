package metrics

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// Secret keys of the Stackdriver provider, Flagger's names.
const (
	stackdriverProject           = "project"
	stackdriverServiceAccountKey = "serviceAccountKey"
)

const (
	// stackdriverDefaultAddress is the Cloud Monitoring API.
	stackdriverDefaultAddress = "https://monitoring.googleapis.com"
	// stackdriverScope is the read-only scope of Cloud Monitoring.
	stackdriverScope = "https://www.googleapis.com/auth/monitoring.read"
	// stackdriverTokenURL is Google's token endpoint, for keys without
	// token_uri.
	stackdriverTokenURL = "https://oauth2.googleapis.com/token"
	// stackdriverMetadataHost is the GCE/GKE metadata server, which hands
	// out Workload Identity tokens; GCE_METADATA_HOST overrides it, as in
	// Google's libraries.
	stackdriverMetadataHost = "metadata.google.internal"
)

// Stackdriver runs PromQL instant queries against Google Cloud Monitoring's
// Prometheus-compatible API
// (/v1/projects/{project}/location/global/prometheus/api/v1/query).
//
// Flagger's stackdriver provider runs MQL through QueryTimeSeries; Google
// has deprecated MQL in favour of PromQL, so queries here are PromQL, with
// the window in the query ({{ interval }}) as for Prometheus. MQL
// templates have to be rewritten.
//
// The Secret holds the project id (key project) and, optionally, a service
// account's JSON key (key serviceAccountKey), as in Flagger. Without a key
// the token comes from the metadata server: GKE Workload Identity.
type Stackdriver struct {
	client   *http.Client
	tokens   oauth2.TokenSource
	queryURL string
	cfg      Config
}

// stackdriverKey is the part of a service account's JSON key that signs
// token requests.
type stackdriverKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// NewStackdriver builds a Stackdriver provider. cfg.Address, when set,
// replaces https://monitoring.googleapis.com.
func NewStackdriver(cfg Config) (Provider, error) {
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = stackdriverMetadataHost
	}
	return newStackdriver(cfg, "http://"+host)
}

// newStackdriver is NewStackdriver with the metadata server given, for
// tests.
func newStackdriver(cfg Config, metadataURL string) (*Stackdriver, error) {
	client, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	// Token requests go to Google, not to the backend: no template
	// headers or TLS options.
	tokenClient := &http.Client{Timeout: cfg.timeout()}

	project := string(cfg.Secret[stackdriverProject])
	var tokens oauth2.TokenSource
	if raw := cfg.Secret[stackdriverServiceAccountKey]; len(raw) > 0 {
		key, err := parseStackdriverKey(raw)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", stackdriverServiceAccountKey, err)
		}
		if project == "" {
			project = key.ProjectID
		}
		jc := &jwt.Config{
			Email:        key.ClientEmail,
			PrivateKey:   []byte(key.PrivateKey),
			PrivateKeyID: key.PrivateKeyID,
			Scopes:       []string{stackdriverScope},
			TokenURL:     key.TokenURI,
		}
		tokens = jc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient))
	} else {
		src := &stackdriverMetadataTokens{
			client: tokenClient,
			url:    strings.TrimSuffix(metadataURL, "/") + "/computeMetadata/v1/instance/service-accounts/default/token",
		}
		tokens = oauth2.ReuseTokenSource(nil, src)
	}
	if project == "" {
		return nil, fmt.Errorf("secret key %s is missing", stackdriverProject)
	}

	base := cfg.Address
	if base == "" {
		base = stackdriverDefaultAddress
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("address %q is not a URL", base)
	}
	return &Stackdriver{
		client:   client,
		tokens:   tokens,
		queryURL: u.String() + "/v1/projects/" + url.PathEscape(project) + "/location/global/prometheus/api/v1/query",
		cfg:      cfg,
	}, nil
}

// parseStackdriverKey reads a service account's JSON key and checks its
// private key, so that a broken key fails here rather than at each query.
func parseStackdriverKey(raw []byte) (stackdriverKey, error) {
	var key stackdriverKey
	if err := json.Unmarshal(raw, &key); err != nil {
		return key, fmt.Errorf("not a JSON key: %w", err)
	}
	if key.Type != "" && key.Type != "service_account" {
		return key, fmt.Errorf("key type %q is not supported, want service_account", key.Type)
	}
	if key.ClientEmail == "" {
		return key, errors.New("client_email is missing")
	}
	block, _ := pem.Decode([]byte(key.PrivateKey))
	if block == nil {
		return key, errors.New("private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return key, fmt.Errorf("private_key: %w", err)
		}
	}
	if key.TokenURI == "" {
		key.TokenURI = stackdriverTokenURL
	}
	return key, nil
}

// Query runs q as a PromQL instant query at the configured clock's now.
func (p *Stackdriver) Query(ctx context.Context, q Query) (float64, error) {
	tok, err := p.tokens.Token()
	if err != nil {
		return 0, fmt.Errorf("stackdriver token: %w", stackdriverTokenError(err))
	}
	form := url.Values{
		"query": {q.Text},
		"time":  {strconv.FormatFloat(float64(p.cfg.now().UnixMilli())/1e3, 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.queryURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, fmt.Errorf("query stackdriver: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tok.SetAuthHeader(req)
	var answer stackdriverAnswer
	if err := doJSON(p.client, req, &answer); err != nil {
		return 0, fmt.Errorf("query stackdriver: %w", err)
	}
	return answer.value()
}

// Healthy runs vector(1), which needs no series but a token and the
// project's monitoring.timeSeries.list permission.
func (p *Stackdriver) Healthy(ctx context.Context) error {
	_, err := p.Query(ctx, Query{Text: "vector(1)"})
	return err
}

// stackdriverAnswer is the Prometheus HTTP API's answer to a query.
type stackdriverAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// decodeStackdriverAnswer takes the one number of a query's JSON answer.
func decodeStackdriverAnswer(body []byte) (float64, error) {
	var answer stackdriverAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("decode answer: %w", err)
	}
	return answer.value()
}

// value decodes the result by its type and takes its one number as the
// Prometheus provider does.
func (a stackdriverAnswer) value() (float64, error) {
	if a.Status != "success" {
		return 0, fmt.Errorf("query stackdriver: status %q: %s: %s", a.Status, a.ErrorType, a.Error)
	}
	var v model.Value
	switch a.Data.ResultType {
	case "vector":
		var vec model.Vector
		if err := json.Unmarshal(a.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("decode vector: %w", err)
		}
		v = vec
	case "scalar":
		var s model.Scalar
		if err := json.Unmarshal(a.Data.Result, &s); err != nil {
			return 0, fmt.Errorf("decode scalar: %w", err)
		}
		v = &s
	default:
		return 0, fmt.Errorf("query answered a %q, want a vector or scalar", a.Data.ResultType)
	}
	return prometheusValue(v)
}

// stackdriverTokenError classifies a failed token exchange: the token
// endpoint refuses a bad key or a revoked account with 400 invalid_grant
// or 401. Any other failure is the network's: the oauth2 package formats
// transport errors into text, so they cannot be told apart further.
func stackdriverTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		if code == http.StatusBadRequest {
			code = http.StatusUnauthorized
		}
		if c := classify(code, nil); c != nil {
			return fmt.Errorf("%w: %w", c, err)
		}
		return err
	}
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// stackdriverMetadataTokens gets access tokens from the metadata server,
// which on GKE with Workload Identity are the tokens of the Google service
// account bound to the pod's Kubernetes service account.
type stackdriverMetadataTokens struct {
	client *http.Client
	url    string
}

// Token implements oauth2.TokenSource.
func (m *stackdriverMetadataTokens) Token() (*oauth2.Token, error) {
	req, err := http.NewRequest(http.MethodGet, m.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := doJSON(m.client, req, &out); err != nil {
		return nil, fmt.Errorf("metadata server: %w", err)
	}
	if out.AccessToken == "" {
		return nil, fmt.Errorf("%w: metadata server gave no access token", ErrAuth)
	}
	return &oauth2.Token{
		AccessToken: out.AccessToken,
		TokenType:   out.TokenType,
		Expiry:      time.Now().Add(time.Duration(out.ExpiresIn) * time.Second),
	}, nil
}
