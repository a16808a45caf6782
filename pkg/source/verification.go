package source

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/source/verify"
)

// verifySpec is spec.verify of an OCIRepository or a HelmChart, as the
// verifier reads it.
type verifySpec struct {
	provider    string
	secretRef   *sourcev1.LocalObjectReference
	identities  []sourcev1.OIDCIdentityMatch
	trustedRoot *sourcev1.LocalObjectReference
	// noTrustedRootField: the kind has no trustedRootSecretRef.
	noTrustedRootField bool
}

// verificationError is a refused or failed signature check: Flux's
// VerificationError, for Ready and SourceVerified alike.
type verificationError struct{ err error }

func (e *verificationError) Error() string { return e.err.Error() }
func (e *verificationError) Unwrap() error { return e.err }

// checkSignature reads the Secrets spec names in namespace and checks
// the signature of ref with the provider it names. Every error is a
// *verificationError whose message starts with spec.verify.
func checkSignature(ctx context.Context, c client.Reader, verifiers verify.Verifiers, namespace string, spec verifySpec, ref name.Digest, remote oci.Remote) (verify.Result, error) {
	const field = "spec.verify"
	if verifiers == nil {
		verifiers = verify.New()
	}
	req := verify.Request{Ref: ref, Remote: remote, Field: field, NoTrustedRootField: spec.noTrustedRootField}
	for _, id := range spec.identities {
		req.Identities = append(req.Identities, verify.Identity{Issuer: id.Issuer, Subject: id.Subject})
	}
	if r := spec.secretRef; r != nil {
		secret, err := readSecret(ctx, c, namespace, r.Name)
		if err != nil {
			return verify.Result{}, &verificationError{fmt.Errorf("%s.secretRef: Secret %s: %w", field, r.Name, err)}
		}
		req.SecretName, req.Secret = r.Name, secret.Data
	}
	// As Flux, the trusted root counts for keyless signatures only.
	if r := spec.trustedRoot; r != nil && spec.secretRef == nil && spec.provider == verify.ProviderCosign {
		secret, err := readSecret(ctx, c, namespace, r.Name)
		if err != nil {
			return verify.Result{}, &verificationError{fmt.Errorf("%s.trustedRootSecretRef: Secret %s: %w", field, r.Name, err)}
		}
		data, ok := secret.Data[verify.TrustedRootKey]
		if !ok {
			return verify.Result{}, &verificationError{fmt.Errorf("%s.trustedRootSecretRef: Secret %s has no %s", field, r.Name, verify.TrustedRootKey)}
		}
		req.TrustedRoot = data
	}
	res, err := verifiers.Verify(ctx, spec.provider, req)
	if err != nil {
		return res, &verificationError{err}
	}
	return res, nil
}

// setSourceVerified writes the SourceVerified condition at generation;
// an empty status removes it, as without spec.verify.
func setSourceVerified(conditions *[]metav1.Condition, generation int64, s metav1.ConditionStatus, reason, message string) {
	if s == "" {
		meta.RemoveStatusCondition(conditions, sourcev1.SourceVerifiedCondition)
		return
	}
	meta.SetStatusCondition(conditions, metav1.Condition{Type: sourcev1.SourceVerifiedCondition, Status: s, ObservedGeneration: generation, Reason: reason, Message: message})
}

// verifiedMessage is SourceVerified's message for what verified.
func verifiedMessage(what, revision string, res verify.Result) string {
	return fmt.Sprintf("verified signature of %s %s with %s", what, revision, res.By)
}
