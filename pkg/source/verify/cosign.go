package verify

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// publicRekorURL is the public Sigstore transparency log, which keyless
// signatures are looked up in when the public root is trusted.
const publicRekorURL = "https://rekor.sigstore.dev"

// publicRootRetry is how long a failure to fetch the public Sigstore
// root is kept before it is tried again, as Flux rate-limits it: every
// artifact that asks for it meanwhile fails at once.
const publicRootRetry = time.Minute

// cosignVerifier checks cosign signatures as Flux's source-controller
// does: with the public keys of spec.verify.secretRef, each tried in
// turn, or keyless, against spec.verify.matchOIDCIdentity and a
// Sigstore trusted root. Both the classic sha256-<digest>.sig tag and
// cosign v3's Sigstore bundles among the referrers are read.
type cosignVerifier struct {
	// mu guards the public Sigstore root, fetched over TUF once and
	// shared by every keyless check without trustedRootSecretRef.
	mu          sync.Mutex
	public      root.TrustedMaterial
	publicErr   error
	lastAttempt time.Time
	// fetchPublic fetches the public root; tests replace it.
	fetchPublic func() (root.TrustedMaterial, error)
}

func addCosign(v Verifiers) {
	v[ProviderCosign] = &cosignVerifier{fetchPublic: fetchPublicRoot}
}

// Verify checks req's artifact with the keys of req.Secret, or keyless
// when no Secret is named.
func (c *cosignVerifier) Verify(ctx context.Context, req Request) (Result, error) {
	if req.SecretName != "" {
		return c.withKeys(ctx, req)
	}
	return c.keyless(ctx, req)
}

// withKeys tries each public key (*.pub) of the Secret in name order:
// the first that verifies a signature wins, as Flux loops over them. A
// key that cannot be read fails the check, as in Flux.
func (c *cosignVerifier) withKeys(ctx context.Context, req Request) (Result, error) {
	keys := withSuffix(req.Secret, ".pub")
	if len(keys) == 0 {
		return Result{}, fmt.Errorf("%w: %s.secretRef: Secret %s has no public key: want PEM keys in entries ending in .pub", ErrConfig, req.Field, req.SecretName)
	}
	var refusals []error
	for _, key := range keys {
		opts, err := keyCheckOpts(req.Secret[key])
		if err != nil {
			return Result{}, fmt.Errorf("%w: %s.secretRef: Secret %s: %s: %w", ErrConfig, req.Field, req.SecretName, key, err)
		}
		if err := check(ctx, req, opts); err != nil {
			refusals = append(refusals, fmt.Errorf("%s: %w", key, err))
			continue
		}
		return Result{Verified: true, By: fmt.Sprintf("cosign key %s of Secret %s", key, req.SecretName)}, nil
	}
	return Result{}, fmt.Errorf("%w: no signature of %s verifies with the keys of Secret %s: %w", ErrUnverified, req.Ref, req.SecretName, errors.Join(refusals...))
}

// keyCheckOpts are the options of a check with one public key: offline
// and without the transparency log, as Flux checks them.
func keyCheckOpts(pemKey []byte) (*cosign.CheckOpts, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		return nil, fmt.Errorf("not a PEM public key: %w", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load the public key: %w", err)
	}
	return &cosign.CheckOpts{SigVerifier: v, Offline: true, IgnoreTlog: true}, nil
}

// keyless checks a keyless signature: its Fulcio certificate must chain
// to the trusted root and name one of the identities, and the signature
// be in the root's transparency log. The identities are tried one at a
// time, so that any one of them matching is enough, as Flux documents,
// for bundles too (cosign takes one identity per bundle check).
func (c *cosignVerifier) keyless(ctx context.Context, req Request) (Result, error) {
	opts, by, err := c.keylessCheckOpts(req)
	if err != nil {
		return Result{}, err
	}
	identities := req.Identities
	if len(identities) == 0 {
		// No matcher: any identity the root vouches for, as Flux does
		// with an empty matchOIDCIdentity.
		identities = []Identity{{Issuer: ".*", Subject: ".*"}}
	}
	var refusals []error
	for _, id := range identities {
		o := *opts
		o.Identities = []cosign.Identity{{IssuerRegExp: id.Issuer, SubjectRegExp: id.Subject}}
		if err := check(ctx, req, &o); err != nil {
			refusals = append(refusals, fmt.Errorf("issuer %q subject %q: %w", id.Issuer, id.Subject, err))
			continue
		}
		return Result{Verified: true, By: fmt.Sprintf("a keyless signature of issuer %q and subject %q, %s", id.Issuer, id.Subject, by)}, nil
	}
	err = fmt.Errorf("%w: no keyless signature of %s verifies against %s with the identities of %s.matchOIDCIdentity: %w", ErrUnverified, req.Ref, by, req.Field, errors.Join(refusals...))
	if req.TrustedRoot == nil && !req.NoTrustedRootField {
		err = fmt.Errorf("%w (%s.trustedRootSecretRef is not set, so only signatures of the public Sigstore instance verify)", err, req.Field)
	}
	return Result{}, err
}

// keylessCheckOpts are the options of a keyless check: the trusted root
// of req, or the public Sigstore root, and a Rekor client for signatures
// that carry no proof of their log entry. by names the root.
func (c *cosignVerifier) keylessCheckOpts(req Request) (*cosign.CheckOpts, string, error) {
	if req.TrustedRoot != nil {
		tr, err := root.NewTrustedRootFromJSON(req.TrustedRoot)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s.trustedRootSecretRef: %s is not a Sigstore trusted root: %w", ErrConfig, req.Field, TrustedRootKey, err)
		}
		// A private instance without a certificate transparency log
		// issues certificates without SCTs: they are checked only when
		// the root lists a log to check them against.
		opts := &cosign.CheckOpts{TrustedMaterial: tr, IgnoreSCT: len(tr.CTLogs()) == 0}
		// As Flux, the log named in the root is asked about signatures
		// that do not carry their entry; a root that names none can
		// still verify those that do, offline.
		for _, l := range tr.RekorLogs() {
			if l.BaseURL == "" {
				continue
			}
			if opts.RekorClient, err = rekorclient.GetRekorClient(l.BaseURL, rekorTLS(req)...); err != nil {
				return nil, "", fmt.Errorf("%w: %s.trustedRootSecretRef: Rekor client for %s: %w", ErrConfig, req.Field, l.BaseURL, err)
			}
			break
		}
		return opts, "the trusted root of " + req.Field + ".trustedRootSecretRef", nil
	}
	public, err := c.publicRoot()
	if err != nil {
		why := req.Field + ".trustedRootSecretRef is not set and the public Sigstore trusted root"
		if req.NoTrustedRootField {
			why = "keyless signatures are checked against the public Sigstore trusted root, which"
		}
		return nil, "", fmt.Errorf("%w: %s could not be fetched over TUF from %s: %w", ErrConfig, why, tuf.DefaultMirror, err)
	}
	rekor, err := rekorclient.GetRekorClient(publicRekorURL, rekorTLS(req)...)
	if err != nil {
		return nil, "", fmt.Errorf("%w: Rekor client for %s: %w", ErrConfig, publicRekorURL, err)
	}
	return &cosign.CheckOpts{TrustedMaterial: public, RekorClient: rekor}, "the public Sigstore trusted root", nil
}

// rekorTLS passes the registry's TLS configuration to the Rekor client,
// as Flux does: a private CA that signs both is trusted for both.
func rekorTLS(req Request) []rekorclient.Option {
	if req.Remote.TLS == nil {
		return nil
	}
	return []rekorclient.Option{rekorclient.WithTLSConfig(req.Remote.TLS)}
}

// publicRoot returns the public Sigstore root, fetching it once; a
// failure is kept for publicRootRetry, so that an unreachable TUF
// mirror is not asked at every look of every artifact.
func (c *cosignVerifier) publicRoot() (root.TrustedMaterial, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.public != nil {
		return c.public, nil
	}
	if c.publicErr == nil || time.Since(c.lastAttempt) >= publicRootRetry {
		c.lastAttempt = time.Now()
		c.public, c.publicErr = c.fetchPublic()
	}
	return c.public, c.publicErr
}

// fetchPublicRoot fetches the public Sigstore trusted root over TUF from
// the default mirror, starting from the root embedded in sigstore-go, as
// cosign does. The TUF metadata stays in memory (sigstore-go refreshes
// it daily): the controller writes no files, and needs no writable home.
func fetchPublicRoot() (root.TrustedMaterial, error) {
	tr, err := root.NewLiveTrustedRoot(tuf.DefaultOptions().WithDisableLocalCache())
	if err != nil {
		return nil, err
	}
	return tr, nil
}

// check verifies the artifact with opts: the Sigstore bundles among its
// referrers when there are any, else the classic signature tag, as
// Flux's verifier and the cosign CLI do.
func check(ctx context.Context, req Request, opts *cosign.CheckOpts) error {
	remoteOpts, done := req.Remote.Options(ctx)
	defer done()
	var nameOpts []name.Option
	if req.Remote.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	opts.RegistryClientOpts = []ociremote.Option{ociremote.WithRemoteOptions(remoteOpts...), ociremote.WithNameOptions(nameOpts...)}
	bundles, _, err := cosign.GetBundles(ctx, req.Ref, opts.RegistryClientOpts, nameOpts...)
	if err == nil && len(bundles) > 0 {
		opts.NewBundleFormat = true
		_, _, err = cosign.VerifyImageAttestations(ctx, req.Ref, opts, nameOpts...)
		return summarize(err)
	}
	opts.NewBundleFormat = false
	_, _, err = cosign.VerifyImageSignatures(ctx, req.Ref, opts)
	return summarize(err)
}

// summarize says in words what cosign's error for an artifact without
// any signature means.
func summarize(err error) error {
	var none *cosign.ErrNoSignaturesFound
	if errors.As(err, &none) {
		return errors.New("the artifact has no cosign signature")
	}
	return err
}
