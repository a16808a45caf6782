package source

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/githubapp"
	"sluice.dev/sluice/test/gitserver"
)

// basicAuth is the test Git server's credentials, as a Secret holds them.
var basicAuth = map[string]string{"username": "sluice", "password": "s3cret"}

// gitRepo is a GitRepository named name in ns on url's main branch, with
// the Secret "git" and checked every minute, as change makes it.
func gitRepo(ns, name, url string, change func(*sourcev1.GitRepositorySpec)) *sourcev1.GitRepository {
	g := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: sourcev1.GitRepositorySpec{
		URL: url, Interval: metav1.Duration{Duration: time.Minute}, Timeout: &metav1.Duration{Duration: 20 * time.Second},
		Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &sourcev1.LocalObjectReference{Name: "git"},
	}}
	if change != nil {
		change(&g.Spec)
	}
	return g
}

// fetchOnce reconciles repo once and returns it as the API server then
// has it, and the result.
func fetchOnce(t *testing.T, r *GitRepositoryReconciler, repo *sourcev1.GitRepository) (*sourcev1.GitRepository, ctrl.Result) {
	t.Helper()
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(repo)})
	if err != nil {
		t.Fatal(err)
	}
	got := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	return got, res
}

// update changes repo's spec on the API server.
func update(t *testing.T, repo *sourcev1.GitRepository, change func(*sourcev1.GitRepositorySpec)) {
	t.Helper()
	got := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	before := got.DeepCopy()
	change(&got.Spec)
	if err := cp.Client.Patch(t.Context(), got, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// createAll creates objs, in a namespace that exists.
func createAll(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func condition(g *sourcev1.GitRepository, kind string) *metav1.Condition {
	return meta.FindStatusCondition(g.Status.Conditions, kind)
}

func TestTheAPIServerRefusesGitRepositorySpecsSluiceCannotServe(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-cel"
	create(t, ns)
	url := "https://github.com/stefanprodan/podinfo"
	tests := []struct {
		name string
		repo *sourcev1.GitRepository
		err  string
	}{
		{"provider azure", gitRepo(ns, "azure", url, func(s *sourcev1.GitRepositorySpec) { s.Provider = sourcev1.GitProviderAzure }), "spec.provider azure and aws are not supported: cloud identities are out of scope"},
		{"provider aws", gitRepo(ns, "aws", url, func(s *sourcev1.GitRepositorySpec) { s.Provider = sourcev1.GitProviderAWS }), "spec.provider azure and aws are not supported"},
		{"a workload identity", gitRepo(ns, "identity", url, func(s *sourcev1.GitRepositorySpec) { s.ServiceAccountName = "git-reader" }), "spec.serviceAccountName is not supported: cloud identities are out of scope"},
		{"provider github without secretRef", gitRepo(ns, "github", url, func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.SecretRef = sourcev1.GitProviderGitHub, nil
		}), "spec.provider github needs spec.secretRef"},
		{"provider github over ssh", gitRepo(ns, "github-ssh", "ssh://git@github.com/stefanprodan/podinfo", func(s *sourcev1.GitRepositorySpec) {
			s.Provider = sourcev1.GitProviderGitHub
		}), "spec.provider github needs an https spec.url"},
		{"verify mode Tag on a branch", gitRepo(ns, "tag-on-branch", url, func(s *sourcev1.GitRepositorySpec) {
			s.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitTag, SecretRef: sourcev1.LocalObjectReference{Name: "keys"}}
		}), "spec.verify.mode Tag and TagAndHEAD need spec.ref.tag"},
		{"verify mode TagAndHEAD on a commit", gitRepo(ns, "tag-on-commit", url, func(s *sourcev1.GitRepositorySpec) {
			s.Reference = &sourcev1.GitRepositoryRef{Tag: "v1.0.0", Commit: strings.Repeat("a", 40)}
			s.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitTagAndHEAD, SecretRef: sourcev1.LocalObjectReference{Name: "keys"}}
		}), "and no spec.ref.commit"},
		{"a verify mode Flux does not have", gitRepo(ns, "bad-mode", url, func(s *sourcev1.GitRepositorySpec) {
			s.Verification = &sourcev1.GitRepositoryVerification{Mode: "Commit", SecretRef: sourcev1.LocalObjectReference{Name: "keys"}}
		}), "spec.verify.mode"},
		{"an include of itself", gitRepo(ns, "self", url, func(s *sourcev1.GitRepositorySpec) {
			s.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "self"}}}
		}), "spec.include may not name the GitRepository itself"},
		{"a commit that is no full hash", gitRepo(ns, "short-commit", url, func(s *sourcev1.GitRepositorySpec) {
			s.Reference = &sourcev1.GitRepositoryRef{Commit: "abc123"}
		}), "spec.ref.commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, naming the field", func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.repo)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			}
		})
	}
	t.Run("Flux's examples are taken, with Flux's defaults", func(t *testing.T) {
		for _, g := range []*sourcev1.GitRepository{
			gitRepo(ns, "sha1", url, func(s *sourcev1.GitRepositorySpec) {
				s.Reference = &sourcev1.GitRepositoryRef{Commit: strings.Repeat("a", 40)}
			}),
			gitRepo(ns, "sha256", url, func(s *sourcev1.GitRepositorySpec) {
				s.Reference = &sourcev1.GitRepositoryRef{Commit: strings.Repeat("b", 64)}
			}),
			gitRepo(ns, "github-app", url, func(s *sourcev1.GitRepositorySpec) { s.Provider = sourcev1.GitProviderGitHub }),
			gitRepo(ns, "verify-default", url, func(s *sourcev1.GitRepositorySpec) {
				s.Verification = &sourcev1.GitRepositoryVerification{SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
			}),
			gitRepo(ns, "verify-legacy-head", url, func(s *sourcev1.GitRepositorySpec) {
				s.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitHEADLegacy, SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
			}),
			gitRepo(ns, "verify-semver-tag", url, func(s *sourcev1.GitRepositorySpec) {
				s.Reference = &sourcev1.GitRepositoryRef{SemVer: "6.x"}
				s.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitTagAndHEAD, SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
			}),
			gitRepo(ns, "include-example", url, func(s *sourcev1.GitRepositorySpec) {
				s.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "other-repository"}, FromPath: "deploy/kubernetes", ToPath: "base/app"}}
				s.RecurseSubmodules = true
				s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "http-proxy"}
			}),
		} {
			if err := cp.Client.Create(t.Context(), g); err != nil {
				t.Fatalf("a good GitRepository %s is refused: %v", g.Name, err)
			}
			if g.Name == "verify-default" && g.Spec.Verification.Mode != sourcev1.ModeGitHEAD {
				t.Fatalf("verify mode %q, want the default HEAD", g.Spec.Verification.Mode)
			}
		}
	})
}

func TestAGitRepositoryReachesItsServerAsTheSpecSays(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-ways"
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"app.yaml": "kind: ConfigMap\n"})
	private, mutual := s.ServeTLS(false), s.ServeTLS(true)
	proxy, forwarded := forwardProxy(t, "proxy-user", "proxy-pass")
	app := githubapp.New(t, s.URL, "sluice", "s3cret", time.Hour)
	withAuth := func(extra map[string]string) map[string]string {
		data := map[string]string{"username": "sluice", "password": "s3cret"}
		for k, v := range extra {
			data[k] = v
		}
		return data
	}
	create(t, ns,
		secret(ns, "git", basicAuth),
		secret(ns, "private-ca", withAuth(map[string]string{"ca.crt": string(private.CA)})),
		secret(ns, "legacy-ca", withAuth(map[string]string{"caFile": string(private.CA)})),
		secret(ns, "mtls", withAuth(map[string]string{"ca.crt": string(mutual.CA), "tls.crt": string(mutual.ClientCert), "tls.key": string(mutual.ClientKey)})),
		secret(ns, "proxy", map[string]string{"address": proxy, "username": "proxy-user", "password": "proxy-pass"}),
		secret(ns, "github-app", app.Secret()))
	tests := []struct {
		name  string
		repo  *sourcev1.GitRepository
		check func(t *testing.T)
	}{
		{"secretRef's ca.crt makes a private CA trusted over HTTPS", gitRepo(ns, "private-ca", private.URL, func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef.Name = "private-ca"
		}), nil},
		{"secretRef's legacy caFile does the same", gitRepo(ns, "legacy-ca", private.URL, func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef.Name = "legacy-ca"
		}), nil},
		{"secretRef's tls.crt and tls.key are the client certificate the server asks for", gitRepo(ns, "mtls", mutual.URL, func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef.Name = "mtls"
		}), nil},
		{"proxySecretRef's address and credentials carry the requests", gitRepo(ns, "proxy", s.URL, func(s *sourcev1.GitRepositorySpec) {
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "proxy"}
		}), func(t *testing.T) {
			if forwarded.Load() < 3 {
				t.Fatalf("the proxy forwarded %d requests, want the ls-remote's and the clone's", forwarded.Load())
			}
		}},
		{"provider github clones with an installation token of the App in secretRef", gitRepo(ns, "github-app", app.GitURL, func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.SecretRef.Name = sourcev1.GitProviderGitHub, "github-app"
		}), func(t *testing.T) {
			if app.Minted() != 1 {
				t.Fatalf("%d installation tokens minted, want 1 (refused: %v)", app.Minted(), app.Refused())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := cp.Client.Create(t.Context(), tt.repo); err != nil {
				t.Fatal(err)
			}
			r := &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
			got, _ := fetchOnce(t, r, tt.repo)
			if got.Status.Artifact == nil || got.Status.Artifact.Revision != "main@sha1:"+head {
				t.Fatalf("Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	t.Run("provider github keeps the token for the next fetches", func(t *testing.T) {
		repo := gitRepo(ns, "github-app-again", app.GitURL, func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.SecretRef.Name = sourcev1.GitProviderGitHub, "github-app"
		})
		if err := cp.Client.Create(t.Context(), repo); err != nil {
			t.Fatal(err)
		}
		r := &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
		before := app.Minted()
		fetchOnce(t, r, repo)
		next := s.Commit(map[string]string{"app.yaml": "kind: Secret\n"})
		got, _ := fetchOnce(t, r, repo)
		if got.Status.Artifact.Revision != "main@sha1:"+next || app.Minted() != before+1 {
			t.Fatalf("revision %s with %d tokens minted for two fetches, want the new commit with one token", got.Status.Artifact.Revision, app.Minted()-before)
		}
	})
}

func TestAGitRepositoryThatCannotReachItsServerSaysWhy(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-bad"
	s := gitserver.New(t)
	s.Commit(map[string]string{"app.yaml": "kind: ConfigMap\n"})
	mutual := s.ServeTLS(true)
	app := githubapp.New(t, s.URL, "sluice", "s3cret", time.Hour)
	strangerKey := githubapp.New(t, s.URL, "sluice", "s3cret", time.Hour).PrivateKey
	unknownKey := app.Secret()
	unknownKey["githubAppPrivateKey"] = string(strangerKey)
	create(t, ns,
		secret(ns, "git", basicAuth),
		secret(ns, "no-address", map[string]string{"username": "proxy-user"}),
		secret(ns, "bare-proxy", map[string]string{"address": "proxy-user:proxy-pass@proxy:3128"}),
		secret(ns, "half-cert", map[string]string{"ca.crt": string(mutual.CA), "tls.crt": string(mutual.ClientCert)}),
		secret(ns, "github-app", app.Secret()),
		secret(ns, "unknown-key", unknownKey))
	tests := []struct {
		name    string
		repo    *sourcev1.GitRepository
		reason  string
		says    []string
		stalled bool
	}{
		{"a proxySecretRef without an address", gitRepo(ns, "no-address", s.URL, func(s *sourcev1.GitRepositorySpec) {
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "no-address"}
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.proxySecretRef: Secret no-address: holds no address"}, false},
		{"a proxySecretRef whose address has no scheme", gitRepo(ns, "bare-proxy", s.URL, func(s *sourcev1.GitRepositorySpec) {
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "bare-proxy"}
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.proxySecretRef: Secret bare-proxy: address is not a URL with a scheme and a host"}, false},
		{"a proxySecretRef that does not exist", gitRepo(ns, "no-proxy", s.URL, func(s *sourcev1.GitRepositorySpec) {
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "nope"}
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.proxySecretRef: Secret nope", "not found"}, false},
		{"a tls.crt without tls.key", gitRepo(ns, "half-cert", mutual.URL, func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef.Name = "half-cert"
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef: Secret half-cert: secret key tls.key is required with tls.crt"}, false},
		{"provider github with a Secret that holds no App", gitRepo(ns, "github-no-app", app.GitURL, func(s *sourcev1.GitRepositorySpec) {
			s.Provider = sourcev1.GitProviderGitHub
		}), sourcev1.ReasonInvalidProviderConfiguration, []string{`spec.provider github: the Secret "git" of spec.secretRef holds no githubAppID`}, false},
		{"an App's keys without provider github", gitRepo(ns, "app-not-github", app.GitURL, func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef.Name = "github-app"
		}), sourcev1.ReasonInvalidProviderConfiguration, []string{"spec.secretRef: Secret github-app holds a GitHub App's keys and spec.provider is not github"}, false},
		{"an App key GitHub refuses", gitRepo(ns, "unknown-key", app.GitURL, func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.SecretRef.Name = sourcev1.GitProviderGitHub, "unknown-key"
		}), sourcev1.ReasonAuthenticationFailed, []string{"spec.provider github: create an installation token of GitHub App", "401 Unauthorized"}, false},
		{"a SHA-256 commit", gitRepo(ns, "sha256", s.URL, func(s *sourcev1.GitRepositorySpec) {
			s.Reference = &sourcev1.GitRepositoryRef{Commit: strings.Repeat("c", 64)}
		}), sourcev1.ReasonGitOperationFailed, []string{"spec.ref.commit", "SHA-256 repositories are not supported"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is "+tt.reason, func(t *testing.T) {
			if err := cp.Client.Create(t.Context(), tt.repo); err != nil {
				t.Fatal(err)
			}
			ev := &eventLog{}
			r := &GitRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}
			got, res := fetchOnce(t, r, tt.repo)
			ready := condition(got, "Ready")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tt.reason {
				t.Fatalf("Ready %+v, want %s", ready, tt.reason)
			}
			for _, says := range tt.says {
				if !strings.Contains(ready.Message, says) {
					t.Fatalf("Ready message %q does not say %q", ready.Message, says)
				}
			}
			if strings.Contains(ready.Message, "proxy-pass") {
				t.Fatalf("Ready message %q shows the proxy's password", ready.Message)
			}
			if stalled := meta.IsStatusConditionTrue(got.Status.Conditions, "Stalled"); stalled != tt.stalled || (stalled && res.RequeueAfter != 0) {
				t.Fatalf("Stalled %v with requeue %s, want stalled %v", stalled, res.RequeueAfter, tt.stalled)
			}
			if events := ev.all(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning "+tt.reason+": ") || !strings.Contains(events[0], tt.says[0]) {
				t.Fatalf("events %q, want one Warning %s naming %q", events, tt.reason, tt.says[0])
			}
			if _, ok := r.Store.Get(client.ObjectKeyFromObject(tt.repo)); ok || got.Status.Artifact != nil {
				t.Fatal("a failed fetch made an artifact")
			}
		})
	}
}

// publicKeyRing is e's armored public key ring.
func publicKeyRing(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestAGitRepositoryVerifiesSignaturesBeforeItMakesAnArtifact(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-verify"
	trusted, err := openpgp.NewEntity("trusted", "", "trusted@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := openpgp.NewEntity("stranger", "", "stranger@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	create(t, ns, secret(ns, "git", basicAuth), secret(ns, "pgp-public-keys", map[string]string{"author.asc": publicKeyRing(t, trusted)}))

	t.Run("HEAD: a trusted commit is stored, an unsigned or a stranger's one is not", func(t *testing.T) {
		s := gitserver.New(t)
		signed := s.CommitSignedPGP(trusted, map[string]string{"app.yaml": "v: 1\n"})
		// Flux's deprecated spelling of HEAD.
		repo := gitRepo(ns, "head", s.URL, func(spec *sourcev1.GitRepositorySpec) {
			spec.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitHEADLegacy, SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
		})
		createAll(t, repo)
		ev := &eventLog{}
		r := &GitRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}
		got, _ := fetchOnce(t, r, repo)
		verified := condition(got, sourcev1.SourceVerifiedCondition)
		if got.Status.Artifact == nil || got.Status.Artifact.Revision != "main@sha1:"+signed || verified == nil || verified.Status != metav1.ConditionTrue ||
			verified.Reason != sourcev1.ReasonSucceeded || !strings.Contains(verified.Message, trusted.PrimaryKey.KeyIdString()) {
			t.Fatalf("artifact %+v, SourceVerified %+v (Ready %s)", got.Status.Artifact, verified, readyOf(got.Status.Conditions))
		}
		if mode := got.Status.SourceVerificationMode; mode == nil || *mode != sourcev1.ModeGitHEAD {
			t.Fatalf("sourceVerificationMode %v, want HEAD", mode)
		}
		for _, push := range []struct {
			name string
			push func() string
		}{
			{"an unsigned commit", func() string { return s.Commit(map[string]string{"app.yaml": "v: 2\n"}) }},
			{"a stranger's commit", func() string { return s.CommitSignedPGP(stranger, map[string]string{"app.yaml": "v: 3\n"}) }},
		} {
			commit := push.push()
			got, _ = fetchOnce(t, r, repo)
			ready, verified := condition(got, "Ready"), condition(got, sourcev1.SourceVerifiedCondition)
			if ready.Status != metav1.ConditionFalse || ready.Reason != sourcev1.ReasonInvalidCommitSignature || !strings.Contains(ready.Message, commit) {
				t.Fatalf("%s: Ready %+v, want InvalidCommitSignature naming %s", push.name, ready, commit)
			}
			if verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.ReasonInvalidCommitSignature {
				t.Fatalf("%s: SourceVerified %+v", push.name, verified)
			}
			stored, _ := r.Store.Get(client.ObjectKeyFromObject(repo))
			if got.Status.Artifact.Revision != "main@sha1:"+signed || stored.Revision != "main@sha1:"+signed || string(stored.Files["app.yaml"]) != "v: 1\n" {
				t.Fatalf("%s: artifact %s in status and %s in memory, want the trusted one kept", push.name, got.Status.Artifact.Revision, stored.Revision)
			}
			if events := ev.all(); !strings.HasPrefix(events[len(events)-1], "Warning InvalidCommitSignature: spec.verify") {
				t.Fatalf("%s: events %q", push.name, events)
			}
		}
	})

	t.Run("Tag: a tag signed by a trusted key is verified", func(t *testing.T) {
		s := gitserver.New(t)
		commit := s.Commit(map[string]string{"app.yaml": "v: 1\n"})
		s.TagSignedPGP("v1.0.0", trusted)
		repo := gitRepo(ns, "tag", s.URL, func(spec *sourcev1.GitRepositorySpec) {
			spec.Reference = &sourcev1.GitRepositoryRef{SemVer: "1.x"}
			spec.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitTag, SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
		})
		createAll(t, repo)
		got, _ := fetchOnce(t, &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}, repo)
		verified := condition(got, sourcev1.SourceVerifiedCondition)
		if got.Status.Artifact == nil || got.Status.Artifact.Revision != "v1.0.0@sha1:"+commit || verified == nil || verified.Status != metav1.ConditionTrue || !strings.Contains(verified.Message, "tag 'v1.0.0'") {
			t.Fatalf("artifact %+v, SourceVerified %+v (Ready %s)", got.Status.Artifact, verified, readyOf(got.Status.Conditions))
		}
		if mode := got.Status.SourceVerificationMode; mode == nil || *mode != sourcev1.ModeGitTag {
			t.Fatalf("sourceVerificationMode %v, want Tag", mode)
		}
	})

	t.Run("Tag: a stranger's tag and an unsigned one are refused with Flux's reasons", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			tag    func(s *gitserver.Server)
			reason string
		}{
			{"tag-stranger", func(s *gitserver.Server) { s.TagSignedPGP("v1.0.0", stranger) }, sourcev1.ReasonInvalidTagSignature},
			{"tag-unsigned", func(s *gitserver.Server) { s.Tag("v1.0.0", true) }, sourcev1.ReasonInvalidGitObject},
			{"tag-lightweight", func(s *gitserver.Server) { s.Tag("v1.0.0", false) }, sourcev1.ReasonInvalidGitObject},
		} {
			s := gitserver.New(t)
			s.CommitSignedPGP(trusted, map[string]string{"app.yaml": "v: 1\n"})
			tt.tag(s)
			repo := gitRepo(ns, tt.name, s.URL, func(spec *sourcev1.GitRepositorySpec) {
				spec.Reference = &sourcev1.GitRepositoryRef{Tag: "v1.0.0"}
				spec.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitTagAndHEAD, SecretRef: sourcev1.LocalObjectReference{Name: "pgp-public-keys"}}
			})
			createAll(t, repo)
			ev := &eventLog{}
			got, _ := fetchOnce(t, &GitRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}, repo)
			ready, verified := condition(got, "Ready"), condition(got, sourcev1.SourceVerifiedCondition)
			if ready.Reason != tt.reason || verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != tt.reason || got.Status.Artifact != nil {
				t.Fatalf("%s: Ready %+v, SourceVerified %+v, artifact %+v, want %s", tt.name, ready, verified, got.Status.Artifact, tt.reason)
			}
			if events := ev.all(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning "+tt.reason+": spec.verify") {
				t.Fatalf("%s: events %q", tt.name, events)
			}
		}
	})

	t.Run("SourceVerified stays as it is while a refusal repeats, and is True again on the verified revision", func(t *testing.T) {
		s := gitserver.New(t)
		signed := s.CommitSignedPGP(trusted, map[string]string{"app.yaml": "v: 1\n"})
		keys := secret(ns, "flip-keys", map[string]string{"author.asc": publicKeyRing(t, trusted)})
		repo := gitRepo(ns, "flip", s.URL, func(spec *sourcev1.GitRepositorySpec) {
			spec.Verification = &sourcev1.GitRepositoryVerification{SecretRef: sourcev1.LocalObjectReference{Name: "flip-keys"}}
		})
		createAll(t, keys, repo)
		r := &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
		setKeys := func(data map[string][]byte) {
			t.Helper()
			got := &corev1.Secret{}
			if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(keys), got); err != nil {
				t.Fatal(err)
			}
			got.Data = data
			if err := cp.Client.Update(t.Context(), got); err != nil {
				t.Fatal(err)
			}
		}
		verifiedTrue := func(g *sourcev1.GitRepository) bool {
			c := condition(g, sourcev1.SourceVerifiedCondition)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == sourcev1.ReasonSucceeded && strings.Contains(c.Message, trusted.PrimaryKey.KeyIdString())
		}
		got, _ := fetchOnce(t, r, repo)
		if got.Status.Artifact == nil || got.Status.Artifact.Revision != "main@sha1:"+signed || !verifiedTrue(got) {
			t.Fatalf("first fetch: artifact %+v, SourceVerified %+v", got.Status.Artifact, condition(got, sourcev1.SourceVerifiedCondition))
		}
		if got, _ = fetchOnce(t, r, repo); !verifiedTrue(got) {
			t.Fatalf("unchanged revision: SourceVerified %+v, want it kept True", condition(got, sourcev1.SourceVerifiedCondition))
		}

		// The keys go: the revision cannot be verified.
		setKeys(map[string][]byte{"README": []byte("no keys")})
		refused, _ := fetchOnce(t, r, repo)
		verified := condition(refused, sourcev1.SourceVerifiedCondition)
		if verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.ReasonVerificationError {
			t.Fatalf("without keys: SourceVerified %+v", verified)
		}
		// A second refusal a second later changes nothing: no status
		// write, the same transition time.
		time.Sleep(1100 * time.Millisecond)
		again, _ := fetchOnce(t, r, repo)
		if again.ResourceVersion != refused.ResourceVersion || !condition(again, sourcev1.SourceVerifiedCondition).LastTransitionTime.Equal(&verified.LastTransitionTime) {
			t.Fatalf("the same refusal wrote the status again: resourceVersion %s then %s, SourceVerified %+v then %+v",
				refused.ResourceVersion, again.ResourceVersion, verified, condition(again, sourcev1.SourceVerifiedCondition))
		}

		// The keys are back: the stored revision, unchanged, is verified.
		setKeys(map[string][]byte{"author.asc": []byte(publicKeyRing(t, trusted))})
		got, _ = fetchOnce(t, r, repo)
		if !verifiedTrue(got) || condition(got, "Ready").Status != metav1.ConditionTrue || got.Status.Artifact.Revision != "main@sha1:"+signed {
			t.Fatalf("keys back: SourceVerified %+v, Ready %s", condition(got, sourcev1.SourceVerifiedCondition), readyOf(got.Status.Conditions))
		}
	})

	t.Run("a verify Secret without keys is VerificationError", func(t *testing.T) {
		s := gitserver.New(t)
		s.CommitSignedPGP(trusted, map[string]string{"app.yaml": "v: 1\n"})
		repo := gitRepo(ns, "no-keys", s.URL, func(spec *sourcev1.GitRepositorySpec) {
			spec.Verification = &sourcev1.GitRepositoryVerification{SecretRef: sourcev1.LocalObjectReference{Name: "git"}}
		})
		createAll(t, repo)
		got, _ := fetchOnce(t, &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}, repo)
		ready, verified := condition(got, "Ready"), condition(got, sourcev1.SourceVerifiedCondition)
		if ready.Reason != sourcev1.ReasonVerificationError || !strings.Contains(ready.Message, "spec.verify.secretRef: Secret git holds no public key") ||
			verified == nil || verified.Status != metav1.ConditionFalse || got.Status.Artifact != nil {
			t.Fatalf("Ready %+v, SourceVerified %+v, artifact %+v", ready, verified, got.Status.Artifact)
		}
	})
}

func TestAContentSettingChangeMakesANewArtifactAtTheSameRevision(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-content"
	lib := gitserver.New(t)
	lib.Commit(map[string]string{"lib.yaml": "lib: 1\n"})
	s := gitserver.New(t)
	s.Commit(map[string]string{"deploy/app.yaml": "app: 1\n", "docs/notes.md": "notes\n"})
	head := s.AddSubmodule(lib.URL, "vendor/lib")
	create(t, ns, secret(ns, "git", basicAuth))
	repo := gitRepo(ns, "app", s.URL, nil)
	createAll(t, repo)
	r := &GitRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
	got, _ := fetchOnce(t, r, repo)
	files := func() []string {
		stored, _ := r.Store.Get(client.ObjectKeyFromObject(repo))
		return slices.Sorted(func(yield func(string) bool) {
			for k := range stored.Files {
				if !yield(k) {
					return
				}
			}
		})
	}
	if got.Status.Artifact == nil || strings.Join(files(), ",") != "deploy/app.yaml,docs/notes.md" {
		t.Fatalf("first artifact %+v with %v", got.Status.Artifact, files())
	}
	tests := []struct {
		name   string
		change func(*sourcev1.GitRepositorySpec)
		files  string
		check  func(g *sourcev1.GitRepository) bool
	}{
		{"recurseSubmodules adds the submodule's files", func(s *sourcev1.GitRepositorySpec) { s.RecurseSubmodules = true },
			"deploy/app.yaml,docs/notes.md,vendor/lib/lib.yaml", func(g *sourcev1.GitRepository) bool { return g.Status.ObservedRecurseSubmodules }},
		{"ignore leaves files out", func(s *sourcev1.GitRepositorySpec) { s.Ignore = ptr.To("*.md\n") },
			"deploy/app.yaml,vendor/lib/lib.yaml", func(g *sourcev1.GitRepository) bool { return ptr.Deref(g.Status.ObservedIgnore, "") == "*.md\n" }},
		{"sparseCheckout keeps its folders", func(s *sourcev1.GitRepositorySpec) { s.SparseCheckout = []string{"deploy"} },
			"deploy/app.yaml", func(g *sourcev1.GitRepository) bool {
				return slices.Equal(g.Status.ObservedSparseCheckout, []string{"deploy"})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := got.Status.Artifact.Digest
			update(t, repo, tt.change)
			got, _ = fetchOnce(t, r, repo)
			if got.Status.Artifact.Revision != "main@sha1:"+head || got.Status.Artifact.Digest == before || strings.Join(files(), ",") != tt.files || !tt.check(got) {
				t.Fatalf("artifact %+v with %v, status %+v; want the same revision with %s", got.Status.Artifact, files(), got.Status, tt.files)
			}
		})
	}
	t.Run("a change of another field fetches nothing", func(t *testing.T) {
		fetches := s.Fetches()
		update(t, repo, func(s *sourcev1.GitRepositorySpec) { s.Timeout = &metav1.Duration{Duration: 30 * time.Second} })
		got, _ = fetchOnce(t, r, repo)
		if n := s.Fetches(); n != fetches || condition(got, "Ready").Status != metav1.ConditionTrue {
			t.Fatalf("%d upload-packs after a timeout change, want none (Ready %s)", n-fetches, readyOf(got.Status.Conditions))
		}
	})
}

func TestAGitRepositoryIncludesTheArtifactsOfOthers(t *testing.T) {
	t.Parallel()
	const ns = "gitrepo-include"
	libServer, appServer := gitserver.New(t), gitserver.New(t)
	libServer.Commit(map[string]string{"deploy/kubernetes/lib.yaml": "lib: 1\n", "README.md": "lib\n"})
	head := appServer.Commit(map[string]string{"app.yaml": "app: 1\n"})
	create(t, ns, secret(ns, "git", basicAuth))
	lib := gitRepo(ns, "lib", libServer.URL, nil)
	app := gitRepo(ns, "app", appServer.URL, func(s *sourcev1.GitRepositorySpec) {
		s.Include = []sourcev1.GitRepositoryInclude{
			{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "lib"}, FromPath: "deploy/kubernetes", ToPath: "base/lib"},
			{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "lib"}},
		}
	})
	createAll(t, app)
	ev := &eventLog{}
	r := &GitRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}

	// 1. An include that does not exist yet, and one with no artifact.
	got, _ := fetchOnce(t, r, app)
	if ready, unavailable := condition(got, "Ready"), condition(got, sourcev1.IncludeUnavailableCondition); ready.Reason != sourcev1.ReasonIncludeNotFound ||
		unavailable == nil || unavailable.Status != metav1.ConditionTrue || !strings.Contains(unavailable.Message, "spec.include[0]: GitRepository lib") {
		t.Fatalf("Ready %+v, IncludeUnavailable %+v", ready, unavailable)
	}
	createAll(t, lib)
	// The include's first artifact may reach the Store without a status
	// change (after a restart), which no watch sees: the includer comes
	// back soon rather than at its interval.
	got, res := fetchOnce(t, r, app)
	if condition(got, "Ready").Reason != sourcev1.ReasonIncludeNoArtifact || res.RequeueAfter != sourceWait {
		t.Fatalf("Ready %s, back after %s; want NoArtifact, back after %s", readyOf(got.Status.Conditions), res.RequeueAfter, sourceWait)
	}
	if events := ev.all(); len(events) != 2 || !strings.HasPrefix(events[0], "Warning NotFound: spec.include[0]") || !strings.HasPrefix(events[1], "Warning NoArtifact: spec.include[0]: GitRepository lib has no artifact yet") {
		t.Fatalf("events %q", events)
	}

	// 2. Once it has one, its files are copied in, and the revision is
	// the includer's.
	libGot, _ := fetchOnce(t, r, lib)
	got, res = fetchOnce(t, r, app)
	if res.RequeueAfter != app.Spec.Interval.Duration {
		t.Fatalf("back after %s once the include has an artifact, want the interval %s", res.RequeueAfter, app.Spec.Interval.Duration)
	}
	stored, _ := r.Store.Get(client.ObjectKeyFromObject(app))
	want := map[string]string{"app.yaml": "app: 1\n", "base/lib/lib.yaml": "lib: 1\n", "lib/deploy/kubernetes/lib.yaml": "lib: 1\n", "lib/README.md": "lib\n"}
	if len(stored.Files) != len(want) || got.Status.Artifact.Revision != "main@sha1:"+head || condition(got, sourcev1.IncludeUnavailableCondition) != nil {
		t.Fatalf("artifact %+v with %d files, want %v (Ready %s)", got.Status.Artifact, len(stored.Files), want, readyOf(got.Status.Conditions))
	}
	for name, content := range want {
		if string(stored.Files[name]) != content {
			t.Fatalf("%s is %q, want %q", name, stored.Files[name], content)
		}
	}
	if inc := got.Status.IncludedArtifacts; len(inc) != 2 || inc[0].Revision != libGot.Status.Artifact.Revision || inc[0].Digest != libGot.Status.Artifact.Digest ||
		!slices.Equal(got.Status.ObservedInclude, app.Spec.Include) {
		t.Fatalf("includedArtifacts %+v, observedInclude %+v", inc, got.Status.ObservedInclude)
	}

	// 3. A new commit of the include makes a new artifact at the same
	// revision.
	before := got.Status.Artifact.Digest
	libServer.Commit(map[string]string{"deploy/kubernetes/lib.yaml": "lib: 2\n"})
	fetchOnce(t, r, lib)
	got, _ = fetchOnce(t, r, app)
	stored, _ = r.Store.Get(client.ObjectKeyFromObject(app))
	if got.Status.Artifact.Revision != "main@sha1:"+head || got.Status.Artifact.Digest == before || string(stored.Files["base/lib/lib.yaml"]) != "lib: 2\n" {
		t.Fatalf("after the include moved: artifact %+v with base/lib/lib.yaml %q", got.Status.Artifact, stored.Files["base/lib/lib.yaml"])
	}

	// 4. A fromPath the include does not hold.
	update(t, app, func(s *sourcev1.GitRepositorySpec) { s.Include[0].FromPath = "nope" })
	if got, _ = fetchOnce(t, r, app); condition(got, "Ready").Reason != sourcev1.ReasonCopyFailure || !strings.Contains(condition(got, "Ready").Message, `spec.include[0]: fromPath "nope" is not in the artifact of GitRepository lib`) {
		t.Fatalf("Ready %s, want CopyFailure", readyOf(got.Status.Conditions))
	}

	// 5. Includes that lead back to the includer.
	update(t, lib, func(s *sourcev1.GitRepositorySpec) {
		s.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: sourcev1.LocalObjectReference{Name: "app"}}}
	})
	got, _ = fetchOnce(t, r, app)
	if ready := condition(got, "Ready"); ready.Reason != sourcev1.ReasonIncludeCycle || !strings.Contains(ready.Message, "app includes lib includes app") {
		t.Fatalf("Ready %+v, want IncludeCycle", ready)
	}
}

// ControlPlane is the API server of this package's tests, for its
// external tests, which run the whole operator against it.
func ControlPlane() *controlplane.ControlPlane { return cp }
