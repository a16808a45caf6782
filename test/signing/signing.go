// Package signing signs OCI artifacts in tests with the libraries
// Sluice verifies them with, as cosign and notation sign them: cosign
// signatures with a key, in the classic sha256-<digest>.sig tag or as a
// Sigstore bundle among the referrers; keyless cosign bundles from a
// Sigstore in memory (sigstore-go's VirtualSigstore: a Fulcio CA, a
// Rekor log and a timestamp authority) with the trusted root that
// vouches for them; and notation signatures by a test CA, pushed as
// referrers.
package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	intotov1 "github.com/in-toto/attestation/go/v1"
	_ "github.com/notaryproject/notation-core-go/signature/jws" // the JWS envelope
	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	notationsigner "github.com/notaryproject/notation-go/signer"
	"github.com/sigstore/cosign/v3/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	cosigntypes "github.com/sigstore/cosign/v3/pkg/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	orasremote "oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"
)

// Target is an artifact to sign: its manifest digest in its repository,
// and the credentials of the registry (nil for none).
type Target struct {
	Ref  name.Digest
	Auth authn.Authenticator
}

// NewTarget is the artifact digest (sha256:<hex>) of image
// (host/path) in a registry reached with auth, nil for none.
func NewTarget(t testing.TB, image, digest string, auth authn.Authenticator) Target {
	t.Helper()
	ref, err := name.NewDigest(image+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatalf("reference %s@%s: %v", image, digest, err)
	}
	return Target{Ref: ref, Auth: auth}
}

func (tg Target) remoteOptions() []remote.Option {
	if tg.Auth == nil {
		return nil
	}
	return []remote.Option{remote.WithAuth(tg.Auth)}
}

func (tg Target) ociremoteOptions() []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(tg.remoteOptions()...), ociremote.WithNameOptions(name.Insecure)}
}

// Key is a cosign key pair (ECDSA P-256, as `cosign generate-key-pair`
// makes).
type Key struct {
	kp *sign.EphemeralKeypair
}

// NewKey makes a key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatalf("cosign key: %v", err)
	}
	return &Key{kp: kp}
}

// PublicPEM is the public key, as cosign.pub holds it.
func (k *Key) PublicPEM(t testing.TB) []byte {
	t.Helper()
	p, err := k.kp.GetPublicKeyPem()
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	return []byte(p)
}

// SignTag signs tg as `cosign sign --key` did before bundles: a simple
// signing payload naming the digest, signed and pushed as a layer of the
// sha256-<hex>.sig tag.
func (k *Key) SignTag(t testing.TB, tg Target) {
	t.Helper()
	pl, err := (&payload.Cosign{Image: tg.Ref}).MarshalJSON()
	if err != nil {
		t.Fatalf("signing payload: %v", err)
	}
	sig, _, err := k.kp.SignData(t.Context(), pl)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	s, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		t.Fatalf("signature layer: %v", err)
	}
	se, err := ociremote.SignedEntity(tg.Ref, tg.ociremoteOptions()...)
	if err != nil {
		t.Fatalf("read %s: %v", tg.Ref, err)
	}
	if se, err = mutate.AttachSignatureToEntity(se, s); err != nil {
		t.Fatalf("attach the signature: %v", err)
	}
	if err := ociremote.WriteSignatures(tg.Ref.Repository, se, tg.ociremoteOptions()...); err != nil {
		t.Fatalf("push the signature of %s: %v", tg.Ref, err)
	}
}

// SignBundle signs tg as cosign v3 does by default: an in-toto statement
// about the digest in a DSSE envelope, in a Sigstore bundle pushed as a
// referrer of the artifact.
func (k *Key) SignBundle(t testing.TB, tg Target) {
	t.Helper()
	b, err := sign.Bundle(&sign.DSSEData{Data: statement(t, tg), PayloadType: "application/vnd.in-toto+json"}, k.kp, sign.BundleOptions{Context: t.Context()})
	if err != nil {
		t.Fatalf("sign a bundle: %v", err)
	}
	pushBundle(t, tg, b)
}

// statement is what cosign v3 signs about an image: an in-toto statement
// whose subject is the digest, of cosign's sign predicate type.
func statement(t testing.TB, tg Target) []byte {
	t.Helper()
	algo, hexDigest, _ := strings.Cut(tg.Ref.DigestStr(), ":")
	s := &intotov1.Statement{
		Type:          intotov1.StatementTypeUri,
		Subject:       []*intotov1.ResourceDescriptor{{Digest: map[string]string{algo: hexDigest}}},
		PredicateType: cosigntypes.CosignSignPredicateType,
		Predicate:     &structpb.Struct{},
	}
	data, err := protojson.Marshal(s)
	if err != nil {
		t.Fatalf("statement: %v", err)
	}
	return data
}

// pushBundle pushes b as a referrer of tg, as `cosign sign` does.
func pushBundle(t testing.TB, tg Target, b *protobundle.Bundle) {
	t.Helper()
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(tg.Ref, data, cosigntypes.CosignSignPredicateType, tg.ociremoteOptions()...); err != nil {
		t.Fatalf("push the bundle of %s: %v", tg.Ref, err)
	}
}

// Sigstore is a Sigstore instance in memory.
type Sigstore struct {
	vs *ca.VirtualSigstore
}

// NewSigstore starts one.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatalf("virtual sigstore: %v", err)
	}
	return &Sigstore{vs: vs}
}

// TrustedRoot is the trusted_root.json of the instance: its Fulcio CA,
// Rekor log and timestamp authority. It lists no certificate
// transparency log, as a private instance without one does.
func (s *Sigstore) TrustedRoot(t testing.TB) []byte {
	t.Helper()
	logs := map[string]*root.TransparencyLog{}
	for id, l := range s.vs.RekorLogs() {
		// The virtual instance keeps the log ID hex-encoded; a trusted
		// root holds its bytes.
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatalf("log ID %s: %v", id, err)
		}
		c := *l
		c.ID = raw
		logs[id] = &c
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, s.vs.FulcioCertificateAuthorities(), nil, s.vs.TimestampingAuthorities(), logs)
	if err != nil {
		t.Fatalf("trusted root: %v", err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatalf("trusted root: %v", err)
	}
	return data
}

// SignBundle signs tg keyless, as the OIDC identity subject of issuer:
// Fulcio's certificate for it, the DSSE statement it signs, the Rekor
// entry with its promise and proof of inclusion, and a timestamp, in a
// Sigstore bundle pushed as a referrer.
func (s *Sigstore) SignBundle(t testing.TB, tg Target, subject, issuer string) {
	t.Helper()
	// Logged a little after now, when the certificate (valid from now
	// for ten minutes) is valid, as the virtual instance expects.
	e, err := s.vs.AttestAtTime(subject, issuer, statement(t, tg), time.Now().Add(time.Minute), true)
	if err != nil {
		t.Fatalf("keyless signature: %v", err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	cert := vc.Certificate()
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatalf("envelope: %v", err)
	}
	env := sc.EnvelopeContent().RawEnvelope()
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatalf("envelope payload: %v", err)
	}
	protoEnv := &protodsse.Envelope{Payload: body, PayloadType: env.PayloadType}
	for _, sg := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sg.Sig)
		if err != nil {
			t.Fatalf("envelope signature: %v", err)
		}
		protoEnv.Signatures = append(protoEnv.Signatures, &protodsse.Signature{Sig: raw, Keyid: sg.KeyID})
	}
	entries, err := e.TlogEntries()
	if err != nil || len(entries) == 0 {
		t.Fatalf("log entries: %v", err)
	}
	tle := s.logEntry(t, entries[0])
	timestamps, err := e.Timestamps()
	if err != nil {
		t.Fatalf("timestamps: %v", err)
	}
	var signed []*protocommon.RFC3161SignedTimestamp
	for _, ts := range timestamps {
		signed = append(signed, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	mediaType, err := bundle.MediaTypeString("0.3")
	if err != nil {
		t.Fatalf("bundle media type: %v", err)
	}
	pushBundle(t, tg, &protobundle.Bundle{
		MediaType: mediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: signed},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: protoEnv},
	})
}

// logEntry is e as a bundle holds it, with its kind and the promise of
// inclusion (the log's signed entry timestamp).
func (s *Sigstore) logEntry(t testing.TB, e *tlog.Entry) *protorekor.TransparencyLogEntry {
	t.Helper()
	tle := e.TransparencyLogEntry()
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatalf("signed entry timestamp: %v", err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	return tle
}

// CA is a notation certificate authority: a root that issues code
// signing certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a root CA named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sluice tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	return &CA{cert: certificate(t, tmpl, tmpl, &key.PublicKey, key), key: key}
}

// CertPEM is the root certificate, as a notation Secret's ca.crt holds
// it.
func (c *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

// Sign signs tg as `notation sign` does: a JWS envelope by a code signing
// certificate the CA issues, pushed as a referrer of the artifact.
func (c *CA) Sign(t testing.TB, tg Target) {
	t.Helper()
	key := ecKey(t)
	leaf := certificate(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "signer", Organization: []string{"Sluice tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, c.cert, &key.PublicKey, c.key)
	s, err := notationsigner.NewGenericSigner(key, []*x509.Certificate{leaf, c.cert})
	if err != nil {
		t.Fatalf("notation signer: %v", err)
	}
	repo, err := orasremote.NewRepository(tg.Ref.Context().Name())
	if err != nil {
		t.Fatalf("repository %s: %v", tg.Ref.Context(), err)
	}
	repo.PlainHTTP = true
	client := &orasauth.Client{Client: http.DefaultClient, Cache: orasauth.NewCache()}
	if tg.Auth != nil {
		cfg, err := tg.Auth.Authorization()
		if err != nil {
			t.Fatalf("credentials: %v", err)
		}
		client.Credential = orasauth.StaticCredential(tg.Ref.RegistryStr(), orasauth.Credential{Username: cfg.Username, Password: cfg.Password})
	}
	repo.Client = client
	opts := notation.SignOptions{SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: "application/jose+json"}, ArtifactReference: tg.Ref.String()}
	if _, err := notation.Sign(t.Context(), s, notationregistry.NewRepository(repo), opts); err != nil {
		t.Fatalf("notation sign %s: %v", tg.Ref, err)
	}
}

// TrustPolicy is a notation trustpolicy.json that trusts, at level
// strict, any identity certified by the CA certificates of the Secret
// for every repository.
func TrustPolicy(t testing.TB) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "sluice-tests",
			"registryScopes":        []string{"*"},
			"signatureVerification": map[string]string{"level": "strict"},
			"trustStores":           []string{"ca:sluice-tests"},
			"trustedIdentities":     []string{"*"},
		}},
	})
	if err != nil {
		t.Fatalf("trust policy: %v", err)
	}
	return data
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("key: %v", err)
	}
	return key
}

func certificate(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	return cert
}
