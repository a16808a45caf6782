package receiver

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GoogleCertsURL is where Google publishes, as a JWK set, the keys that
// sign its OIDC ID tokens, Pub/Sub's push tokens among them.
const GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"

// Bounds of the ID token check.
const (
	// keysRetry is how soon an unknown key id or a failed fetch may fetch
	// Google's keys again: a forged key id must not make every call
	// fetch.
	keysRetry = time.Minute
	// keysMaxAge is how long fetched keys are used when Google's answer
	// sets no max-age.
	keysMaxAge = time.Hour
	// clockSkew is how far the token's times may be off ours.
	clockSkew = 5 * time.Minute
)

// googleKeys fetches and caches Google's ID token signing keys. It is
// safe for concurrent use.
type googleKeys struct {
	url    string
	client *http.Client

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	expires time.Time
	tried   time.Time
	err     error
}

// newGoogleKeys returns a key cache that fetches from url with client.
func newGoogleKeys(url string, client *http.Client) *googleKeys {
	return &googleKeys{url: url, client: client}
}

// key returns the key with the id, fetching the keys when they are
// stale or the id is unknown, at most once per keysRetry.
func (g *googleKeys) key(ctx context.Context, kid string, now time.Time) (*rsa.PublicKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if k, ok := g.keys[kid]; ok && now.Before(g.expires) {
		return k, nil
	}
	if now.Sub(g.tried) >= keysRetry || !now.Before(g.expires) && g.err == nil {
		g.tried = now
		g.err = g.fetch(ctx, now)
	}
	if g.err != nil {
		return nil, fmt.Errorf("fetch Google's signing keys from %s: %w: %w", g.url, g.err, errUnavailable)
	}
	k, ok := g.keys[kid]
	if !ok || !now.Before(g.expires) {
		return nil, fmt.Errorf("key id %q is not one of Google's signing keys: %w", kid, ErrUnauthorized)
	}
	return k, nil
}

// jwk is one key of a JWK set.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// fetch replaces the keys with those the URL publishes.
func (g *googleKeys) fetch(ctx context.Context, now time.Time) error {
	// One caller's hang-up must not fail the fetch for all the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&set); err != nil {
		return fmt.Errorf("decode the JWK set: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		pub, err := rsaKey(k)
		if err != nil {
			return fmt.Errorf("key %q: %w", k.Kid, err)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return errors.New("the JWK set has no RSA key")
	}
	g.keys = keys
	g.expires = now.Add(maxAge(resp.Header.Get("Cache-Control")))
	return nil
}

// rsaKey decodes an RSA JWK.
func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("modulus: %w", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("exponent: %w", err)
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
		return nil, errors.New("exponent is out of range")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	if pub.N.BitLen() < 2048 {
		return nil, errors.New("modulus is shorter than 2048 bits")
	}
	return pub, nil
}

// maxAge reads max-age from a Cache-Control header.
func maxAge(cacheControl string) time.Duration {
	for directive := range strings.SplitSeq(cacheControl, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(directive), "max-age="); ok {
			if s, err := strconv.Atoi(v); err == nil && s > 0 {
				return time.Duration(s) * time.Second
			}
		}
	}
	return keysMaxAge
}

// idClaims are the claims of a Google ID token that are checked.
type idClaims struct {
	Issuer        string   `json:"iss"`
	Audience      audience `json:"aud"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Expires       int64    `json:"exp"`
	IssuedAt      int64    `json:"iat"`
}

// audience is a JWT's aud: one string or a list.
type audience []string

// UnmarshalJSON reads a string or a list of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud is neither a string nor a list of strings: %w", err)
	}
	*a = many
	return nil
}

// verifyIDToken checks a JWT's RS256 signature against Google's keys and
// returns its claims. Any other algorithm, "none" included, is refused.
func verifyIDToken(ctx context.Context, keys *googleKeys, token string, now time.Time) (*idClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("the bearer token is not a JWT: %w", ErrUnauthorized)
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("JWT header: %w: %w", err, ErrUnauthorized)
	}
	if header.Alg != "RS256" {
		return nil, fmt.Errorf("JWT algorithm %q is not RS256: %w", header.Alg, ErrUnauthorized)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("JWT signature is not base64url: %w", ErrUnauthorized)
	}
	key, err := keys.key(ctx, header.Kid, now)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return nil, fmt.Errorf("JWT signature does not match Google's key %q: %w", header.Kid, ErrUnauthorized)
	}
	claims := &idClaims{}
	if err := decodeSegment(parts[1], claims); err != nil {
		return nil, fmt.Errorf("JWT claims: %w: %w", err, ErrUnauthorized)
	}
	return claims, nil
}

// check checks that the token was issued by Google to the service
// account for the audience, and is current.
func (c *idClaims) check(aud, email string, now time.Time) error {
	switch {
	case c.Issuer != "accounts.google.com" && c.Issuer != "https://accounts.google.com":
		return fmt.Errorf("token issuer %q is not accounts.google.com: %w", c.Issuer, ErrUnauthorized)
	case aud == "" || !c.Audience.has(aud):
		return fmt.Errorf("token audience %q is not the Secret's audience: %w", c.Audience, ErrUnauthorized)
	case email == "" || subtle.ConstantTimeCompare([]byte(c.Email), []byte(email)) != 1:
		return fmt.Errorf("token email %q is not the Secret's email: %w", c.Email, ErrUnauthorized)
	case !c.EmailVerified:
		return fmt.Errorf("token email %q is not verified: %w", c.Email, ErrUnauthorized)
	case c.Expires == 0 || !now.Before(time.Unix(c.Expires, 0).Add(clockSkew)):
		return fmt.Errorf("token expired at %s: %w", time.Unix(c.Expires, 0).UTC().Format(time.RFC3339), ErrUnauthorized)
	case c.IssuedAt != 0 && time.Unix(c.IssuedAt, 0).After(now.Add(clockSkew)):
		return fmt.Errorf("token is issued in the future: %w", ErrUnauthorized)
	}
	return nil
}

// has reports whether the audience names a.
func (a audience) has(want string) bool {
	for _, got := range a {
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return true
		}
	}
	return false
}

// decodeSegment decodes a base64url JSON segment of a JWT.
func decodeSegment(seg string, into any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}
