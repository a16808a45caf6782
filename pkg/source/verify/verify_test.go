package verify_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/source/verify"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/signing"
)

// The identity keyless signatures are made as, and the issuer that
// vouches for it.
const (
	issuer  = "https://token.actions.githubusercontent.com"
	subject = "release@example.com"
)

// signed is an artifact pushed to a registry that wants credentials and
// serves referrers, and how to reach it.
type signed struct {
	target signing.Target
	remote oci.Remote
}

func newArtifact(t *testing.T, reg *imageregistry.Registry, repository string) signed {
	t.Helper()
	digest := reg.Push(t, repository, "1.0.0")
	return signed{target: signing.NewTarget(t, reg.Image(repository), digest, reg.Auth), remote: oci.Remote{Auth: reg.Auth}}
}

// check asks provider about a, with the Secret data and the rest of the
// request set by req.
func (a signed) check(t *testing.T, provider string, req func(*verify.Request)) (verify.Result, error) {
	t.Helper()
	r := verify.Request{Ref: a.target.Ref, Remote: a.remote, Field: "spec.verify"}
	if req != nil {
		req(&r)
	}
	return verify.New().Verify(t.Context(), provider, r)
}

// secret names the Secret of data in r.
func secret(name string, data map[string][]byte) func(*verify.Request) {
	return func(r *verify.Request) { r.SecretName, r.Secret = name, data }
}

func TestCosignAcceptsOnlySignaturesItsKeysOrIdentitiesVouchFor(t *testing.T) {
	t.Parallel()
	reg := imageregistry.New(t, imageregistry.WithBasicAuth(), imageregistry.WithReferrers())
	key, other := signing.NewKey(t), signing.NewKey(t)
	sigstore, otherSigstore := signing.NewSigstore(t), signing.NewSigstore(t)
	trustedRoot := sigstore.TrustedRoot(t)
	keyless := func(ids ...verify.Identity) func(*verify.Request) {
		return func(r *verify.Request) { r.TrustedRoot, r.Identities = trustedRoot, ids }
	}
	tests := []struct {
		name string
		sign func(testing.TB, signing.Target)
		req  func(*verify.Request)
		// want is nil when the artifact verifies.
		want error
		says string
	}{
		{"a signature in the sha256-<digest>.sig tag by a key of the Secret verifies", key.SignTag,
			secret("keys", map[string][]byte{"cosign.pub": key.PublicPEM(t)}), nil, "cosign key cosign.pub of Secret keys"},
		{"a Sigstore bundle among the referrers by a key of the Secret verifies", key.SignBundle,
			secret("keys", map[string][]byte{"cosign.pub": key.PublicPEM(t)}), nil, "cosign key cosign.pub of Secret keys"},
		{"every key of the Secret is tried, in name order", key.SignBundle,
			secret("keys", map[string][]byte{"a-old.pub": other.PublicPEM(t), "b-new.pub": key.PublicPEM(t), "README": []byte("not a key")}), nil, "cosign key b-new.pub"},
		{"an unsigned artifact is refused", nil,
			secret("keys", map[string][]byte{"cosign.pub": key.PublicPEM(t)}), verify.ErrUnverified, "the artifact has no cosign signature"},
		{"a signature by a key the Secret does not hold is refused", other.SignTag,
			secret("keys", map[string][]byte{"cosign.pub": key.PublicPEM(t)}), verify.ErrUnverified, "no signature of"},
		{"a bundle by a key the Secret does not hold is refused", other.SignBundle,
			secret("keys", map[string][]byte{"cosign.pub": key.PublicPEM(t)}), verify.ErrUnverified, "no signature of"},
		{"a Secret without any .pub entry is a configuration error", key.SignTag,
			secret("keys", map[string][]byte{"cosign.key": []byte("private")}), verify.ErrConfig, "spec.verify.secretRef: Secret keys has no public key"},
		{"a .pub entry that is no PEM key is a configuration error", key.SignTag,
			secret("keys", map[string][]byte{"cosign.pub": []byte("nonsense")}), verify.ErrConfig, "cosign.pub: not a PEM public key"},
		{"a keyless bundle of a matching identity verifies against the trusted root", keylessSigner(sigstore, subject),
			keyless(verify.Identity{Issuer: "^https://token.actions.githubusercontent.com$", Subject: "^release@example.com$"}), nil, `a keyless signature of issuer "^https://token.actions.githubusercontent.com$"`},
		{"one matching identity among several is enough", keylessSigner(sigstore, subject),
			keyless(verify.Identity{Issuer: ".*", Subject: "^nobody$"}, verify.Identity{Issuer: "^https://token", Subject: "@example.com$"}), nil, `subject "@example.com$"`},
		{"a keyless bundle whose subject no identity matches is refused", keylessSigner(sigstore, "intruder@example.org"),
			keyless(verify.Identity{Issuer: "^https://token.actions.githubusercontent.com$", Subject: "^release@example.com$"}), verify.ErrUnverified, "no keyless signature of"},
		{"a keyless bundle of another Sigstore instance is refused", keylessSigner(otherSigstore, subject),
			keyless(verify.Identity{Issuer: ".*", Subject: ".*"}), verify.ErrUnverified, "the trusted root of spec.verify.trustedRootSecretRef"},
		{"a trusted root that is not one is a configuration error", keylessSigner(sigstore, subject),
			func(r *verify.Request) { r.TrustedRoot = []byte("{}") }, verify.ErrConfig, "trusted_root.json is not a Sigstore trusted root"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newArtifact(t, reg, fmt.Sprintf("cosign/app-%d", i))
			if tt.sign != nil {
				tt.sign(t, a.target)
			}
			res, err := a.check(t, verify.ProviderCosign, tt.req)
			checkOutcome(t, res, err, tt.want, tt.says)
		})
	}
}

// keylessSigner signs as subject, issued by issuer, in s.
func keylessSigner(s *signing.Sigstore, subject string) func(testing.TB, signing.Target) {
	return func(t testing.TB, tg signing.Target) { s.SignBundle(t, tg, subject, issuer) }
}

func TestNotationAcceptsOnlySignaturesItsTrustPolicyAndCertificatesVouchFor(t *testing.T) {
	t.Parallel()
	reg := imageregistry.New(t, imageregistry.WithBasicAuth(), imageregistry.WithReferrers())
	ca, other := signing.NewCA(t, "Sluice test CA"), signing.NewCA(t, "Another CA")
	policy := signing.TrustPolicy(t)
	skip := []byte(`{"version":"1.0","trustPolicies":[{"name":"skip","registryScopes":["*"],"signatureVerification":{"level":"skip"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}`)
	tests := []struct {
		name string
		sign func(testing.TB, signing.Target)
		data map[string][]byte
		want error
		says string
	}{
		{"a signature certified by a CA of the Secret verifies", ca.Sign,
			map[string][]byte{"trustpolicy.json": policy, "ca.crt": ca.CertPEM()}, nil, "trust policy (level strict) and CA certificates of Secret notation"},
		{"the CA may be in a .pem entry among others", ca.Sign,
			map[string][]byte{"trustpolicy.json": policy, "other.crt": other.CertPEM(), "ca.pem": ca.CertPEM()}, nil, "level strict"},
		{"a signature certified by another CA is refused", other.Sign,
			map[string][]byte{"trustpolicy.json": policy, "ca.crt": ca.CertPEM()}, verify.ErrUnverified, "no notation signature of"},
		{"an unsigned artifact is refused", nil,
			map[string][]byte{"trustpolicy.json": policy, "ca.crt": ca.CertPEM()}, verify.ErrUnverified, "no notation signature of"},
		{"a Secret without trustpolicy.json is a configuration error", ca.Sign,
			map[string][]byte{"ca.crt": ca.CertPEM()}, verify.ErrConfig, "spec.verify.secretRef: Secret notation has no trustpolicy.json"},
		{"a Secret without a CA certificate is a configuration error", ca.Sign,
			map[string][]byte{"trustpolicy.json": policy}, verify.ErrConfig, "Secret notation has no CA certificate"},
		{"a trust policy notation refuses is a configuration error", ca.Sign,
			map[string][]byte{"trustpolicy.json": []byte(`{"version":"1.0","trustPolicies":[]}`), "ca.crt": ca.CertPEM()}, verify.ErrConfig, "trustpolicy.json"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newArtifact(t, reg, fmt.Sprintf("notation/app-%d", i))
			if tt.sign != nil {
				tt.sign(t, a.target)
			}
			res, err := a.check(t, verify.ProviderNotation, secret("notation", tt.data))
			checkOutcome(t, res, err, tt.want, tt.says)
		})
	}
	t.Run("a trust policy at level skip lets an artifact through unverified, as in Flux", func(t *testing.T) {
		t.Parallel()
		a := newArtifact(t, reg, "notation/skipped")
		res, err := a.check(t, verify.ProviderNotation, secret("notation", map[string][]byte{"trustpolicy.json": skip, "ca.crt": ca.CertPEM()}))
		if err != nil || res.Verified {
			t.Fatalf("got %+v, %v; want it let through, not verified", res, err)
		}
	})
}

func TestAnUnknownProviderIsAConfigurationError(t *testing.T) {
	t.Parallel()
	_, err := verify.New().Verify(t.Context(), "gpg", verify.Request{Field: "spec.verify"})
	if !errors.Is(err, verify.ErrConfig) || !strings.Contains(err.Error(), `spec.verify.provider: verification is not configured: unknown provider "gpg", want cosign or notation`) {
		t.Fatalf("got %v", err)
	}
}

// checkOutcome fails unless err wraps want and says says, or, with want
// nil, res is verified by what says says.
func checkOutcome(t *testing.T, res verify.Result, err, want error, says string) {
	t.Helper()
	t.Logf("result %+v, error %v", res, err)
	switch {
	case want == nil && err != nil:
		t.Fatalf("refused: %v", err)
	case want == nil && (!res.Verified || !strings.Contains(res.By, says)):
		t.Fatalf("got %+v, want verified by %q", res, says)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("got %+v, %v; want %v", res, err, want)
	case want != nil && !strings.Contains(err.Error(), says):
		t.Fatalf("error %q does not say %q", err, says)
	}
}
