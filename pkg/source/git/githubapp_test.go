package git

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/test/githubapp"
	"sluice.dev/sluice/test/gitserver"
)

func secretData(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func TestAGitHubAppTokenClonesAndIsCachedUntilShortlyBeforeItExpires(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	// Tokens live three seconds longer than the margin before their
	// expiry at which a cached one is replaced.
	gh := githubapp.New(t, s.URL, "sluice", "s3cret", gitHubTokenMargin+3*time.Second)
	app, err := AppInstallationFromSecret(secretData(gh.Secret()))
	if err != nil {
		t.Fatal(err)
	}
	tokens := &InstallationTokens{}
	fetch := func() string {
		t.Helper()
		auth, err := tokens.Auth(t.Context(), app)
		if err != nil {
			t.Fatalf("%v (the stand-in refused: %v)", err, gh.Refused())
		}
		if auth.Username != GitHubAccessTokenUsername {
			t.Fatalf("user %q, want %s", auth.Username, GitHubAccessTokenUsername)
		}
		a, err := Fetch(t.Context(), Options{URL: gh.GitURL, Ref: Ref{Branch: "main"}, Auth: auth})
		if err != nil || a.Revision != "main@sha1:"+head {
			t.Fatalf("got %+v, %v (the stand-in refused: %v)", a, err, gh.Refused())
		}
		return auth.Password
	}
	minted := time.Now()
	first := fetch()
	if second := fetch(); second != first || gh.Minted() != 1 {
		t.Fatalf("%d tokens minted for two fetches, want the first one cached", gh.Minted())
	}
	if elapsed := time.Since(minted); elapsed > 2*time.Second {
		t.Fatalf("two fetches took %s: too slow to tell a cached token", elapsed)
	}
	time.Sleep(3*time.Second - time.Since(minted) + 100*time.Millisecond)
	if third := fetch(); third == first || gh.Minted() != 2 {
		t.Fatalf("%d tokens minted once the first was within %s of its expiry, want a new one", gh.Minted(), gitHubTokenMargin)
	}
}

func TestStoringATokenDropsTheExpiredOnes(t *testing.T) {
	now := time.Now()
	tokens := &InstallationTokens{}
	tokens.store("expired", gitHubToken{token: "a", expiresAt: now.Add(-time.Minute)}, now.Add(-2*time.Hour))
	tokens.store("expiring-now", gitHubToken{token: "b", expiresAt: now}, now.Add(-time.Hour))
	tokens.store("valid", gitHubToken{token: "c", expiresAt: now.Add(time.Hour)}, now.Add(-time.Hour))
	if len(tokens.tokens) != 3 {
		t.Fatalf("%d tokens before any expired, want 3", len(tokens.tokens))
	}
	tokens.store("new", gitHubToken{token: "d", expiresAt: now.Add(time.Hour)}, now)
	var kept []string
	for k := range tokens.tokens {
		kept = append(kept, k)
	}
	slices.Sort(kept)
	if strings.Join(kept, ",") != "new,valid" {
		t.Fatalf("kept %v, want the new and the valid token", kept)
	}
}

func TestAGitHubAppInstallationIsFoundByItsOwner(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	gh := githubapp.New(t, s.URL, "sluice", "s3cret", time.Hour)
	tests := []struct {
		name  string
		owner string
		want  string
	}{
		{"an organization that installed the App", githubapp.Owner, ""},
		{"an owner without the App is neither an organization nor a user", "nobody", "find the installation of GitHub App " + strconv.Itoa(githubapp.AppID) + " on nobody: as an organization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := secretData(gh.Secret())
			delete(data, KeyGitHubAppInstallationID)
			data[KeyGitHubAppInstallationOwner] = []byte(tt.owner)
			app, err := AppInstallationFromSecret(data)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := (&InstallationTokens{}).Auth(t.Context(), app)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "404") {
					t.Fatalf("error %v, want one with %q and GitHub's 404", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Fetch(t.Context(), Options{URL: gh.GitURL, Ref: Ref{Branch: "main"}, Auth: auth}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAGitHubAppKeyGitHubDoesNotKnowIsRefused(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	gh := githubapp.New(t, s.URL, "sluice", "s3cret", time.Hour)
	data := secretData(gh.Secret())
	data[KeyGitHubAppPrivateKey] = rsaKeyPEM(t)
	app, err := AppInstallationFromSecret(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&InstallationTokens{}).Auth(t.Context(), app); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "not signed by the App's key") {
		t.Fatalf("error %v, want GitHub's 401 and its message", err)
	}
}

func TestGitHubAppFromSecretNamesWhatIsMissing(t *testing.T) {
	key := string(rsaKeyPEM(t))
	tests := []struct {
		name string
		data map[string]string
		want string
	}{
		{"no app ID", map[string]string{"githubAppInstallationID": "1", "githubAppPrivateKey": key}, "githubAppID is required"},
		{"an app ID that is no number", map[string]string{"githubAppID": "app", "githubAppInstallationID": "1", "githubAppPrivateKey": key}, `githubAppID "app" is not a number`},
		{"no installation", map[string]string{"githubAppID": "1", "githubAppPrivateKey": key}, "githubAppInstallationID or githubAppInstallationOwner is required"},
		{"both an installation ID and an owner", map[string]string{"githubAppID": "1", "githubAppInstallationID": "1", "githubAppInstallationOwner": "org", "githubAppPrivateKey": key}, "exclude each other"},
		{"no private key", map[string]string{"githubAppID": "1", "githubAppInstallationID": "1"}, "githubAppPrivateKey is required"},
		{"a private key that is not PEM", map[string]string{"githubAppID": "1", "githubAppInstallationID": "1", "githubAppPrivateKey": "nope"}, "githubAppPrivateKey: no PEM block"},
		{"a base URL that is not a URL", map[string]string{"githubAppID": "1", "githubAppInstallationID": "1", "githubAppPrivateKey": key, "githubAppBaseURL": "github.example.com"}, "githubAppBaseURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := AppInstallationFromSecret(secretData(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
	app, err := AppInstallationFromSecret(secretData(map[string]string{"githubAppID": "1", "githubAppInstallationID": "2", "githubAppPrivateKey": key}))
	if err != nil || app.BaseURL != "https://api.github.com" {
		t.Fatalf("got %+v, %v, want github.com's API by default", app, err)
	}
}

func rsaKeyPEM(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
