// Package verify checks the signature of an OCI artifact the way Flux's
// source-controller does for an OCIRepository's or a HelmChart's
// spec.verify: with cosign (trusted public keys, or keyless signatures
// matched against OIDC identities and a Sigstore trusted root) or with
// notation (a trust policy and CA certificates). It checks the manifest
// digest the controller resolved, before the artifact is pulled.
//
// Each provider is a file of its own that adds itself to the Verifiers
// New returns. The package reads no Kubernetes objects: the controller
// passes the data of the Secrets spec.verify names.
package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"sluice.dev/sluice/pkg/source/oci"
)

// The values of spec.verify.provider.
const (
	// ProviderCosign checks cosign signatures: the classic
	// sha256-<digest>.sig tag or a Sigstore bundle among the referrers.
	ProviderCosign = "cosign"
	// ProviderNotation checks notation signatures among the referrers.
	ProviderNotation = "notation"
)

// The Secret keys Flux reads.
const (
	// TrustedRootKey holds the Sigstore trusted root in
	// spec.verify.trustedRootSecretRef's Secret.
	TrustedRootKey = "trusted_root.json"
	// TrustPolicyKey holds notation's trust policy in
	// spec.verify.secretRef's Secret.
	TrustPolicyKey = "trustpolicy.json"
)

// The classes of errors, matched with errors.Is. Every one is Flux's
// VerificationError; the class says whether the signatures or the
// configuration are at fault.
var (
	// ErrConfig: the Secrets or the spec cannot be used (no key, no
	// trust policy, an unreadable trusted root, an unknown provider).
	ErrConfig = errors.New("verification is not configured")
	// ErrUnverified: no signature verified against what the spec
	// trusts.
	ErrUnverified = errors.New("no signature verified")
)

// Identity is one spec.verify.matchOIDCIdentity entry: regular
// expressions over the issuer and the subject of a keyless signature's
// certificate.
type Identity struct {
	Issuer  string
	Subject string
}

// Request is one check.
type Request struct {
	// Ref is the artifact, pinned to the manifest digest that is pulled
	// once it verifies.
	Ref name.Digest
	// Remote reaches the registry that holds the signatures: the
	// artifact's credentials, TLS, proxy and insecure setting.
	Remote oci.Remote
	// Field is where the spec is, for messages: spec.verify, or
	// spec.chart.spec.verify.
	Field string
	// SecretName names spec.verify.secretRef's Secret, empty when it is
	// not set, and Secret is its data.
	SecretName string
	Secret     map[string][]byte
	// Identities are spec.verify.matchOIDCIdentity; none matches any
	// identity.
	Identities []Identity
	// TrustedRoot is trusted_root.json of
	// spec.verify.trustedRootSecretRef; nil means the public Sigstore
	// root.
	TrustedRoot []byte
	// NoTrustedRootField is set for a kind whose API has no
	// trustedRootSecretRef (a HelmChart), so that messages do not point
	// to one.
	NoTrustedRootField bool
}

// Result says how an artifact passed.
type Result struct {
	// Verified is true when a signature verified. It is false when
	// notation's trust policy lets the artifact through without
	// verifying it (level skip, or an authenticity failure it only
	// logs), as Flux lets it through without SourceVerified.
	Verified bool
	// By says what verified it: which key, identity or trust policy.
	By string
}

// Provider checks the signatures of one kind.
type Provider interface {
	Verify(ctx context.Context, req Request) (Result, error)
}

// Verifiers maps spec.verify.provider to the Provider that checks it.
// One is made at start and shared by the controllers: a provider may
// keep what is costly to fetch, such as the public Sigstore root.
type Verifiers map[string]Provider

// New returns every provider Sluice carries.
func New() Verifiers {
	v := Verifiers{}
	for _, add := range []func(Verifiers){addCosign, addNotation} {
		add(v)
	}
	return v
}

// Verify checks req with the provider spec.verify.provider names. Its
// error says which provider, as Flux's message does, and wraps
// ErrConfig or ErrUnverified.
func (v Verifiers) Verify(ctx context.Context, provider string, req Request) (Result, error) {
	p, ok := v[provider]
	if !ok {
		known := make([]string, 0, len(v))
		for k := range v {
			known = append(known, k)
		}
		slices.Sort(known)
		return Result{}, fmt.Errorf("%s.provider: %w: unknown provider %q, want %s", req.Field, ErrConfig, provider, strings.Join(known, " or "))
	}
	res, err := p.Verify(ctx, req)
	if err != nil {
		label := provider
		if provider == ProviderCosign && req.SecretName == "" {
			label += " keyless"
		}
		return Result{}, fmt.Errorf("%s: provider %s: %w", req.Field, label, err)
	}
	return res, nil
}

// withSuffix returns the keys of data that end in one of suffixes, in
// order, so that the keys are tried, and named, in a stable order.
func withSuffix(data map[string][]byte, suffixes ...string) []string {
	var keys []string
	for k := range data {
		if slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(k, s) }) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
