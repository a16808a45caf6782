// Package githubapp is a stand-in for GitHub's App authentication, for
// tests: the REST API that exchanges an App's JWT for an installation
// token, checking the request as GitHub documents it, and in front of a
// real Git server an HTTPS endpoint that takes such a token as the
// password of user x-access-token, as github.com does.
package githubapp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The App and its installation, as the Secret of a GitRepository names
// them.
const (
	AppID          = 4242
	InstallationID = 77
	// Owner is the organization the App is installed on.
	Owner = "sluice-org"
)

// Server is the stand-in: an API endpoint and a Git endpoint.
type Server struct {
	// APIURL is the REST API's base URL, for githubAppBaseURL.
	APIURL string
	// GitURL is the repository's clone URL behind the token check.
	GitURL string
	// PrivateKey is the App's private key, PEM (PKCS #1, as GitHub hands
	// it out), for githubAppPrivateKey.
	PrivateKey []byte

	key *rsa.PrivateKey
	ttl time.Duration

	mu      sync.Mutex
	tokens  map[string]time.Time
	minted  int
	refused []string
}

// New starts the stand-in until the test ends, in front of the Git
// repository at upstream, which it reaches with basic auth user and
// pass. Tokens last ttl.
func New(t testing.TB, upstream, user, pass string, ttl time.Duration) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate the App key: %v", err)
	}
	s := &Server{
		key: key, ttl: ttl, tokens: map[string]time.Time{},
		PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}
	api := httptest.NewServer(http.HandlerFunc(s.serveAPI))
	t.Cleanup(api.Close)
	s.APIURL = api.URL

	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("parse %s: %v", upstream, err)
	}
	repoPath := target.Path
	target.Path = ""
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.SetBasicAuth(user, pass)
	}}
	git := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, token, ok := r.BasicAuth()
		if !ok || u != "x-access-token" || !s.valid(token) {
			s.refuse(fmt.Sprintf("git: user %q with a token that is not a live installation token", u))
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(git.Close)
	s.GitURL = git.URL + repoPath
	return s
}

// Secret is the data of a Flux GitHub App Secret for this App, naming the
// installation by its ID.
func (s *Server) Secret() map[string]string {
	return map[string]string{
		"githubAppID":             strconv.Itoa(AppID),
		"githubAppInstallationID": strconv.Itoa(InstallationID),
		"githubAppPrivateKey":     string(s.PrivateKey),
		"githubAppBaseURL":        s.APIURL,
	}
}

// Minted counts the installation tokens handed out.
func (s *Server) Minted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

// Refused lists why requests were refused, for a test's failure message.
func (s *Server) Refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

func (s *Server) refuse(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = append(s.refused, why)
}

func (s *Server) valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	expires, ok := s.tokens[token]
	return ok && time.Now().Before(expires)
}

// serveAPI answers the three calls an App makes to get a token: the
// installation of an organization or a user, and a new installation
// token. Every call must carry the App's JWT and GitHub's media type.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, why string) {
		s.refuse(fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, why))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": why, "documentation_url": "https://docs.github.com/rest"})
	}
	if accept := r.Header.Get("Accept"); accept != "application/vnd.github+json" {
		fail(http.StatusUnsupportedMediaType, fmt.Sprintf("Accept %q, want application/vnd.github+json", accept))
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		fail(http.StatusUnauthorized, "no Authorization: Bearer <JWT>")
		return
	}
	if err := s.checkJWT(token); err != nil {
		fail(http.StatusUnauthorized, "A JSON web token could not be decoded: "+err.Error())
		return
	}
	reply := func(code int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == fmt.Sprintf("/app/installations/%d/access_tokens", InstallationID):
		raw := make([]byte, 18)
		_, _ = rand.Read(raw)
		token := "ghs_" + hex.EncodeToString(raw)
		expires := time.Now().Add(s.ttl).UTC().Truncate(time.Second)
		s.mu.Lock()
		s.tokens[token] = expires
		s.minted++
		s.mu.Unlock()
		reply(http.StatusCreated, map[string]any{"token": token, "expires_at": expires.Format(time.RFC3339), "repository_selection": "all", "permissions": map[string]string{"contents": "read"}})
	case r.Method == http.MethodGet && r.URL.Path == "/orgs/"+Owner+"/installation":
		reply(http.StatusOK, map[string]any{"id": InstallationID, "app_id": AppID, "account": map[string]string{"login": Owner, "type": "Organization"}})
	default:
		// Another owner, as an organization or a user, has no
		// installation of the App.
		fail(http.StatusNotFound, "Not Found")
	}
}

// checkJWT checks the App's JWT as GitHub does: RS256 signed by the
// App's key, issued by the App's ID, already valid and for at most ten
// minutes.
func (s *Server) checkJWT(raw string) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return fmt.Errorf("not an RS256 JWT: %w", err)
	}
	var claims struct {
		// Iss is the App ID, which GitHub takes as a number or a string.
		Iss      json.RawMessage  `json:"iss"`
		IssuedAt *jwt.NumericDate `json:"iat"`
		Expiry   *jwt.NumericDate `json:"exp"`
	}
	if err := tok.Claims(&s.key.PublicKey, &claims); err != nil {
		return fmt.Errorf("not signed by the App's key: %w", err)
	}
	if iss := strings.Trim(string(claims.Iss), `"`); iss != strconv.Itoa(AppID) {
		return fmt.Errorf("iss %s, want the App ID %d", claims.Iss, AppID)
	}
	if claims.IssuedAt == nil || claims.Expiry == nil {
		return errors.New("iat and exp are required")
	}
	now, iat, exp := time.Now(), claims.IssuedAt.Time(), claims.Expiry.Time()
	switch {
	case iat.After(now.Add(time.Minute)):
		return fmt.Errorf("iat %s is in the future", iat.UTC().Format(time.RFC3339))
	case !exp.After(now):
		return fmt.Errorf("exp %s has passed", exp.UTC().Format(time.RFC3339))
	case exp.Sub(iat) > 10*time.Minute:
		return fmt.Errorf("exp is %s after iat, more than ten minutes", exp.Sub(iat))
	}
	return nil
}
