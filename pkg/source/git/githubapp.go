package git

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// The keys of a GitHub App Secret, as Flux names them.
const (
	// KeyGitHubAppID is the App's numeric ID.
	KeyGitHubAppID = "githubAppID"
	// KeyGitHubAppInstallationID is the numeric ID of the App's
	// installation on the repository's owner.
	KeyGitHubAppInstallationID = "githubAppInstallationID"
	// KeyGitHubAppInstallationOwner is the organization or user the App
	// is installed on, to look the installation up by, in place of its
	// ID.
	KeyGitHubAppInstallationOwner = "githubAppInstallationOwner"
	// KeyGitHubAppPrivateKey is the App's private key, PEM.
	KeyGitHubAppPrivateKey = "githubAppPrivateKey"
	// KeyGitHubAppBaseURL is the REST API's URL of a GitHub Enterprise
	// Server; empty means https://api.github.com.
	KeyGitHubAppBaseURL = "githubAppBaseURL"
)

// GitHubAccessTokenUsername is the user an installation token goes with
// over HTTPS basic auth, as GitHub documents and Flux sends.
const GitHubAccessTokenUsername = "x-access-token"

// gitHubAPI is the REST API of github.com.
const gitHubAPI = "https://api.github.com"

// gitHubTokenMargin is how long before its expiry a cached token is
// replaced: longer than a fetch may take, so that no fetch starts with a
// token that ends under it.
const gitHubTokenMargin = 5 * time.Minute

// AppInstallation is a GitHub App installation, from a Secret with Flux's keys.
type AppInstallation struct {
	AppID int64
	// InstallationID, or else InstallationOwner, names the installation.
	InstallationID    int64
	InstallationOwner string
	PrivateKey        *rsa.PrivateKey
	// BaseURL is the REST API's URL, without a trailing slash.
	BaseURL string
	// TLS and Proxy are for the API requests: the Secret's ca.crt and
	// client certificate, and spec.proxySecretRef.
	TLS   TLS
	Proxy *url.URL

	// cacheKey names the App's tokens in an InstallationTokens.
	cacheKey string
}

// HasGitHubAppData tells whether a Secret holds a GitHub App's keys.
func HasGitHubAppData(data map[string][]byte) bool {
	return len(data[KeyGitHubAppID]) > 0
}

// AppInstallationFromSecret reads a GitHub App Secret: githubAppID,
// githubAppPrivateKey, exactly one of githubAppInstallationID and
// githubAppInstallationOwner, and an optional githubAppBaseURL.
func AppInstallationFromSecret(data map[string][]byte) (*AppInstallation, error) {
	app := &AppInstallation{BaseURL: gitHubAPI}
	id := strings.TrimSpace(string(data[KeyGitHubAppID]))
	if id == "" {
		return nil, fmt.Errorf("secret key %s is required", KeyGitHubAppID)
	}
	var err error
	if app.AppID, err = strconv.ParseInt(id, 10, 64); err != nil {
		return nil, fmt.Errorf("secret key %s %q is not a number", KeyGitHubAppID, id)
	}
	installation := strings.TrimSpace(string(data[KeyGitHubAppInstallationID]))
	app.InstallationOwner = strings.TrimSpace(string(data[KeyGitHubAppInstallationOwner]))
	switch {
	case installation == "" && app.InstallationOwner == "":
		return nil, fmt.Errorf("secret key %s or %s is required", KeyGitHubAppInstallationID, KeyGitHubAppInstallationOwner)
	case installation != "" && app.InstallationOwner != "":
		return nil, fmt.Errorf("secret keys %s and %s exclude each other", KeyGitHubAppInstallationID, KeyGitHubAppInstallationOwner)
	case installation != "":
		if app.InstallationID, err = strconv.ParseInt(installation, 10, 64); err != nil {
			return nil, fmt.Errorf("secret key %s %q is not a number", KeyGitHubAppInstallationID, installation)
		}
	}
	keyPEM := data[KeyGitHubAppPrivateKey]
	if len(keyPEM) == 0 {
		return nil, fmt.Errorf("secret key %s is required", KeyGitHubAppPrivateKey)
	}
	if app.PrivateKey, err = parseRSAKey(keyPEM); err != nil {
		return nil, fmt.Errorf("secret key %s: %w", KeyGitHubAppPrivateKey, err)
	}
	if base := strings.TrimSpace(string(data[KeyGitHubAppBaseURL])); base != "" {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("secret key %s %q is not an http or https URL", KeyGitHubAppBaseURL, base)
		}
		app.BaseURL = strings.TrimSuffix(base, "/")
	}
	sum := sha256.New()
	for _, k := range []string{KeyGitHubAppID, KeyGitHubAppInstallationID, KeyGitHubAppInstallationOwner, KeyGitHubAppBaseURL, KeyGitHubAppPrivateKey} {
		_, _ = fmt.Fprintf(sum, "%d:%s", len(data[k]), data[k])
	}
	app.cacheKey = hex.EncodeToString(sum.Sum(nil))
	return app, nil
}

// parseRSAKey reads the PKCS #1 key GitHub hands out, or a PKCS #8 one.
func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA private key", key)
	}
	return rsaKey, nil
}

// InstallationTokens mints GitHub App installation tokens and keeps each until
// shortly before it expires, so that a fetch at every interval does not
// ask GitHub for a new one. The zero value is ready to use.
type InstallationTokens struct {
	mu     sync.Mutex
	tokens map[string]gitHubToken
}

type gitHubToken struct {
	token     string
	expiresAt time.Time
}

// Auth returns HTTPS basic auth with an installation token of app: a
// cached one, or one minted now.
func (g *InstallationTokens) Auth(ctx context.Context, app *AppInstallation) (*githttp.BasicAuth, error) {
	g.mu.Lock()
	cached, ok := g.tokens[app.cacheKey]
	g.mu.Unlock()
	if ok && time.Now().Before(cached.expiresAt.Add(-gitHubTokenMargin)) {
		return &githttp.BasicAuth{Username: GitHubAccessTokenUsername, Password: cached.token}, nil
	}
	minted, err := app.mint(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	g.store(app.cacheKey, minted, time.Now())
	return &githttp.BasicAuth{Username: GitHubAccessTokenUsername, Password: minted.token}, nil
}

// store keeps a new token and drops those that expired: the tokens of an
// App whose Secret changed, or that no GitRepository uses any more, would
// otherwise stay for the life of the process.
func (g *InstallationTokens) store(key string, token gitHubToken, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tokens == nil {
		g.tokens = map[string]gitHubToken{}
	}
	for k, t := range g.tokens {
		if !now.Before(t.expiresAt) {
			delete(g.tokens, k)
		}
	}
	g.tokens[key] = token
}

// mint asks GitHub for an installation token, as an App authenticates:
// a JWT the App's key signed, then POST
// /app/installations/{id}/access_tokens.
func (app *AppInstallation) mint(ctx context.Context, now time.Time) (gitHubToken, error) {
	jwt, err := app.jwt(now)
	if err != nil {
		return gitHubToken{}, err
	}
	client, done, err := app.httpClient()
	if err != nil {
		return gitHubToken{}, err
	}
	defer done()
	id := app.InstallationID
	if id == 0 {
		if id, err = app.installationOf(ctx, client, jwt); err != nil {
			return gitHubToken{}, err
		}
	}
	var token struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := app.call(ctx, client, jwt, http.MethodPost, fmt.Sprintf("/app/installations/%d/access_tokens", id), http.StatusCreated, &token); err != nil {
		return gitHubToken{}, fmt.Errorf("create an installation token of GitHub App %d: %w", app.AppID, err)
	}
	if token.Token == "" {
		return gitHubToken{}, fmt.Errorf("create an installation token of GitHub App %d: the answer holds no token", app.AppID)
	}
	return gitHubToken{token: token.Token, expiresAt: token.ExpiresAt}, nil
}

// installationOf looks the installation up by its owner: an organization
// first, then a user, as Flux does.
func (app *AppInstallation) installationOf(ctx context.Context, client *http.Client, jwt string) (int64, error) {
	var installation struct {
		ID int64 `json:"id"`
	}
	owner := url.PathEscape(app.InstallationOwner)
	lookup := func(path string) (int64, error) {
		if err := app.call(ctx, client, jwt, http.MethodGet, path, http.StatusOK, &installation); err != nil {
			return 0, err
		}
		if installation.ID == 0 {
			return 0, errors.New("the answer holds no installation ID")
		}
		return installation.ID, nil
	}
	id, orgErr := lookup("/orgs/" + owner + "/installation")
	if orgErr == nil {
		return id, nil
	}
	id, userErr := lookup("/users/" + owner + "/installation")
	if userErr == nil {
		return id, nil
	}
	return 0, fmt.Errorf("find the installation of GitHub App %d on %s: as an organization: %w; as a user: %w", app.AppID, app.InstallationOwner, orgErr, userErr)
}

// call sends one request of GitHub's REST API, with the App's JWT, and
// reads the JSON answer into out.
func (app *AppInstallation) call(ctx context.Context, client *http.Client, jwt, method, path string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, app.BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "sluice")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, req.URL, err)
	}
	if resp.StatusCode != want {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%s %s: %s: %s", method, req.URL, resp.Status, e.Message)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, req.URL, err)
	}
	return nil
}

// jwt is the App's JSON Web Token: RS256, issued by the App's ID, from 30
// seconds ago (for clock drift) for two minutes, as Flux makes it.
func (app *AppInstallation) jwt(now time.Time) (string, error) {
	iat := now.Truncate(time.Second).Add(-30 * time.Second)
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{"iat": iat.Unix(), "exp": iat.Add(2 * time.Minute).Unix(), "iss": strconv.FormatInt(app.AppID, 10)})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, app.PrivateKey, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign the GitHub App JWT: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// httpClient is a client of its own for the API, with the App's TLS
// material and proxy; done closes its idle connections.
func (app *AppInstallation) httpClient() (client *http.Client, done func(), err error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, nil, errors.New("the default HTTP transport is not an *http.Transport")
	}
	transport := base.Clone()
	if len(app.TLS.CABundle) > 0 || len(app.TLS.ClientCert) > 0 {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(app.TLS.CABundle) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(app.TLS.CABundle)
			cfg.RootCAs = pool
		}
		if len(app.TLS.ClientCert) > 0 {
			pair, err := tls.X509KeyPair(app.TLS.ClientCert, app.TLS.ClientKey)
			if err != nil {
				return nil, nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		transport.TLSClientConfig = cfg
	}
	if app.Proxy != nil {
		transport.Proxy = http.ProxyURL(app.Proxy)
	}
	return &http.Client{Transport: transport, Timeout: time.Minute}, transport.CloseIdleConnections, nil
}
