package verify

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"
)

func TestKeylessWithoutATrustedRootAsksForThePublicSigstoreRootAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	fetches := 0
	c := &cosignVerifier{fetchPublic: func() (root.TrustedMaterial, error) {
		fetches++
		return nil, errors.New("dial tcp: lookup tuf-repo-cdn.sigstore.dev: no such host")
	}}
	v := Verifiers{ProviderCosign: c}
	ref, err := name.NewDigest("registry.example/app@sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := v.Verify(t.Context(), ProviderCosign, Request{Ref: ref, Field: "spec.verify"})
		want := "spec.verify: provider cosign keyless: verification is not configured: spec.verify.trustedRootSecretRef is not set and the public Sigstore trusted root could not be fetched over TUF from https://tuf-repo-cdn.sigstore.dev: dial tcp"
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %v, want %q", err, want)
		}
	}
	if fetches != 1 {
		t.Fatalf("fetched %d times in a minute, want once", fetches)
	}
}
