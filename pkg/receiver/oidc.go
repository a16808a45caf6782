package receiver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Bounds of the signing key caches, Google's and the OIDC issuers'.
const (
	// keysRetry is how soon an unknown key id or a failed fetch may fetch
	// an issuer's keys again: a forged key id must not make every call
	// fetch.
	keysRetry = time.Minute
	// keysMaxAge is how long fetched keys are used when the answer sets
	// no max-age.
	keysMaxAge = time.Hour
	// maxIssuers bounds the OIDC issuer cache: the issuers come from
	// specs, and an edited spec leaves its old issuer behind.
	maxIssuers = 256
)

// oidcLeeway is how far a generic-oidc token's exp, nbf and iat may be off
// our clock.
const oidcLeeway = time.Minute

// oidcAlgorithms are the signature algorithms a generic-oidc token may
// use: those of go-oidc, which Flux verifies with. HMAC and "none" are
// never accepted, and an issuer's discovery document may narrow the list.
var oidcAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.EdDSA,
}

// issuerKeys are one issuer's signing keys, as last fetched: those of an
// OIDC issuer, whose discovery document names its key set, or Google's,
// whose key set is at a fixed URL. It is safe for concurrent use.
type issuerKeys struct {
	// name is how errors name the issuer.
	name string
	// issuer is the URL discovery starts from; empty when jwksURL is
	// fixed.
	issuer string
	// jwksURL is the key set's URL when it is fixed: no discovery.
	jwksURL string
	// fixedAlgs are the algorithms an issuer without discovery signs
	// with.
	fixedAlgs []jose.SignatureAlgorithm
	client    *http.Client

	mu   sync.Mutex
	keys jose.JSONWebKeySet
	// algs are the algorithms the issuer signs ID tokens with.
	algs    []jose.SignatureAlgorithm
	expires time.Time
	tried   time.Time
	err     error
}

// get returns the issuer's keys with the id (all of them when kid is
// empty) and the algorithms it signs with. The keys are fetched when
// stale or when the id is unknown, which is how a rotated key is picked
// up, but at most once per keysRetry: a forged key id must not make every
// call fetch.
func (k *issuerKeys) get(ctx context.Context, kid string, now time.Time) ([]jose.JSONWebKey, []jose.SignatureAlgorithm, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fresh := now.Before(k.expires)
	if found := k.find(kid); len(found) > 0 && fresh {
		return found, k.algs, nil
	}
	if now.Sub(k.tried) >= keysRetry || !fresh && k.err == nil {
		k.tried = now
		k.err = k.fetch(ctx, now)
	}
	if k.err != nil {
		return nil, nil, fmt.Errorf("fetch the signing keys of %s: %w: %w", k.name, k.err, errUnavailable)
	}
	found := k.find(kid)
	if len(found) == 0 || !now.Before(k.expires) {
		return nil, nil, fmt.Errorf("key id %q is not one of the signing keys of %s: %w", kid, k.name, ErrUnauthorized)
	}
	return found, k.algs, nil
}

// find returns the signing keys with the id, or all of them for none.
func (k *issuerKeys) find(kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range k.keys.Keys {
		if key.Use != "enc" && (kid == "" || key.KeyID == kid) {
			out = append(out, key)
		}
	}
	return out
}

// discovery is the part of an OIDC discovery document that is read.
type discovery struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

// fetch reads the key set, from the fixed URL or the one the issuer's
// discovery document names, and replaces the keys.
func (k *issuerKeys) fetch(ctx context.Context, now time.Time) error {
	// One caller's hang-up must not fail the fetch for all the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	jwksURL, algs := k.jwksURL, k.fixedAlgs
	if jwksURL == "" {
		var doc discovery
		if _, err := getJSON(ctx, k.client, strings.TrimSuffix(k.issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
		// As OIDC discovery requires and go-oidc checks: a document that
		// names another issuer is not this issuer's.
		if doc.Issuer != k.issuer {
			return fmt.Errorf("discovery: the document's issuer is %q, not %q", doc.Issuer, k.issuer)
		}
		if doc.JWKSURI == "" {
			return errors.New("discovery: the document has no jwks_uri")
		}
		jwksURL, algs = doc.JWKSURI, oidcAlgorithms
		if len(doc.Algs) > 0 {
			algs = slices.DeleteFunc(slices.Clone(oidcAlgorithms), func(a jose.SignatureAlgorithm) bool { return !slices.Contains(doc.Algs, string(a)) })
		}
	}
	var set jose.JSONWebKeySet
	header, err := getJSON(ctx, k.client, jwksURL, &set)
	if err != nil {
		return fmt.Errorf("JWK set %s: %w", jwksURL, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("JWK set %s has no key", jwksURL)
	}
	k.keys, k.algs = set, algs
	k.expires = now.Add(maxAge(header.Get("Cache-Control")))
	return nil
}

// getJSON decodes the JSON document at url into v and returns the
// response's header.
func getJSON(ctx context.Context, client *http.Client, url string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return resp.Header, nil
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

// expected is what a token's standard claims must say.
type expected struct {
	// issuers lists the iss values accepted.
	issuers []string
	// audience must be one of the token's aud.
	audience string
	// leeway is how far exp, nbf and iat may be off our clock.
	leeway time.Duration
}

// verify checks a parsed JWT as go-oidc does: signed by a key of k under
// the header's key id, with an algorithm k signs with; issued by one of
// want's issuers for its audience; with an exp that has not passed, and
// an nbf and iat that have. The claims are decoded into each of out
// besides.
func (k *issuerKeys) verify(ctx context.Context, tok *jwt.JSONWebToken, want expected, now time.Time, out ...any) error {
	head := tok.Headers[0]
	keys, algs, err := k.get(ctx, head.KeyID, now)
	if err != nil {
		return err
	}
	if !slices.Contains(algs, jose.SignatureAlgorithm(head.Algorithm)) {
		return fmt.Errorf("the token's algorithm %s is not one %s signs with: %w", head.Algorithm, k.name, ErrUnauthorized)
	}
	var std jwt.Claims
	dest := append([]any{&std}, out...)
	if !slices.ContainsFunc(keys, func(key jose.JSONWebKey) bool { return tok.Claims(key.Key, dest...) == nil }) {
		return fmt.Errorf("the token's signature does not match a key of %s: %w", k.name, ErrUnauthorized)
	}
	if !slices.ContainsFunc(want.issuers, func(iss string) bool { return subtle.ConstantTimeCompare([]byte(iss), []byte(std.Issuer)) == 1 }) {
		return fmt.Errorf("the token's issuer %q is not %s: %w", std.Issuer, strings.Join(want.issuers, " or "), ErrUnauthorized)
	}
	if std.Expiry == nil {
		return fmt.Errorf("the token has no exp claim: %w", ErrUnauthorized)
	}
	err = std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{want.audience}, Time: now}, want.leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("the token's audience %q does not name %q: %w", []string(std.Audience), want.audience, ErrUnauthorized)
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("the token expired at %s: %w", std.Expiry.Time().UTC().Format(time.RFC3339), ErrUnauthorized)
	case err != nil:
		return fmt.Errorf("the token's claims: %w: %w", err, ErrUnauthorized)
	}
	return nil
}

// oidcIssuers caches the signing keys of the OIDC issuers the specs name,
// each found by discovery. It is safe for concurrent use.
type oidcIssuers struct {
	client *http.Client

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// newOIDCIssuers returns an issuer cache that fetches with client.
func newOIDCIssuers(client *http.Client) *oidcIssuers {
	return &oidcIssuers{client: client, issuers: map[string]*issuerKeys{}}
}

// issuer returns the cache entry of an issuer URL.
func (o *oidcIssuers) issuer(url string) *issuerKeys {
	o.mu.Lock()
	defer o.mu.Unlock()
	if k, ok := o.issuers[url]; ok {
		return k
	}
	if len(o.issuers) >= maxIssuers {
		o.issuers = map[string]*issuerKeys{}
	}
	k := &issuerKeys{name: "issuer " + url, issuer: url, client: o.client}
	o.issuers[url] = k
	return k
}

// parseBearer parses a bearer token as a signed JWT with one of algs,
// and reads its iss claim without checking anything: the issuer only
// picks the keys that then verify the token.
func parseBearer(raw string, algs []jose.SignatureAlgorithm) (*jwt.JSONWebToken, string, error) {
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		return nil, "", fmt.Errorf("the bearer token is not a signed JWT: %w", err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, "", fmt.Errorf("the bearer token's claims: %w", err)
	}
	return tok, c.Issuer, nil
}

// verifyOIDCToken checks a parsed JWT against the keys of issuer, for
// audience, and returns all the token's claims.
func (o *oidcIssuers) verifyOIDCToken(ctx context.Context, tok *jwt.JSONWebToken, issuer, audience string, now time.Time) (map[string]any, error) {
	var all map[string]any
	if err := o.issuer(issuer).verify(ctx, tok, expected{issuers: []string{issuer}, audience: audience, leeway: oidcLeeway}, now, &all); err != nil {
		return nil, err
	}
	if all == nil {
		all = map[string]any{}
	}
	return all, nil
}
