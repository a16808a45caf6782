package source

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/source/verify"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/signing"
)

// The identity keyless signatures are made as in these tests.
const (
	testIssuer  = "https://token.actions.githubusercontent.com"
	testSubject = "release@example.com"
)

func TestAnOCIRepositoryStoresOnlyArtifactsWhoseSignatureVerifies(t *testing.T) {
	t.Parallel()
	const ns = "oci-verify"
	reg := imageregistry.New(t, imageregistry.WithBasicAuth(), imageregistry.WithReferrers())
	key, other := signing.NewKey(t), signing.NewKey(t)
	sigstore := signing.NewSigstore(t)
	ca, otherCA := signing.NewCA(t, "Sluice test CA"), signing.NewCA(t, "Another CA")
	create(t, ns,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: reg.DockerConfigJSON()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cosign-keys", Namespace: ns}, Data: map[string][]byte{"cosign.pub": key.PublicPEM(t)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "no-keys", Namespace: ns}, Data: map[string][]byte{"cosign.key": []byte("a private key has no place here")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "trusted-root", Namespace: ns}, Data: map[string][]byte{verify.TrustedRootKey: sigstore.TrustedRoot(t)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "notation", Namespace: ns}, Data: map[string][]byte{verify.TrustPolicyKey: signing.TrustPolicy(t), "ca.crt": ca.CertPEM()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "notation-no-policy", Namespace: ns}, Data: map[string][]byte{"ca.crt": ca.CertPEM()}},
	)
	cosignKeys := &sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign, SecretRef: &sourcev1.LocalObjectReference{Name: "cosign-keys"}}
	keyless := func(subject string) *sourcev1.OCIRepositoryVerification {
		return &sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign, TrustedRootSecretRef: &sourcev1.LocalObjectReference{Name: "trusted-root"},
			MatchOIDCIdentity: []sourcev1.OIDCIdentityMatch{{Issuer: "^" + testIssuer + "$", Subject: subject}}}
	}
	notationWith := func(secret string) *sourcev1.OCIRepositoryVerification {
		return &sourcev1.OCIRepositoryVerification{Provider: verify.ProviderNotation, SecretRef: &sourcev1.LocalObjectReference{Name: secret}}
	}
	keylessSign := func(subject string) func(testing.TB, signing.Target) {
		return func(t testing.TB, tg signing.Target) { sigstore.SignBundle(t, tg, subject, testIssuer) }
	}
	tests := []struct {
		name   string
		sign   func(testing.TB, signing.Target)
		verify *sourcev1.OCIRepositoryVerification
		// refused is empty when the artifact verifies, else what the
		// refusal says.
		refused string
		// by is what SourceVerified says verified it.
		by string
	}{
		{"cosign: a signature in the .sig tag by a key of spec.verify.secretRef", key.SignTag, cosignKeys, "", "cosign key cosign.pub of Secret cosign-keys"},
		{"cosign: a Sigstore bundle by a key of spec.verify.secretRef", key.SignBundle, cosignKeys, "", "cosign key cosign.pub of Secret cosign-keys"},
		{"cosign keyless: a bundle of an identity of spec.verify.matchOIDCIdentity, checked against spec.verify.trustedRootSecretRef", keylessSign(testSubject), keyless("^release@"), "", "a keyless signature of issuer"},
		{"notation: a signature certified by a CA of spec.verify.secretRef", ca.Sign, notationWith("notation"), "", "notation, the trust policy (level strict)"},
		{"cosign: an unsigned artifact", nil, cosignKeys, "spec.verify: provider cosign: no signature verified", ""},
		{"cosign: a signature by a key spec.verify.secretRef does not hold", other.SignTag, cosignKeys, "no signature of", ""},
		{"cosign keyless: a subject no entry of spec.verify.matchOIDCIdentity matches", keylessSign("intruder@example.org"), keyless("^release@"), "spec.verify: provider cosign keyless: no signature verified", ""},
		{"cosign keyless without spec.verify.trustedRootSecretRef: only the public Sigstore root, which this machine cannot reach", keylessSign(testSubject),
			&sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign}, "spec.verify.trustedRootSecretRef is not set", ""},
		{"notation: a signature certified by a CA spec.verify.secretRef does not hold", otherCA.Sign, notationWith("notation"), "spec.verify: provider notation: no signature verified", ""},
		{"cosign: a spec.verify.secretRef without any .pub key", key.SignTag,
			&sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign, SecretRef: &sourcev1.LocalObjectReference{Name: "no-keys"}}, "spec.verify.secretRef: Secret no-keys has no public key", ""},
		{"notation: a spec.verify.secretRef without trustpolicy.json", ca.Sign, notationWith("notation-no-policy"), "spec.verify.secretRef: Secret notation-no-policy has no trustpolicy.json", ""},
		{"a spec.verify.secretRef that does not exist", key.SignTag,
			&sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign, SecretRef: &sourcev1.LocalObjectReference{Name: "missing"}}, "spec.verify.secretRef: Secret missing", ""},
	}
	for i, tt := range tests {
		verdict := "is stored with SourceVerified"
		if tt.refused != "" {
			verdict = "is refused with VerificationError, a Warning Event and no artifact"
		}
		t.Run(tt.name+" "+verdict, func(t *testing.T) {
			t.Parallel()
			path := fmt.Sprintf("signed/app-%d", i)
			url := "oci://" + reg.Image(path)
			digest := pushArtifact(t, reg, url+":1.0.0")
			if tt.sign != nil {
				tt.sign(t, signing.NewTarget(t, reg.Image(path), digest, reg.Auth))
			}
			repo := signedOCIRepository(ns, fmt.Sprintf("app-%d", i), url, tt.verify)
			if err := cp.Client.Create(t.Context(), repo); err != nil {
				t.Fatal(err)
			}
			ev := &eventLog{}
			r := &OCIRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore(), Verifiers: verify.New()}
			got := reconcileOCI(t, r, repo)
			if tt.refused == "" {
				checkVerified(t, r, got, "1.0.0@"+digest, tt.by)
				if events := ev.all(); len(events) != 1 || !strings.HasPrefix(events[0], "Normal NewArtifact") {
					t.Fatalf("events %q, want one NewArtifact", events)
				}
				return
			}
			t.Logf("Ready: %s", readyOf(got.Status.Conditions))
			checkRefused(t, got, tt.refused)
			if _, ok := r.Store.Get(client.ObjectKeyFromObject(repo)); ok || got.Status.Artifact != nil {
				t.Fatalf("a refused artifact is stored: %+v", got.Status.Artifact)
			}
			if events := ev.all(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning VerificationError: spec.verify") || !strings.Contains(events[0], tt.refused) {
				t.Fatalf("events %q, want one Warning VerificationError naming spec.verify and saying %q", events, tt.refused)
			}
		})
	}
}

// signedOCIRepository is an OCIRepository of url's tag 1.0.0, with the
// registry credentials of the Secret pull and v as spec.verify.
func signedOCIRepository(ns, name, url string, v *sourcev1.OCIRepositoryVerification) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
		URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Minute},
		SecretRef: &sourcev1.LocalObjectReference{Name: "pull"}, Verify: v,
	}}
}

// checkVerified fails unless repo is Ready with revision, stored, and
// SourceVerified True at its generation, saying by.
func checkVerified(t *testing.T, r *OCIRepositoryReconciler, repo *sourcev1.OCIRepository, revision, by string) {
	t.Helper()
	if a := repo.Status.Artifact; a == nil || a.Revision != revision || !meta.IsStatusConditionTrue(repo.Status.Conditions, "Ready") {
		t.Fatalf("Ready is %s, artifact %+v; want revision %s", readyOf(repo.Status.Conditions), repo.Status.Artifact, revision)
	}
	if stored, ok := r.Store.Get(client.ObjectKeyFromObject(repo)); !ok || stored.Revision != revision {
		t.Fatalf("store holds %+v, want revision %s", stored, revision)
	}
	c := meta.FindStatusCondition(repo.Status.Conditions, sourcev1.SourceVerifiedCondition)
	want := "verified signature of revision " + revision + " with " + by
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != sourcev1.ReasonSucceeded || c.ObservedGeneration != repo.Generation || !strings.HasPrefix(c.Message, want) {
		t.Fatalf("SourceVerified is %+v, want True Succeeded starting %q", c, want)
	}
}

// checkRefused fails unless Ready and SourceVerified are False with
// VerificationError, saying says.
func checkRefused(t *testing.T, repo *sourcev1.OCIRepository, says string) {
	t.Helper()
	for _, typ := range []string{"Ready", sourcev1.SourceVerifiedCondition} {
		c := meta.FindStatusCondition(repo.Status.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != sourcev1.ReasonVerificationError || !strings.Contains(c.Message, says) {
			t.Fatalf("%s is %+v, want False VerificationError saying %q", typ, c, says)
		}
	}
}

// counted counts the checks of a provider.
type counted struct {
	verify.Provider
	checks atomic.Int32
}

func (c *counted) Verify(ctx context.Context, req verify.Request) (verify.Result, error) {
	c.checks.Add(1)
	return c.Provider.Verify(ctx, req)
}

func TestAVerifiedDigestIsCheckedOnceAndARefusedOneKeepsTheLastArtifact(t *testing.T) {
	t.Parallel()
	const ns = "oci-verify-once"
	reg := imageregistry.New(t, imageregistry.WithBasicAuth(), imageregistry.WithReferrers())
	key, next := signing.NewKey(t), signing.NewKey(t)
	create(t, ns,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: reg.DockerConfigJSON()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: ns}, Data: map[string][]byte{"cosign.pub": key.PublicPEM(t)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rotated", Namespace: ns}, Data: map[string][]byte{"a.pub": next.PublicPEM(t), "b.pub": key.PublicPEM(t)}},
	)
	url := "oci://" + reg.Image("app")
	target := func(digest string) signing.Target { return signing.NewTarget(t, reg.Image("app"), digest, reg.Auth) }
	first := pushArtifact(t, reg, url+":1.0.0")
	key.SignTag(t, target(first))
	repo := signedOCIRepository(ns, "app", url, &sourcev1.OCIRepositoryVerification{Provider: verify.ProviderCosign, SecretRef: &sourcev1.LocalObjectReference{Name: "keys"}})
	if err := cp.Client.Create(t.Context(), repo); err != nil {
		t.Fatal(err)
	}
	cosign := &counted{Provider: verify.New()[verify.ProviderCosign]}
	ev := &eventLog{}
	r := &OCIRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore(), Verifiers: verify.Verifiers{verify.ProviderCosign: cosign}}
	checks := func(t *testing.T, want int32) {
		t.Helper()
		if n := cosign.checks.Load(); n != want {
			t.Fatalf("%d signature checks so far, want %d", n, want)
		}
	}

	got := reconcileOCI(t, r, repo)
	checkVerified(t, r, got, "1.0.0@"+first, "cosign key cosign.pub of Secret keys")
	checks(t, 1)

	// The same digest at the next interval is not checked again.
	got = reconcileOCI(t, r, got)
	checkVerified(t, r, got, "1.0.0@"+first, "cosign key cosign.pub of Secret keys")
	checks(t, 1)

	// An unsigned digest behind the tag is refused; the verified
	// artifact stays, in memory and in status.
	second := pushContent(t, pushRemote(reg), url+":1.0.0", "kind: Secret\n")
	got = reconcileOCI(t, r, got)
	checkRefused(t, got, "the artifact has no cosign signature")
	checks(t, 2)
	if a := got.Status.Artifact; a == nil || a.Revision != "1.0.0@"+first {
		t.Fatalf("artifact %+v, want the verified one kept", a)
	}
	if stored, _ := r.Store.Get(client.ObjectKeyFromObject(got)); stored == nil || stored.Revision != "1.0.0@"+first {
		t.Fatalf("store holds %+v, want the verified artifact kept", stored)
	}
	// A refusal is checked again at every look, and, the same, writes
	// nothing new.
	refusedAt := meta.FindStatusCondition(got.Status.Conditions, sourcev1.SourceVerifiedCondition).LastTransitionTime
	got = reconcileOCI(t, r, got)
	checkRefused(t, got, "the artifact has no cosign signature")
	checks(t, 3)
	if c := meta.FindStatusCondition(got.Status.Conditions, sourcev1.SourceVerifiedCondition); !c.LastTransitionTime.Equal(&refusedAt) {
		t.Fatalf("a repeated refusal moved lastTransitionTime from %s to %s", refusedAt, c.LastTransitionTime)
	}

	// Once signed, the new digest is stored.
	key.SignTag(t, target(second))
	got = reconcileOCI(t, r, got)
	checkVerified(t, r, got, "1.0.0@"+second, "cosign key cosign.pub of Secret keys")
	checks(t, 4)

	// A change of the spec checks the same digest again, with the keys
	// it names now.
	got.Spec.Verify.SecretRef.Name = "rotated"
	if err := cp.Client.Update(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	got = reconcileOCI(t, r, got)
	checkVerified(t, r, got, "1.0.0@"+second, "cosign key b.pub of Secret rotated")
	checks(t, 5)

	// Without spec.verify, the condition goes.
	got.Spec.Verify = nil
	if err := cp.Client.Update(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	got = reconcileOCI(t, r, got)
	if c := meta.FindStatusCondition(got.Status.Conditions, sourcev1.SourceVerifiedCondition); c != nil || !meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") {
		t.Fatalf("SourceVerified %+v, Ready %s; want no SourceVerified and Ready", c, readyOf(got.Status.Conditions))
	}
	checks(t, 5)
}

// pushRemote reaches reg with its credentials.
func pushRemote(reg *imageregistry.Registry) oci.Remote {
	return oci.Remote{Auth: reg.Auth}
}

func TestAHelmChartVerifiesTheSignatureOfAChartFromAnOCIRepository(t *testing.T) {
	t.Parallel()
	const ns = "helmchart-verify"
	registry := helmrepo.NewOCI(t, helmrepo.WithBasicAuth())
	registry.Push(t, appChart("app", "1.0.0"))
	registry.Push(t, appChart("app", "2.0.0"))
	key := signing.NewKey(t)
	signChart(t, registry, key, "app", "1.0.0")
	classic := helmrepo.NewHTTP(t)
	classic.Add(t, appChart("app", "1.0.0"))

	fromOCI := helmRepository(ns, registry.URL)
	fromOCI.Spec.Type, fromOCI.Spec.Insecure = sourcev1.HelmRepositoryTypeOCI, true
	fromOCI.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "registry"}
	plain := helmRepository(ns, classic.URL)
	plain.Name = "plain"
	verifyWith := &sourcev1.HelmChartVerification{Provider: verify.ProviderCosign, SecretRef: &sourcev1.LocalObjectReference{Name: "keys"}}
	signed := helmChart(ns, "signed", "app", "1.x", "HelmRepository", "app")
	unsigned := helmChart(ns, "unsigned", "app", "2.x", "HelmRepository", "app")
	fromHTTP := helmChart(ns, "from-http", "app", "*", "HelmRepository", "plain")
	for _, hc := range []*sourcev1.HelmChart{signed, unsigned, fromHTTP} {
		hc.Spec.Verify = verifyWith.DeepCopy()
	}
	keyless := helmChart(ns, "keyless", "app", "1.x", "HelmRepository", "app")
	keyless.Spec.Verify = &sourcev1.HelmChartVerification{Provider: verify.ProviderCosign, MatchOIDCIdentity: []sourcev1.OIDCIdentityMatch{{Issuer: "^" + testIssuer + "$", Subject: "^" + testSubject + "$"}}}
	create(t, ns,
		secret(ns, "registry", map[string]string{"username": helmrepo.Username, "password": helmrepo.Password}),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: ns}, Data: map[string][]byte{"cosign.pub": key.PublicPEM(t)}},
		fromOCI, plain, signed, unsigned, fromHTTP, keyless)

	tests := []struct {
		name string
		hc   *sourcev1.HelmChart
		// refused is empty when the chart verifies.
		refused string
	}{
		{"a chart signed by a key of spec.verify.secretRef is stored with SourceVerified", signed, ""},
		{"an unsigned chart is refused with VerificationError and not stored", unsigned, "spec.verify: provider cosign: no signature verified"},
		{"a chart from a repository that is not OCI is refused with VerificationError, as in Flux", fromHTTP, "signatures can only be verified for charts from an OCI repository (type oci)"},
		{"a keyless check needs the public Sigstore root, which this machine cannot reach, and says so", keyless, "spec.verify: provider cosign keyless:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			r := &HelmChartReconciler{Client: cp.Client, Events: ev, Fetcher: &helm.Fetcher{}, Charts: NewChartStore(), Sources: NewStore(), Verifiers: verify.New()}
			got, _ := reconcileHelmChart(t, r, tt.hc)
			c := meta.FindStatusCondition(got.Status.Conditions, sourcev1.SourceVerifiedCondition)
			if tt.refused == "" {
				checkLoaded(t, r, got, sourcev1.ReasonChartPullSucceeded, "1.0.0")
				want := "verified signature of version 1.0.0 with cosign key cosign.pub of Secret keys"
				if c == nil || c.Status != metav1.ConditionTrue || c.Reason != sourcev1.ReasonSucceeded || c.Message != want {
					t.Fatalf("SourceVerified is %+v, want True: %s", c, want)
				}
				return
			}
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			t.Logf("Ready: %s", readyOf(got.Status.Conditions))
			for _, cond := range []*metav1.Condition{ready, c} {
				if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != sourcev1.ReasonVerificationError || !strings.Contains(cond.Message, tt.refused) {
					t.Fatalf("condition %+v, want False VerificationError saying %q", cond, tt.refused)
				}
			}
			if _, ok := r.Charts.Get(client.ObjectKeyFromObject(got)); ok || got.Status.Artifact != nil {
				t.Fatalf("a refused chart is stored: %+v", got.Status.Artifact)
			}
			if fmt.Sprint(ev.reasons) != "["+sourcev1.ReasonVerificationError+"]" {
				t.Fatalf("events %v, want one VerificationError", ev.reasons)
			}
		})
	}
}

// signChart signs chart:version of registry, as `cosign sign --key`
// signs a chart `helm push` pushed.
func signChart(t *testing.T, registry *helmrepo.OCIRepo, key *signing.Key, chart, version string) {
	t.Helper()
	auth := &authn.Basic{Username: helmrepo.Username, Password: helmrepo.Password}
	key.SignTag(t, signing.NewTarget(t, registry.Image(chart), registry.ManifestDigest(t, chart, version), auth))
}
