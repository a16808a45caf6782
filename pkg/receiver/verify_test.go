package receiver

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the generic-hmac receiver accepts SHA-1 signatures.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/test/controlplane"
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
		{"a GitLab call with a prefix of the token is refused", "gitlab", nil, map[string]string{"X-Gitlab-Token": token[:3]}, false, true, false},
		{"a generic HMAC call signed with SHA-256 triggers", "generic-hmac", nil, map[string]string{"X-Signature": good256}, true, false, false},
		{"a generic HMAC call signed with SHA-512 triggers", "generic-hmac", nil, map[string]string{"X-Signature": "sha512=" + sign(sha512.New, token, body)}, true, false, false},
		{"a generic HMAC call signed with SHA-1 triggers", "generic-hmac", nil, map[string]string{"X-Signature": "sha1=" + sign(sha1.New, token, body)}, true, false, false},
		{"a generic HMAC call with an unknown algorithm is refused", "generic-hmac", nil, map[string]string{"X-Signature": "md5=00"}, false, true, false},
		{"a generic HMAC call with no signature is refused", "generic-hmac", nil, nil, false, true, false},
		{"a Bitbucket push signed with the token triggers", "bitbucket", nil, map[string]string{"X-Hub-Signature": good256, "X-Event-Key": "repo:refs_changed"}, true, false, false},
		{"a Bitbucket signature with a truncated digest is refused", "bitbucket", nil, map[string]string{"X-Hub-Signature": good256[:20], "X-Event-Key": "repo:refs_changed"}, false, true, false},
		{"a Harbor call with the token triggers", "harbor", nil, map[string]string{"Authorization": token}, true, false, false},
		{"a Nexus call signed with the token but with no action is a bad call", "nexus", nil, map[string]string{"X-Nexus-Webhook-Signature": sign(sha1.New, token, body)}, false, false, true},
		{"an unknown receiver type is a bad call, not a forged one", "svn", nil, nil, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			v, err := verify(t.Context(), deps{}, tt.typ, &Call{Header: h, Body: []byte(body), Secret: map[string][]byte{"token": []byte(token)}, Events: tt.events, Now: time.Now()})
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

func TestCheckCDEvent(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		valid bool
	}{
		{"a CDEvents 0.4 change merged is a CDEvent", cdeventMerged, true},
		{"a CDEvents 0.3 artifact published is a CDEvent", cdeventPublished, true},
		{"an event without context.id is not", cdeventNoID, false},
		{"an event whose type is not dev.cdevents is not", cdeventBadType, false},
		{"an event whose type has no version is not", strings.Replace(cdeventMerged, "change.merged.0.2.0", "change.merged", 1), false},
		{"an event whose type has a pre-release version is", strings.Replace(cdeventMerged, "change.merged.0.2.0", "change.merged.0.3.0-draft", 1), true},
		{"an event without a timestamp is not", strings.Replace(cdeventMerged, `"timestamp":"2024-03-20T14:27:05.315384Z"`, `"timestamp":"yesterday"`, 1), false},
		{"an event without a spec version is not", strings.Replace(cdeventMerged, `"specversion":"0.4.1",`, "", 1), false},
		{"an event without a subject is not", `{"context":{"specversion":"0.4.1","id":"1","source":"/s","type":"dev.cdevents.change.merged.0.2.0","timestamp":"2024-03-20T14:27:05Z"}}`, false},
		{"an event whose subject content is not an object is not", strings.Replace(cdeventPublished, `"content":{}`, `"content":"x"`, 1), false},
		{"a CloudEvent that is not a CDEvent is not", `{"specversion":"1.0","id":"1","source":"/s","type":"com.example.push"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkCDEvent([]byte(tt.body)); (err == nil) != tt.valid {
				t.Fatalf("error %v, want valid %v", err, tt.valid)
			}
		})
	}
}

func TestGoogleKeysAreFetchedOnceAndNotForEveryUnknownKeyID(t *testing.T) {
	key := testKey(t)
	var fetches atomic.Int32
	keysServer := jwks(t, map[string]*rsa.PublicKey{"k1": &key.PublicKey})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		keysServer.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	keys := newGoogleKeys(srv.URL, srv.Client())
	now := time.Now()
	for range 3 {
		if _, err := keys.key(t.Context(), "k1", now); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := keys.key(t.Context(), "forged", now); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("an unknown key id: %v, want unauthorized", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within a minute, want 1", n)
	}
	// Past the keys' max-age they are fetched again.
	if _, err := keys.key(t.Context(), "k1", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the max-age, want 2", n)
	}
}

func TestAGCRCallIsRefusedWhenGooglesKeysCannotBeFetched(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	d := deps{google: newGoogleKeys(srv.URL, srv.Client())}
	token := signJWT(t, testKey(t), "k1", nil)
	h := http.Header{"Authorization": []string{"Bearer " + token}}
	_, err := verify(t.Context(), d, "gcr", &Call{Header: h, Body: []byte(pubSubPushBody(artifactRegistryInsert)),
		Secret: map[string][]byte{"token": []byte("t"), "audience": []byte(hookAudience), "email": []byte(hookEmail)}, Now: time.Now()})
	if !errors.Is(err, errUnavailable) || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("error %v, want cannot be verified now", err)
	}
}

func TestWebhookPathIsFluxs(t *testing.T) {
	sum := sha256.Sum256([]byte("tokenwebappflux-system"))
	if got, want := WebhookPath("token", "webapp", "flux-system"), "/hook/"+hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("path %s, want %s", got, want)
	}
}

// TestTheCRDListsWhatTheEndpointServes keeps the CRD's enums and the
// endpoint's registries the same list.
func TestTheCRDListsWhatTheEndpointServes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(controlplane.SluiceCRDs(), "notification.sluice.dev_receivers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	enum := func(p apiextensionsv1.JSONSchemaProps) []string {
		var out []string
		for _, v := range p.Enum {
			out = append(out, strings.Trim(string(v.Raw), `"`))
		}
		slices.Sort(out)
		return out
	}
	if got, want := enum(spec.Properties["type"]), Types(); !slices.Equal(got, want) {
		t.Errorf("spec.type enum %v, want the types served %v", got, want)
	}
	var served []string
	for kind := range kinds() {
		served = append(served, kind)
	}
	slices.Sort(served)
	if got := enum(spec.Properties["resources"].Items.Schema.Properties["kind"]); !slices.Equal(got, served) {
		t.Errorf("resources[].kind enum %v, want the kinds served %v", got, served)
	}
}
