package receiver

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // generic-hmac and Nexus calls are signed with HMAC-SHA1.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// fuzzNow is the clock of the fuzzed calls, so that a seed token stays
// current.
var fuzzNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// signedTypes are the Receiver types whose calls prove their sender with
// the Secret's token.
var signedTypes = []string{
	notificationv1.GitHubReceiver, notificationv1.BitbucketReceiver, notificationv1.GenericHMACReceiver,
	notificationv1.NexusReceiver, notificationv1.GitLabReceiver, notificationv1.HarborReceiver,
}

// signatureHeader is the header each signed type reads.
var signatureHeader = map[string]string{
	notificationv1.GitHubReceiver:      "X-Hub-Signature-256",
	notificationv1.BitbucketReceiver:   "X-Hub-Signature",
	notificationv1.GenericHMACReceiver: "X-Signature",
	notificationv1.NexusReceiver:       "X-Nexus-Webhook-Signature",
	notificationv1.GitLabReceiver:      "X-Gitlab-Token",
	notificationv1.HarborReceiver:      "Authorization",
}

// genuine is the signature header a sender holding token sends with body.
func genuine(typ string, token, body []byte) string {
	mac := func(newHash func() hash.Hash) string {
		m := hmac.New(newHash, token)
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	switch typ {
	case notificationv1.GitHubReceiver, notificationv1.BitbucketReceiver, notificationv1.GenericHMACReceiver:
		return "sha256=" + mac(sha256.New)
	case notificationv1.NexusReceiver:
		return mac(sha1.New)
	}
	return string(token)
}

// proves is an oracle written apart from the senders: whether a header
// value proves that whoever sent body holds token, for a type.
func proves(typ, header string, token, body []byte) bool {
	digestOf := func(newHash func() hash.Hash, digest string) bool {
		got, err := hex.DecodeString(digest)
		if err != nil {
			return false
		}
		m := hmac.New(newHash, token)
		m.Write(body)
		return bytes.Equal(got, m.Sum(nil))
	}
	switch typ {
	case notificationv1.GitHubReceiver, notificationv1.BitbucketReceiver:
		digest, ok := strings.CutPrefix(header, "sha256=")
		return ok && digestOf(sha256.New, digest)
	case notificationv1.GenericHMACReceiver:
		algo, digest, _ := strings.Cut(header, "=")
		newHash := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}[strings.ToLower(algo)]
		return newHash != nil && digestOf(newHash, digest)
	case notificationv1.NexusReceiver:
		return digestOf(sha1.New, header)
	}
	return header == string(token)
}

// FuzzReceiverSignatures sends fuzzed calls to each Receiver type that
// checks a signature or a token (github, bitbucket, generic-hmac, nexus,
// gitlab, harbor). A call passes the check only when its header proves
// the token, as an oracle written apart from the senders says; the
// genuine signature of any body passes; and it fails again once the body
// or the token differ by one byte.
func FuzzReceiverSignatures(f *testing.F) {
	const body = `{"ref":"refs/heads/main","action":"push"}`
	for i, typ := range signedTypes {
		f.Add(uint8(i), "s3cret", []byte(body), genuine(typ, []byte("s3cret"), []byte(body)), "push")
		f.Add(uint8(i), "s3cret", []byte(body), "sha256=", "")
	}
	f.Add(uint8(2), "k", []byte(""), "SHA512="+strings.Repeat("0", 128), "")
	f.Add(uint8(0), "k", []byte("x"), "sha256=ZZ", "ping")
	f.Fuzz(func(t *testing.T, which uint8, token string, body []byte, header, event string) {
		typ := signedTypes[int(which)%len(signedTypes)]
		if token == "" {
			// The endpoint refuses a Receiver whose Secret has no token
			// before any call is checked.
			token = "t"
		}
		call := func(token, body []byte, value string) error {
			h := http.Header{}
			h.Set(signatureHeader[typ], value)
			for _, name := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Event-Key"} {
				h.Set(name, event)
			}
			_, err := verify(t.Context(), deps{}, typ, &Call{Header: h, Body: body, Secret: map[string][]byte{"token": token}, Now: fuzzNow})
			return err
		}

		err := call([]byte(token), body, header)
		if passed := !errors.Is(err, ErrUnauthorized); passed != proves(typ, header, []byte(token), body) {
			t.Fatalf("%s: header %q with token %q and body %q: %v, but the oracle says it proves the token: %v", typ, header, token, body, err, !passed)
		}

		good := genuine(typ, []byte(token), body)
		if err := call([]byte(token), body, good); errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: the genuine signature %q of body %q is refused: %v", typ, good, body, err)
		}
		if err := call([]byte(token+"x"), body, good); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: a signature %q made with another token passes: %v", typ, good, err)
		}
		if typ != notificationv1.GitLabReceiver && typ != notificationv1.HarborReceiver {
			if err := call([]byte(token), append(bytes.Clone(body), 'x'), good); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("%s: the signature %q of another body passes: %v", typ, good, err)
			}
		}
	})
}

// payloadTypes are the Receiver types whose body is checked to be what
// the sender sends; nexus and gcr get a genuine signature or token, so
// that the body is what is fuzzed.
var payloadTypes = []string{
	notificationv1.GenericReceiver, notificationv1.DockerHubReceiver, notificationv1.QuayReceiver,
	notificationv1.ACRReceiver, notificationv1.CDEventsReceiver, notificationv1.NexusReceiver, notificationv1.GCRReceiver,
}

// googleFixture is a Google key source holding one key, "k1", filled in
// without a fetch, and a Pub/Sub push token signed by it.
type googleFixture struct {
	keys   *googleKeys
	bearer string
}

// fuzzGoogle makes the fixture once: an RSA key takes a while.
var fuzzGoogle = sync.OnceValues(func() (*googleFixture, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	keys := newGoogleKeys("http://127.0.0.1:0/unused", http.DefaultClient)
	keys.keys = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	keys.algs = googleAlgorithms
	keys.expires = fuzzNow.Add(24 * time.Hour)
	var segments []string
	for _, v := range []any{
		map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"},
		map[string]any{
			"iss": "https://accounts.google.com", "aud": hookAudience, "sub": "1", "email": hookEmail, "email_verified": true,
			"iat": fuzzNow.Unix(), "exp": fuzzNow.Add(time.Hour).Unix(),
		},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		segments = append(segments, base64.RawURLEncoding.EncodeToString(b))
	}
	signing := strings.Join(segments, ".")
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return nil, err
	}
	return &googleFixture{keys: keys, bearer: signing + "." + base64.RawURLEncoding.EncodeToString(sig)}, nil
})

// FuzzReceiverPayloads sends fuzzed bodies, Content-Types and events to
// the Receiver types that check what a call carries (generic, dockerhub,
// quay, acr, cdevents, and nexus and gcr once their signature or token
// checks out), then through the resource filters as the endpoint does. A
// body is never taken for a forgery; a call triggers only when its body
// has what the sender always sends, as an oracle written apart from the
// senders checks; and a filter that fails on a body names its field.
func FuzzReceiverPayloads(f *testing.F) {
	// Each type's index in payloadTypes, with a body it accepts and one
	// it does not.
	for _, seed := range []struct {
		which uint8
		body  string
	}{
		{0, `{"ref":"refs/heads/main"}`},
		{1, `{"callback_url":"https://registry.hub.docker.com/u/shop/app/hook/1/","push_data":{"tag":"1.2.3"},"repository":{"repo_name":"shop/app"}}`},
		{1, `{"callback_url":"http://x","push_data":{"tag":"1"}}`},
		{2, `{"docker_url":"quay.io/shop/app","updated_tags":["1.2.3"]}`},
		{2, `{"docker_url":"quay.io/shop/app","updated_tags":[]}`},
		{3, `{"action":"push","target":{"repository":"shop/app"}}`},
		{3, `{"action":"ping"}`},
		{4, cdeventMerged},
		{4, cdeventPublished},
		{5, `{"action":"CREATED"}`},
		{5, `null`},
		{6, pubSubPushBody(artifactRegistryInsert)},
		{6, `{"message":{"data":"e30=","messageId":"1"},"subscription":"s"}`},
		{0, `{"a":` + strings.Repeat(`[`, 64) + strings.Repeat(`]`, 64) + `}`},
	} {
		f.Add(seed.which, []byte(seed.body), "application/json", "")
	}
	f.Add(uint8(4), []byte(cdeventMerged), "text/plain, application/json", "dev.cdevents.change.merged.0.2.0")
	cache := &celexpr.Cache{}
	filter, err := cache.Bool(`!has(req.ref) || req.ref == 'refs/heads/main'`, "res", "req")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType, event string) {
		typ := payloadTypes[int(which)%len(payloadTypes)]
		const token = "s3cret"
		h := http.Header{}
		h.Set("Content-Type", contentType)
		h.Set("Ce-Type", event)
		d := deps{}
		switch typ {
		case notificationv1.NexusReceiver:
			h.Set("X-Nexus-Webhook-Signature", genuine(typ, []byte(token), body))
		case notificationv1.GCRReceiver:
			google, err := fuzzGoogle()
			if err != nil {
				t.Fatal(err)
			}
			d.google = google.keys
			h.Set("Authorization", "Bearer "+google.bearer)
		}
		secret := map[string][]byte{"token": []byte(token), "audience": []byte(hookAudience), "email": []byte(hookEmail)}
		v, err := verify(t.Context(), d, typ, &Call{Header: h, Body: body, Secret: secret, Now: fuzzNow})
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, errUnavailable) {
			t.Fatalf("%s: a genuine sender's body %q is taken for a forgery: %v", typ, body, err)
		}
		if err != nil {
			return
		}
		if v.Trigger {
			if why := malformed(typ, body); why != "" {
				t.Fatalf("%s: body %q triggers, but %s", typ, body, why)
			}
		} else if v.Reason == "" {
			t.Fatalf("%s: body %q neither triggers nor says why", typ, body)
		}
		if !v.Trigger {
			return
		}
		spec := &compiledSpec{top: filter, per: []*celexpr.Expression{nil}}
		rf, err := newResourceFilter(spec, typ, h, body, v)
		if err != nil {
			return
		}
		obj := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "source.sluice.dev/v1", Kind: "GitRepository"}, ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "shop"}}
		if _, err := rf.keep(t.Context(), 0, obj); err != nil && !strings.HasPrefix(err.Error(), "spec.resourceFilter: ") {
			t.Fatalf("%s: the resource filter's error on body %q does not name the field: %v", typ, body, err)
		}
	})
}

// malformed says what a triggering body of a type lacks, by what each
// sender documents it always sends; empty when nothing is missing, or
// when the body names a field twice in different cases, which Go's JSON
// decoding resolves by order.
func malformed(typ string, body []byte) string {
	var m map[string]any
	if typ != notificationv1.GenericReceiver {
		if err := json.Unmarshal(body, &m); err != nil {
			return "it is not a JSON object"
		}
	}
	ambiguous := false
	// field reads a path as the senders' structs do: keys match in any
	// case, as encoding/json matches struct fields.
	field := func(v any, path ...string) any {
		for _, p := range path {
			obj, _ := v.(map[string]any)
			v = nil
			found := 0
			for k, value := range obj {
				if strings.EqualFold(k, p) {
					v, found = value, found+1
				}
			}
			ambiguous = ambiguous || found > 1
		}
		return v
	}
	str := func(v any, path ...string) string {
		s, _ := field(v, path...).(string)
		return s
	}
	why := ""
	switch typ {
	case notificationv1.DockerHubReceiver:
		u, err := url.Parse(str(m, "callback_url"))
		if err != nil || u.Scheme != "https" || u.Host == "" || str(m, "push_data", "tag") == "" || str(m, "repository", "repo_name") == "" {
			why = "it is not a Docker Hub push"
		}
	case notificationv1.QuayReceiver:
		if tags, _ := field(m, "updated_tags").([]any); str(m, "docker_url") == "" || len(tags) == 0 {
			why = "it is not a Quay push"
		}
	case notificationv1.ACRReceiver:
		if action := str(m, "action"); action == "" || action == "ping" || str(m, "target", "repository") == "" {
			why = "it is not an ACR event"
		}
	case notificationv1.CDEventsReceiver:
		if str(m, "context", "id") == "" || str(m, "context", "source") == "" || !strings.HasPrefix(str(m, "context", "type"), "dev.cdevents.") || str(m, "subject", "id") == "" {
			why = "it is not a CDEvent"
		}
	case notificationv1.NexusReceiver:
		if str(m, "action") == "" {
			why = "it is not a Nexus event"
		}
	case notificationv1.GCRReceiver:
		data, err := base64.StdEncoding.DecodeString(str(m, "message", "data"))
		// The notification inside is read as a map, by its exact keys.
		var note map[string]any
		exact := func(key string) string { s, _ := note[key].(string); return s }
		if err != nil || json.Unmarshal(data, &note) != nil || str(m, "message", "messageId") == "" || str(m, "subscription") == "" ||
			exact("action") == "" || exact("digest") == "" && exact("tag") == "" {
			why = "it is not a Pub/Sub push of a registry notification"
		}
	}
	if ambiguous {
		return ""
	}
	return why
}
