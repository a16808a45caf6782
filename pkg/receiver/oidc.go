package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// oidcLeeway is how far a generic-oidc token's exp, nbf and iat may be off
// our clock.
const oidcLeeway = time.Minute

// maxIssuers bounds the issuer cache: the issuers come from specs, and an
// edited spec leaves its old issuer behind.
const maxIssuers = 256

// oidcAlgorithms are the signature algorithms a generic-oidc token may
// use: those of go-oidc, which Flux verifies with. HMAC and "none" are
// never accepted, and an issuer's discovery document may narrow the list.
var oidcAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.EdDSA,
}

// oidcIssuers fetches and caches the signing keys of OIDC issuers, found
// by discovery. It is safe for concurrent use.
type oidcIssuers struct {
	client *http.Client

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// newOIDCIssuers returns an issuer cache that fetches with client.
func newOIDCIssuers(client *http.Client) *oidcIssuers {
	return &oidcIssuers{client: client, issuers: map[string]*issuerKeys{}}
}

// issuerKeys are one issuer's keys, as last fetched.
type issuerKeys struct {
	url string

	mu   sync.Mutex
	keys jose.JSONWebKeySet
	// algs are the algorithms the issuer says it signs ID tokens with.
	algs    []jose.SignatureAlgorithm
	expires time.Time
	tried   time.Time
	err     error
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
	k := &issuerKeys{url: url}
	o.issuers[url] = k
	return k
}

// keys returns the issuer's keys with the id (all of them when kid is
// empty) and the algorithms it signs with. The keys are fetched when
// stale or when the id is unknown, which is how a rotated key is picked
// up, but at most once per keysRetry: a forged key id must not make every
// call fetch.
func (o *oidcIssuers) keys(ctx context.Context, url, kid string, now time.Time) ([]jose.JSONWebKey, []jose.SignatureAlgorithm, error) {
	k := o.issuer(url)
	k.mu.Lock()
	defer k.mu.Unlock()
	fresh := now.Before(k.expires)
	if found := k.find(kid); len(found) > 0 && fresh {
		return found, k.algs, nil
	}
	if now.Sub(k.tried) >= keysRetry || !fresh && k.err == nil {
		k.tried = now
		k.err = k.fetch(ctx, o.client, now)
	}
	if k.err != nil {
		return nil, nil, fmt.Errorf("fetch the signing keys of issuer %s: %w: %w", url, k.err, errUnavailable)
	}
	found := k.find(kid)
	if len(found) == 0 || !now.Before(k.expires) {
		return nil, nil, fmt.Errorf("key id %q is not one of the signing keys of issuer %s: %w", kid, url, ErrUnauthorized)
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

// fetch reads the issuer's discovery document, then its key set, and
// replaces the keys.
func (k *issuerKeys) fetch(ctx context.Context, client *http.Client, now time.Time) error {
	// One caller's hang-up must not fail the fetch for all the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var doc discovery
	if _, err := getJSON(ctx, client, strings.TrimSuffix(k.url, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	// As OIDC discovery requires and go-oidc checks: a document that
	// names another issuer is not this issuer's.
	if doc.Issuer != k.url {
		return fmt.Errorf("discovery: the document's issuer is %q, not %q", doc.Issuer, k.url)
	}
	if doc.JWKSURI == "" {
		return errors.New("discovery: the document has no jwks_uri")
	}
	var set jose.JSONWebKeySet
	header, err := getJSON(ctx, client, doc.JWKSURI, &set)
	if err != nil {
		return fmt.Errorf("JWK set %s: %w", doc.JWKSURI, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("JWK set %s has no key", doc.JWKSURI)
	}
	algs := oidcAlgorithms
	if len(doc.Algs) > 0 {
		algs = slices.DeleteFunc(slices.Clone(oidcAlgorithms), func(a jose.SignatureAlgorithm) bool { return !slices.Contains(doc.Algs, string(a)) })
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

// unverifiedIssuer reads a JWT's iss claim without checking anything: it
// only picks the provider that then verifies the token.
func unverifiedIssuer(raw string) (string, error) {
	tok, err := jwt.ParseSigned(raw, oidcAlgorithms)
	if err != nil {
		return "", fmt.Errorf("the bearer token is not a signed JWT: %w", err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", fmt.Errorf("the bearer token's claims: %w", err)
	}
	if c.Issuer == "" {
		return "", errors.New("the bearer token has no iss claim")
	}
	return c.Issuer, nil
}

// verifyOIDCToken checks a JWT as go-oidc does for Flux: signed by a key
// the issuer publishes with an algorithm it signs with, issued by issuer
// for audience, with an exp that has not passed and an nbf that has. It
// returns all the token's claims.
func (o *oidcIssuers) verifyOIDCToken(ctx context.Context, raw, issuer, audience string, now time.Time) (map[string]any, error) {
	tok, err := jwt.ParseSigned(raw, oidcAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("the bearer token is not a signed JWT: %w: %w", err, ErrUnauthorized)
	}
	head := tok.Headers[0]
	keys, algs, err := o.keys(ctx, issuer, head.KeyID, now)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(algs, jose.SignatureAlgorithm(head.Algorithm)) {
		return nil, fmt.Errorf("the token's algorithm %s is not one issuer %s signs with: %w", head.Algorithm, issuer, ErrUnauthorized)
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, key := range keys {
		if tok.Claims(key.Key, &std, &all) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fmt.Errorf("the token's signature does not match a key of issuer %s: %w", issuer, ErrUnauthorized)
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("the token has no exp claim: %w", ErrUnauthorized)
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: now}, oidcLeeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, fmt.Errorf("the token's issuer %q is not %q: %w", std.Issuer, issuer, ErrUnauthorized)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, fmt.Errorf("the token's audience %q does not name %q: %w", []string(std.Audience), audience, ErrUnauthorized)
	case errors.Is(err, jwt.ErrExpired):
		return nil, fmt.Errorf("the token expired at %s: %w", std.Expiry.Time().UTC().Format(time.RFC3339), ErrUnauthorized)
	case err != nil:
		return nil, fmt.Errorf("the token's claims: %w: %w", err, ErrUnauthorized)
	}
	if all == nil {
		all = map[string]any{}
	}
	return all, nil
}
