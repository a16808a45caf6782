package receiver

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// GoogleCertsURL is where Google publishes, as a JWK set, the keys that
// sign its OIDC ID tokens, Pub/Sub's push tokens among them.
const GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"

// googleLeeway is how far a Google ID token's times may be off our clock:
// the clock skew Google's own auth libraries allow.
const googleLeeway = 5 * time.Minute

// googleIssuers are the iss values of Google's ID tokens.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// googleAlgorithms are those Google signs ID tokens with.
var googleAlgorithms = []jose.SignatureAlgorithm{jose.RS256}

// googleKeys are Google's ID token signing keys: an issuer whose key set
// is at a fixed URL, with no discovery.
type googleKeys struct {
	issuerKeys
}

// newGoogleKeys returns a key cache that fetches from url with client.
func newGoogleKeys(url string, client *http.Client) *googleKeys {
	return &googleKeys{issuerKeys{name: "Google (" + url + ")", jwksURL: url, fixedAlgs: googleAlgorithms, client: client}}
}

// key returns Google's keys with the id, fetched as get does.
func (g *googleKeys) key(ctx context.Context, kid string, now time.Time) ([]jose.JSONWebKey, error) {
	keys, _, err := g.get(ctx, kid, now)
	return keys, err
}

// googleClaims are the claims of a Google ID token checked besides the
// standard ones.
type googleClaims struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

// verifyIDToken checks a Google ID token: RS256, signed by one of Google's
// keys, issued by Google for aud to the service account email, which
// Google verified, and current.
func (g *googleKeys) verifyIDToken(ctx context.Context, raw, aud, email string, now time.Time) error {
	tok, err := jwt.ParseSigned(raw, googleAlgorithms)
	if err != nil {
		return fmt.Errorf("the bearer token is not a signed RS256 JWT: %w: %w", err, ErrUnauthorized)
	}
	var c googleClaims
	if err := g.verify(ctx, tok, expected{issuers: googleIssuers, audience: aud, leeway: googleLeeway}, now, &c); err != nil {
		return err
	}
	switch {
	case email == "" || subtle.ConstantTimeCompare([]byte(c.Email), []byte(email)) != 1:
		return fmt.Errorf("the token's email %q is not the Secret's email: %w", c.Email, ErrUnauthorized)
	case !c.EmailVerified:
		return fmt.Errorf("the token's email %q is not verified: %w", c.Email, ErrUnauthorized)
	}
	return nil
}
