package receiver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the generic-hmac receiver accepts SHA-1 signatures.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"testing"
)

func sign(newHash func() hash.Hash, key, body string) string {
	mac := hmac.New(newHash, []byte(key))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	const token, body = "s3cret", `{"ref":"refs/heads/main"}`
	good256 := "sha256=" + sign(sha256.New, token, body)
	tests := []struct {
		name    string
		typ     string
		events  []string
		headers map[string]string
		trigger bool
		unauth  bool
		bad     bool
	}{
		{"a generic receiver trusts its secret path", "generic", nil, nil, true, false, false},
		{"a GitHub push signed with the token triggers", "github", nil, map[string]string{"X-Hub-Signature-256": good256, "X-GitHub-Event": "push"}, true, false, false},
		{"a GitHub push of a listed event triggers", "github", []string{"push"}, map[string]string{"X-Hub-Signature-256": good256, "X-GitHub-Event": "push"}, true, false, false},
		{"a GitHub event not listed is answered and ignored", "github", []string{"push"}, map[string]string{"X-Hub-Signature-256": good256, "X-GitHub-Event": "issues"}, false, false, false},
		{"a GitHub ping is answered and ignored", "github", nil, map[string]string{"X-Hub-Signature-256": good256, "X-GitHub-Event": "ping"}, false, false, false},
		{"a GitHub call signed with another key is refused", "github", nil, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(sha256.New, "forged", body), "X-GitHub-Event": "push"}, false, true, false},
		{"a GitHub call with no signature is refused", "github", nil, map[string]string{"X-GitHub-Event": "push"}, false, true, false},
		{"a GitHub call with only the SHA-1 signature is refused", "github", nil, map[string]string{"X-Hub-Signature-256": "sha1=" + sign(sha1.New, token, body)}, false, true, false},
		{"a GitHub signature that is not hex is refused", "github", nil, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, false, true, false},
		{"a GitLab call with the token triggers", "gitlab", nil, map[string]string{"X-Gitlab-Token": token, "X-Gitlab-Event": "Push Hook"}, true, false, false},
		{"a GitLab event not listed is ignored", "gitlab", []string{"Tag Push Hook"}, map[string]string{"X-Gitlab-Token": token, "X-Gitlab-Event": "Push Hook"}, false, false, false},
		{"a GitLab call with another token is refused", "gitlab", nil, map[string]string{"X-Gitlab-Token": "forged"}, false, true, false},
		{"a generic HMAC call signed with SHA-256 triggers", "generic-hmac", nil, map[string]string{"X-Signature": good256}, true, false, false},
		{"a generic HMAC call signed with SHA-512 triggers", "generic-hmac", nil, map[string]string{"X-Signature": "sha512=" + sign(sha512.New, token, body)}, true, false, false},
		{"a generic HMAC call signed with SHA-1 triggers", "generic-hmac", nil, map[string]string{"X-Signature": "sha1=" + sign(sha1.New, token, body)}, true, false, false},
		{"a generic HMAC call with an unknown algorithm is refused", "generic-hmac", nil, map[string]string{"X-Signature": "md5=00"}, false, true, false},
		{"a generic HMAC call with no signature is refused", "generic-hmac", nil, nil, false, true, false},
		{"an unknown receiver type is a bad call, not a forged one", "bitbucket", nil, nil, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			v, err := Verify(tt.typ, []byte(token), tt.events, h, []byte(body))
			if got := errors.Is(err, ErrUnauthorized); got != tt.unauth {
				t.Fatalf("unauthorized %v (%v), want %v", got, err, tt.unauth)
			}
			if got := err != nil && !tt.unauth; got != tt.bad {
				t.Fatalf("bad call %v (%v), want %v", got, err, tt.bad)
			}
			if v.Trigger != tt.trigger {
				t.Fatalf("trigger %v (%s), want %v", v.Trigger, v.Reason, tt.trigger)
			}
			if err == nil && !v.Trigger && v.Reason == "" {
				t.Fatal("an ignored call says no reason")
			}
		})
	}
}

func TestWebhookPathIsFluxs(t *testing.T) {
	sum := sha256.Sum256([]byte("tokenwebappflux-system"))
	if got, want := WebhookPath("token", "webapp", "flux-system"), "/hook/"+hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("path %s, want %s", got, want)
	}
}
