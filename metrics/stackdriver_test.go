package metrics

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stackdriverTestNow is the clock of the tests.
var stackdriverTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stackdriverLatencyQuery is a PromQL query on a managed-Prometheus metric.
const stackdriverLatencyQuery = `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{destination_workload="podinfo-canary"}[1m])) by (le))`

// stackdriverServer is a loopback Google: an OAuth2 token endpoint that
// takes JWT-bearer grants signed by the test's service account, a
// metadata server, and Cloud Monitoring's Prometheus query API.
type stackdriverServer struct {
	*httptest.Server
	key *rsa.PrivateKey

	status      int
	body        string
	tokenStatus int
	tokenBody   string

	mu             sync.Mutex
	tokenRequests  int
	metadataHeader string
	queries        int
	path           string
	auth           string
	query          string
	time           string
	claims         map[string]any
	assertionErr   string
}

func newStackdriverServer(t *testing.T, key *rsa.PrivateKey, status int, body string) *stackdriverServer {
	t.Helper()
	s := &stackdriverServer{
		key: key, status: status, body: body,
		tokenStatus: http.StatusOK,
		tokenBody:   `{"access_token": "ya29.test-token", "token_type": "Bearer", "expires_in": 3599}`,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.tokenRequests++
		s.claims, s.assertionErr = nil, ""
		if g := r.PostFormValue("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			s.assertionErr = "grant_type " + g
		} else {
			s.claims, s.assertionErr = verifyTestJWT(&key.PublicKey, r.PostFormValue("assertion"))
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.tokenStatus)
		_, _ = w.Write([]byte(s.tokenBody))
	})
	mux.HandleFunc("GET /computeMetadata/v1/instance/service-accounts/default/token", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.tokenRequests++
		s.metadataHeader = r.Header.Get("Metadata-Flavor")
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token": "ya29.workload-identity", "expires_in": 3599, "token_type": "Bearer"}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries++
		s.path = r.Method + " " + r.URL.Path
		s.auth = r.Header.Get("Authorization")
		s.query = r.PostFormValue("query")
		s.time = r.PostFormValue("time")
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		_, _ = w.Write([]byte(s.body))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// verifyTestJWT checks an RS256 JWT's signature and returns its claims.
func verifyTestJWT(pub *rsa.PublicKey, token string) (map[string]any, string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, "assertion is not a JWT"
	}
	var header struct{ Alg, Typ string }
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil || header.Alg != "RS256" {
		return nil, "JWT header is not RS256"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, "JWT signature is not base64"
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, "JWT signature: " + err.Error()
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, "JWT claims are not base64"
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, "JWT claims are not JSON"
	}
	return claims, ""
}

// stackdriverTestKey is a service account's JSON key whose token_uri is
// the loopback server.
func stackdriverTestKey(t *testing.T, key *rsa.PrivateKey, tokenURI string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "key-project",
		"private_key_id": "0123456789abcdef",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "flagger@my-project.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stackdriverRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newTestStackdriver(t *testing.T, srv *stackdriverServer) *Stackdriver {
	t.Helper()
	p, err := newStackdriver(Config{
		Type:    "stackdriver",
		Address: srv.URL,
		Secret: map[string][]byte{
			stackdriverProject:           []byte("my-project"),
			stackdriverServiceAccountKey: stackdriverTestKey(t, srv.key, srv.URL+"/token"),
		},
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return stackdriverTestNow },
	}, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stackdriverVector is a vector answer with one sample per value.
func stackdriverVector(values ...string) string {
	var samples []string
	for i, v := range values {
		samples = append(samples, `{"metric": {"pod": "podinfo-`+string(rune('a'+i))+`"}, "value": [1772366400, "`+v+`"]}`)
	}
	return `{"status": "success", "data": {"resultType": "vector", "result": [` + strings.Join(samples, ",") + `]}}`
}

func TestStackdriverQueriesPromQLWithAServiceAccountToken(t *testing.T) {
	key := stackdriverRSAKey(t)
	srv := newStackdriverServer(t, key, http.StatusOK, stackdriverVector("212.5"))
	p := newTestStackdriver(t, srv)

	got, err := p.Query(context.Background(), Query{Text: stackdriverLatencyQuery, Window: time.Minute})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got != 212.5 {
		t.Errorf("value = %v, want 212.5", got)
	}
	if _, err := p.Query(context.Background(), Query{Text: stackdriverLatencyQuery}); err != nil {
		t.Fatalf("second Query: %v", err)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.path != "POST /v1/projects/my-project/location/global/prometheus/api/v1/query" {
		t.Errorf("request = %q, want the project's PromQL query endpoint", srv.path)
	}
	if srv.auth != "Bearer ya29.test-token" {
		t.Errorf("Authorization = %q, want the exchanged token", srv.auth)
	}
	if srv.query != stackdriverLatencyQuery {
		t.Errorf("query = %q, want %q", srv.query, stackdriverLatencyQuery)
	}
	if srv.time != "1772366400" {
		t.Errorf("time = %q, want now, 1772366400", srv.time)
	}
	if srv.tokenRequests != 1 {
		t.Errorf("token endpoint saw %d requests, want 1: the token is reused until it expires", srv.tokenRequests)
	}
	if srv.assertionErr != "" {
		t.Fatalf("token request: %s", srv.assertionErr)
	}
	if srv.claims["iss"] != "flagger@my-project.iam.gserviceaccount.com" || srv.claims["aud"] != srv.URL+"/token" ||
		srv.claims["scope"] != "https://www.googleapis.com/auth/monitoring.read" {
		t.Errorf("JWT claims = %v, want the service account, the token URI and the monitoring.read scope", srv.claims)
	}
}

func TestStackdriverQueryClassifiesAnswers(t *testing.T) {
	key := stackdriverRSAKey(t)
	googleError := func(code int, status string) string {
		return `{"error": {"code": ` + strconv.Itoa(code) + `, "message": "denied", "status": "` + status + `"}}`
	}
	tests := []struct {
		name    string
		status  int
		body    string
		want    float64
		wantErr error
	}{
		{name: "one sample gives its value", status: 200, body: stackdriverVector("0.97"), want: 0.97},
		{name: "a scalar gives its value", status: 200, body: `{"status": "success", "data": {"resultType": "scalar", "result": [1772366400, "4"]}}`, want: 4},
		{name: "an empty vector is no values", status: 200, body: stackdriverVector(), wantErr: ErrNoValues},
		{name: "a NaN sample is no values", status: 200, body: stackdriverVector("NaN"), wantErr: ErrNoValues},
		{name: "two series are multiple values", status: 200, body: stackdriverVector("1", "2"), wantErr: ErrMultipleValues},
		{name: "401 is an auth failure", status: 401, body: googleError(401, "UNAUTHENTICATED"), wantErr: ErrAuth},
		{name: "403 is an auth failure", status: 403, body: googleError(403, "PERMISSION_DENIED"), wantErr: ErrAuth},
		{name: "500 is unreachable", status: 500, body: googleError(500, "INTERNAL"), wantErr: ErrUnreachable},
		{name: "503 is unreachable", status: 503, body: googleError(503, "UNAVAILABLE"), wantErr: ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStackdriverServer(t, key, tt.status, tt.body)
			got, err := newTestStackdriver(t, srv).Query(context.Background(), Query{Text: stackdriverLatencyQuery})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Query = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestStackdriverQueryErrorsThatAreNeitherDataNorAuth(t *testing.T) {
	key := stackdriverRSAKey(t)
	for name, body := range map[string]string{
		"a PromQL syntax error": `{"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected end of input"}`,
		"a range answer":        `{"status": "success", "data": {"resultType": "matrix", "result": []}}`,
	} {
		t.Run(name, func(t *testing.T) {
			status := http.StatusOK
			if strings.Contains(body, "bad_data") {
				status = http.StatusBadRequest
			}
			srv := newStackdriverServer(t, key, status, body)
			_, err := newTestStackdriver(t, srv).Query(context.Background(), Query{Text: "sum(rate(up[1m]"})
			if err == nil || errors.Is(err, ErrNoValues) || errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
				t.Fatalf("error = %v, want a plain query error", err)
			}
		})
	}
}

func TestStackdriverTokenExchangeFailures(t *testing.T) {
	key := stackdriverRSAKey(t)
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
	}{
		{name: "a refused grant is an auth failure", status: 400,
			body: `{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}`, wantErr: ErrAuth},
		{name: "a disabled account is an auth failure", status: 401,
			body: `{"error": "unauthorized_client", "error_description": "disabled"}`, wantErr: ErrAuth},
		{name: "a token endpoint outage is unreachable", status: 503, body: `{"error": "temporarily_unavailable"}`, wantErr: ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStackdriverServer(t, key, http.StatusOK, stackdriverVector("1"))
			srv.tokenStatus, srv.tokenBody = tt.status, tt.body
			_, err := newTestStackdriver(t, srv).Query(context.Background(), Query{Text: "up"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.queries != 0 {
				t.Errorf("the query was sent without a token")
			}
		})
	}
}

func TestStackdriverQueryOfAnUnreachableAPIIsUnreachable(t *testing.T) {
	key := stackdriverRSAKey(t)
	srv := newStackdriverServer(t, key, http.StatusOK, stackdriverVector("1"))
	p := newTestStackdriver(t, srv)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	p.queryURL = closed.URL + "/v1/projects/my-project/location/global/prometheus/api/v1/query"
	if _, err := p.Query(context.Background(), Query{Text: "up"}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("error = %v, want ErrUnreachable", err)
	}

	// And a token endpoint that does not answer.
	secret := map[string][]byte{
		stackdriverProject:           []byte("my-project"),
		stackdriverServiceAccountKey: stackdriverTestKey(t, key, closed.URL+"/token"),
	}
	p, err := newStackdriver(Config{Address: srv.URL, Secret: secret}, closed.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(context.Background(), Query{Text: "up"}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("error with an unreachable token endpoint = %v, want ErrUnreachable", err)
	}
}

func TestStackdriverWithoutAKeyUsesWorkloadIdentity(t *testing.T) {
	srv := newStackdriverServer(t, stackdriverRSAKey(t), http.StatusOK, stackdriverVector("3"))
	p, err := newStackdriver(Config{
		Address: srv.URL,
		Secret:  map[string][]byte{stackdriverProject: []byte("my-project")},
	}, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Query(context.Background(), Query{Text: "up"}); err != nil || got != 3 {
		t.Fatalf("Query = %v, %v; want 3", got, err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.metadataHeader != "Google" {
		t.Errorf("Metadata-Flavor = %q, want Google", srv.metadataHeader)
	}
	if srv.auth != "Bearer ya29.workload-identity" {
		t.Errorf("Authorization = %q, want the metadata server's token", srv.auth)
	}
}

func TestNewStackdriverValidatesItsSecret(t *testing.T) {
	key := stackdriverRSAKey(t)
	good := stackdriverTestKey(t, key, "https://oauth2.googleapis.com/token")
	var withoutProject map[string]any
	_ = json.Unmarshal(good, &withoutProject)
	delete(withoutProject, "project_id")
	keyWithoutProject, _ := json.Marshal(withoutProject)
	tests := []struct {
		name    string
		secret  map[string][]byte
		wantErr string
	}{
		{name: "no project", secret: map[string][]byte{}, wantErr: stackdriverProject},
		{name: "a key without project_id and no project", secret: map[string][]byte{
			stackdriverServiceAccountKey: keyWithoutProject}, wantErr: stackdriverProject},
		{name: "a key that is not JSON", secret: map[string][]byte{
			stackdriverProject: []byte("p"), stackdriverServiceAccountKey: []byte("not json")}, wantErr: stackdriverServiceAccountKey},
		{name: "a key of another type", secret: map[string][]byte{
			stackdriverProject: []byte("p"), stackdriverServiceAccountKey: []byte(`{"type": "authorized_user", "client_email": "a@b"}`)},
			wantErr: stackdriverServiceAccountKey},
		{name: "a key without a private key", secret: map[string][]byte{
			stackdriverProject: []byte("p"), stackdriverServiceAccountKey: []byte(`{"type": "service_account", "client_email": "a@b", "private_key": "x"}`)},
			wantErr: "private_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewStackdriver(Config{Type: "stackdriver", Secret: tt.secret})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}

	// The key's project_id stands in for a missing project.
	p, err := newStackdriver(Config{Secret: map[string][]byte{stackdriverServiceAccountKey: good}}, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.queryURL, "https://monitoring.googleapis.com/v1/projects/key-project/") {
		t.Errorf("query URL = %q, want Cloud Monitoring for the key's project", p.queryURL)
	}
}

func TestStackdriverHealthyRunsVectorOne(t *testing.T) {
	key := stackdriverRSAKey(t)
	srv := newStackdriverServer(t, key, http.StatusOK, `{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1772366400, "1"]}]}}`)
	if err := newTestStackdriver(t, srv).Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy = %v", err)
	}
	srv.mu.Lock()
	if srv.query != "vector(1)" {
		t.Errorf("probe query = %q, want vector(1)", srv.query)
	}
	srv.mu.Unlock()

	denied := newStackdriverServer(t, key, http.StatusForbidden, `{"error": {"code": 403, "status": "PERMISSION_DENIED"}}`)
	if err := newTestStackdriver(t, denied).Healthy(context.Background()); !errors.Is(err, ErrAuth) {
		t.Errorf("Healthy with 403 = %v, want ErrAuth", err)
	}
	down := newStackdriverServer(t, key, http.StatusBadGateway, `<html>bad gateway</html>`)
	if err := newTestStackdriver(t, down).Healthy(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Healthy with 502 = %v, want ErrUnreachable", err)
	}
}

func TestStackdriverIsBuiltByNew(t *testing.T) {
	p, err := New(Config{Type: "stackdriver", Secret: map[string][]byte{stackdriverProject: []byte("p")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*Stackdriver); !ok {
		t.Fatalf("New built a %T", p)
	}
}

func FuzzStackdriverAnswer(f *testing.F) {
	f.Add(stackdriverVector("212.5"))
	f.Add(stackdriverVector())
	f.Add(stackdriverVector("1", "2"))
	f.Add(stackdriverVector("NaN"))
	f.Add(stackdriverVector("+Inf"))
	f.Add(`{"status": "success", "data": {"resultType": "scalar", "result": [1772366400, "4"]}}`)
	f.Add(`{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1772366400, "1"]]}]}}`)
	f.Add(`{"status": "error", "errorType": "bad_data", "error": "parse error"}`)
	f.Add(`{"status": "success", "data": {"resultType": "vector", "result": null}}`)
	f.Add(`{"status": "success", "data": {"resultType": "scalar", "result": [1772366400]}}`)
	f.Add(`{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		v, err := decodeStackdriverAnswer([]byte(body))
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("answer %s gave %v without an error", body, v)
		}
	})
}
