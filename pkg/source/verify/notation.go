package verify

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // the COSE envelope registers itself
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // and so does JWS
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	orasremote "oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"
	orasretry "oras.land/oras-go/v2/registry/remote/retry"
)

// maxNotationSignatures is how many signatures of one artifact are
// tried, as Flux tries them.
const maxNotationSignatures = 3

// notationVerifier checks notation signatures among the artifact's
// referrers against the trust policy (trustpolicy.json) and the CA
// certificates (*.crt, *.pem) of spec.verify.secretRef, as Flux does:
// every certificate is in every trust store the policy names.
type notationVerifier struct{}

func addNotation(v Verifiers) { v[ProviderNotation] = notationVerifier{} }

// Verify checks req's artifact.
func (notationVerifier) Verify(ctx context.Context, req Request) (Result, error) {
	if req.SecretName == "" {
		return Result{}, fmt.Errorf("%w: %s.secretRef is required: its Secret holds %s and the CA certificates", ErrConfig, req.Field, TrustPolicyKey)
	}
	policy, err := trustPolicy(req)
	if err != nil {
		return Result{}, err
	}
	certs, err := caCertificates(req)
	if err != nil {
		return Result{}, err
	}
	v, err := verifier.New(policy, certStore(certs), nil)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s.secretRef: Secret %s: %s: %w", ErrConfig, req.Field, req.SecretName, TrustPolicyKey, err)
	}
	repo, done, err := orasRepository(req)
	if err != nil {
		return Result{}, err
	}
	defer done()
	_, outcomes, err := notation.Verify(ctx, v, registry.NewRepository(repo), notation.VerifyOptions{ArtifactReference: req.Ref.String(), MaxSignatureAttempts: maxNotationSignatures})
	if err != nil {
		return Result{}, fmt.Errorf("%w: no notation signature of %s verifies with the trust policy and certificates of Secret %s: %w", ErrUnverified, req.Ref, req.SecretName, err)
	}
	return outcome(ctx, outcomes, req)
}

// trustPolicy reads trustpolicy.json. As Flux, statements at level skip
// lose their trust stores and identities, which notation would refuse.
func trustPolicy(req Request) (*trustpolicy.Document, error) {
	data, ok := req.Secret[TrustPolicyKey]
	if !ok {
		return nil, fmt.Errorf("%w: %s.secretRef: Secret %s has no %s", ErrConfig, req.Field, req.SecretName, TrustPolicyKey)
	}
	doc := &trustpolicy.Document{}
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, fmt.Errorf("%w: %s.secretRef: Secret %s: %s: %w", ErrConfig, req.Field, req.SecretName, TrustPolicyKey, err)
	}
	for i, p := range doc.TrustPolicies {
		if p.SignatureVerification.VerificationLevel == trustpolicy.LevelSkip.Name {
			doc.TrustPolicies[i].TrustStores, doc.TrustPolicies[i].TrustedIdentities = []string{}, []string{}
		}
	}
	return doc, nil
}

// caCertificates reads every certificate of the entries ending in .crt
// or .pem, PEM or DER.
func caCertificates(req Request) ([]*x509.Certificate, error) {
	keys := withSuffix(req.Secret, ".crt", ".pem")
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s.secretRef: Secret %s has no CA certificate: want entries ending in .crt or .pem", ErrConfig, req.Field, req.SecretName)
	}
	var certs []*x509.Certificate
	for _, k := range keys {
		parsed, err := parseCertificates(req.Secret[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s.secretRef: Secret %s: %s: %w", ErrConfig, req.Field, req.SecretName, k, err)
		}
		certs = append(certs, parsed...)
	}
	return certs, nil
}

// parseCertificates reads PEM blocks, or DER.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c...)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("no PEM or DER certificate: %w", err)
	}
	return certs, nil
}

// certStore is a trust store holding the Secret's certificates under
// every name, as Flux's does.
type certStore []*x509.Certificate

var _ truststore.X509TrustStore = certStore(nil)

// GetCertificates implements truststore.X509TrustStore.
func (s certStore) GetCertificates(context.Context, truststore.Type, string) ([]*x509.Certificate, error) {
	return s, nil
}

// orasRepository is the artifact's repository for notation, reached
// with req.Remote's credentials, TLS configuration and proxy.
func orasRepository(req Request) (*orasremote.Repository, func(), error) {
	repo, err := orasremote.NewRepository(req.Ref.Context().Name())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", req.Ref, err)
	}
	// As go-containerregistry decides: spec.insecure, or a registry on
	// loopback or a private address.
	repo.PlainHTTP = req.Remote.Insecure || req.Ref.Context().Scheme() == "http"
	cred, err := credential(req)
	if err != nil {
		return nil, nil, err
	}
	tr, done := req.Remote.Transport()
	repo.Client = &orasauth.Client{
		Client: &http.Client{Transport: orasretry.NewTransport(tr)},
		Header: http.Header{"User-Agent": {"sluice"}},
		// One token for the resolve, the listing and the signature
		// blobs of a check.
		Cache: orasauth.NewCache(),
		Credential: func(context.Context, string) (orasauth.Credential, error) {
			return cred, nil
		},
	}
	return repo, done, nil
}

// credential turns req.Remote's authenticator, or what its keychain
// holds for the registry, into ORAS's credential.
func credential(req Request) (orasauth.Credential, error) {
	a := req.Remote.Auth
	if a == nil && req.Remote.Keychain != nil {
		var err error
		if a, err = req.Remote.Keychain.Resolve(req.Ref.Context()); err != nil {
			return orasauth.EmptyCredential, fmt.Errorf("credentials for %s: %w", req.Ref.Context().RegistryStr(), err)
		}
	}
	if a == nil || a == authn.Anonymous {
		return orasauth.EmptyCredential, nil
	}
	cfg, err := a.Authorization()
	if err != nil {
		return orasauth.EmptyCredential, fmt.Errorf("credentials for %s: %w", req.Ref.Context().RegistryStr(), err)
	}
	return orasauth.Credential{Username: cfg.Username, Password: cfg.Password, RefreshToken: cfg.IdentityToken, AccessToken: cfg.RegistryToken}, nil
}

// outcome reads notation's outcome as Flux does: level skip, or an
// authenticity failure that the policy only logs (audit), lets the
// artifact through unverified; a failure of another kind that is only
// logged still counts as verified.
func outcome(ctx context.Context, outcomes []*notation.VerificationOutcome, req Request) (Result, error) {
	if len(outcomes) == 0 {
		return Result{}, fmt.Errorf("%w: no notation signature of %s verifies", ErrUnverified, req.Ref)
	}
	o := outcomes[0]
	if o.VerificationLevel == trustpolicy.LevelSkip {
		return Result{By: "the trust policy's level skip"}, nil
	}
	var logged []string
	authentic := true
	for _, r := range o.VerificationResults {
		if r.Error == nil {
			continue
		}
		logged = append(logged, fmt.Sprintf("%s: %v", r.Type, r.Error))
		if r.Type == trustpolicy.TypeAuthenticity {
			authentic = false
		}
	}
	if len(logged) > 0 {
		logr.FromContextOrDiscard(ctx).Info("notation checks the trust policy only logs failed", "artifact", req.Ref.String(), "failures", strings.Join(logged, "; "))
	}
	if !authentic {
		return Result{By: "a trust policy that only logs authenticity"}, nil
	}
	level := "?"
	if o.VerificationLevel != nil {
		level = o.VerificationLevel.Name
	}
	return Result{Verified: true, By: fmt.Sprintf("notation, the trust policy (level %s) and CA certificates of Secret %s", level, req.SecretName)}, nil
}
