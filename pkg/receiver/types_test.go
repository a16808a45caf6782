package receiver

import (
	"cmp"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Nexus signs with HMAC-SHA1.
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
)

// Payloads shaped like the ones each service documents.
const (
	// Bitbucket Server / Data Center, "repo:refs_changed".
	bitbucketPush = `{"eventKey":"repo:refs_changed","date":"2024-05-02T09:58:11+1000",` +
		`"actor":{"name":"admin","emailAddress":"admin@example.com","id":1,"displayName":"Administrator","active":true,"slug":"admin","type":"NORMAL"},` +
		`"repository":{"slug":"app","id":84,"name":"app","scmId":"git","state":"AVAILABLE","forkable":true,"project":{"key":"SHOP","id":21,"name":"Shop","public":false,"type":"NORMAL"},"public":false},` +
		`"changes":[{"ref":{"id":"refs/heads/main","displayId":"main","type":"BRANCH"},"refId":"refs/heads/main",` +
		`"fromHash":"ecddabb624f6f5ba43816f5926e580a5f680a932","toHash":"178864a7d521b6f5e720b386b2c2b0ef8563e0dc","type":"UPDATE"}]}`
	// Bitbucket's "Test connection".
	bitbucketPing = `{"test":true}`
	// Harbor 2.x, PUSH_ARTIFACT in the default payload format.
	harborPush = `{"type":"PUSH_ARTIFACT","occur_at":1714640000,"operator":"admin","event_data":{` +
		`"resources":[{"digest":"sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4","tag":"1.2.3",` +
		`"resource_url":"harbor.example.com/shop/app:1.2.3"}],` +
		`"repository":{"date_created":1714000000,"name":"app","namespace":"shop","repo_full_name":"shop/app","repo_type":"private"}}}`
	// Docker Hub's push webhook.
	dockerHubPush = `{"callback_url":"https://registry.hub.docker.com/u/shop/app/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",` +
		`"push_data":{"pushed_at":1714640000,"pusher":"ci","tag":"1.2.3"},` +
		`"repository":{"comment_count":0,"date_created":1714000000,"description":"","is_official":false,"is_private":true,"is_trusted":false,` +
		`"name":"app","namespace":"shop","owner":"shop","repo_name":"shop/app","repo_url":"https://registry.hub.docker.com/u/shop/app/","star_count":0,"status":"Active"}}`
	// Quay's "Push to Repository" notification.
	quayPush = `{"name":"app","repository":"shop/app","namespace":"shop","docker_url":"quay.io/shop/app",` +
		`"homepage":"https://quay.io/repository/shop/app","updated_tags":["1.2.3","latest"]}`
	// Azure Container Registry's push event.
	acrPush = `{"id":"cb8c3971-9adc-488b-bdd8-43cbb4974ff5","timestamp":"2024-05-02T16:52:01.343145347Z","action":"push",` +
		`"target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":524,` +
		`"digest":"sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d","length":524,"repository":"app","tag":"1.2.3"},` +
		`"request":{"id":"3cbb6949-7549-4fa1-86cd-a6d5451dffc7","host":"shop.azurecr.io","method":"PUT","useragent":"docker/26.1.0"}}`
	// Azure Container Registry's "Ping" of a webhook.
	acrPing = `{"id":"a7a8cbe4-1c85-4ec9-b8bb-0c3b6e1d8f3e","timestamp":"2024-05-02T16:50:00.000Z","action":"ping"}`
	// Nexus Repository's component webhook.
	nexusComponent = `{"timestamp":"2024-05-02T23:57:49.664+0000","nodeId":"52905B51-085CCABB-CEBBEAAD-16F2D4A5","initiator":"ci/10.0.0.4",` +
		`"repositoryName":"docker-hosted","action":"CREATED","component":{"id":"08909bf0c86cf6c9600aade89e1c5e25",` +
		`"componentId":"ZG9ja2VyLWhvc3RlZDowODkwOWJmMGM4NmNmNmM5NjAwYWFkZTg5ZTFjNWUyNQ","format":"docker","name":"shop/app","group":null,"version":"1.2.3"}}`
	// CDEvents 0.4 change merged.
	cdeventMerged = `{"context":{"specversion":"0.4.1","id":"271069a8-fc18-44f1-b38f-9d70a1695819","source":"/event/source/123",` +
		`"type":"dev.cdevents.change.merged.0.2.0","timestamp":"2024-03-20T14:27:05.315384Z"},` +
		`"subject":{"id":"mySubject123","source":"/event/source/123","type":"change","content":{"repository":{"id":"TestRepo/TestOrg","source":"https://example.org"}}}}`
	// CDEvents 0.3 artifact published: "version", not "specversion".
	cdeventPublished = `{"context":{"version":"0.3.0","id":"f1e2d3c4","source":"https://ci.example.com/shop",` +
		`"type":"dev.cdevents.artifact.published.0.1.1","timestamp":"2024-03-20T14:30:00Z"},` +
		`"subject":{"id":"pkg:oci/app@sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d","type":"artifact","content":{}}}`
	cdeventNoID = `{"context":{"specversion":"0.4.1","source":"/event/source/123",` +
		`"type":"dev.cdevents.change.merged.0.2.0","timestamp":"2024-03-20T14:27:05Z"},"subject":{"id":"mySubject123","content":{}}}`
	cdeventBadType = `{"context":{"specversion":"0.4.1","id":"1","source":"/event/source/123",` +
		`"type":"com.github.pull_request.closed","timestamp":"2024-03-20T14:27:05Z"},"subject":{"id":"mySubject123","content":{}}}`
)

// oversized is a JSON body one byte past the cap.
func oversized() string {
	const head, tail = `{"pad":"`, `"}`
	return head + strings.Repeat("x", maxBody+1-len(head)-len(tail)) + tail
}

// hookCall is one call in a type's table, and what it must do.
type hookCall struct {
	name string
	// path is where the call goes; empty means the Receiver's own.
	path    string
	headers map[string]string
	body    string
	code    int
	trigger bool
}

// run makes each call and checks its status, and whether the
// GitRepository got a new reconcile request.
func (e *env) run(t *testing.T, path string, calls []hookCall) {
	t.Helper()
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			before := annotation(t, e.ns)
			if code := e.send(t, http.MethodPost, cmp.Or(tt.path, path), tt.headers, strings.NewReader(tt.body)); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if got := annotation(t, e.ns) != before; got != tt.trigger {
				t.Fatalf("reconcile requested %v, want %v", got, tt.trigger)
			}
		})
	}
}

// typed creates a Receiver of the type, with the events, naming the
// GitRepository, and returns its path and the path another token would
// have.
func (e *env) typed(t *testing.T, typ string, events ...string) (path, guessed string) {
	t.Helper()
	path = e.receiverWith(t, typ, notificationv1.ReceiverSpec{Type: typ, Events: events,
		Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}})
	return path, WebhookPath("guessed", typ, e.ns)
}

func TestBitbucketCallsMustBeSignedWithTheToken(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-bitbucket")
	path, _ := e.typed(t, notificationv1.BitbucketReceiver, "repo:refs_changed")
	big := oversized()
	signed := func(event, body, key string) map[string]string {
		return map[string]string{"X-Event-Key": event, "X-Request-Id": "d1c4e8a6-3b1f-4b7e-9f5e-2b0c6a3e9d10", "X-Hub-Signature": "sha256=" + sign(sha256.New, key, body)}
	}
	e.run(t, path, []hookCall{
		{name: "a push signed with the token triggers", headers: signed("repo:refs_changed", bitbucketPush, hookToken), body: bitbucketPush, code: http.StatusOK, trigger: true},
		{name: "an event not in spec.events is answered and ignored", headers: signed("pr:opened", bitbucketPush, hookToken), body: bitbucketPush, code: http.StatusOK},
		{name: "the test connection is answered and ignored", headers: signed("diagnostics:ping", bitbucketPing, hookToken), body: bitbucketPing, code: http.StatusOK},
		{name: "a push signed with another key is refused", headers: signed("repo:refs_changed", bitbucketPush, "forged"), body: bitbucketPush, code: http.StatusUnauthorized},
		{name: "a push whose body was changed after signing is refused", headers: signed("repo:refs_changed", bitbucketPush, hookToken), body: strings.Replace(bitbucketPush, "main", "evil", 1), code: http.StatusUnauthorized},
		{name: "an unsigned push is refused", headers: map[string]string{"X-Event-Key": "repo:refs_changed"}, body: bitbucketPush, code: http.StatusUnauthorized},
		{name: "a push signed with SHA-1 is refused", headers: map[string]string{"X-Event-Key": "repo:refs_changed", "X-Hub-Signature": "sha1=" + sign(sha1.New, hookToken, bitbucketPush)}, body: bitbucketPush, code: http.StatusUnauthorized},
		{name: "a push signed only in X-Hub-Signature-256 is refused", headers: map[string]string{"X-Event-Key": "repo:refs_changed", "X-Hub-Signature-256": "sha256=" + sign(sha256.New, hookToken, bitbucketPush)}, body: bitbucketPush, code: http.StatusUnauthorized},
		{name: "a signed push over the size cap gets 413", headers: signed("repo:refs_changed", big, hookToken), body: big, code: http.StatusRequestEntityTooLarge},
	})
}

func TestHarborCallsMustCarryTheTokenInAuthorization(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-harbor")
	path, _ := e.typed(t, notificationv1.HarborReceiver)
	e.run(t, path, []hookCall{
		{name: "a push with the token as Authorization triggers", headers: map[string]string{"Authorization": hookToken, "Content-Type": "application/json"}, body: harborPush, code: http.StatusOK, trigger: true},
		{name: "a push with another Authorization is refused", headers: map[string]string{"Authorization": "forged"}, body: harborPush, code: http.StatusUnauthorized},
		{name: "a push with the token behind a scheme is refused", headers: map[string]string{"Authorization": "Bearer " + hookToken}, body: harborPush, code: http.StatusUnauthorized},
		{name: "a push with no Authorization is refused", body: harborPush, code: http.StatusUnauthorized},
		{name: "a push over the size cap gets 413", headers: map[string]string{"Authorization": hookToken}, body: oversized(), code: http.StatusRequestEntityTooLarge},
	})
}

func TestDockerHubCallsMustBePushesToTheSecretPath(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-dockerhub")
	path, guessed := e.typed(t, notificationv1.DockerHubReceiver)
	e.run(t, path, []hookCall{
		{name: "a push to the secret path triggers", body: dockerHubPush, code: http.StatusOK, trigger: true},
		{name: "a push to a path of another token is not found", path: guessed, body: dockerHubPush, code: http.StatusNotFound},
		{name: "a body without the pushed tag is refused", body: strings.Replace(dockerHubPush, `"tag":"1.2.3"`, `"tag":""`, 1), code: http.StatusBadRequest},
		{name: "a body without the repository's name is refused", body: strings.Replace(dockerHubPush, `"repo_name":"shop/app"`, `"repo_name":""`, 1), code: http.StatusBadRequest},
		{name: "a body whose callback_url is not https is refused", body: strings.Replace(dockerHubPush, "https://registry.hub.docker.com/u/shop/app/hook", "http://evil.example.com/hook", 1), code: http.StatusBadRequest},
		{name: "a body that is not JSON is refused", body: "tag=1.2.3", code: http.StatusBadRequest},
		{name: "a push over the size cap gets 413", body: oversized(), code: http.StatusRequestEntityTooLarge},
	})
}

func TestQuayCallsMustBePushesToTheSecretPath(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-quay")
	path, guessed := e.typed(t, notificationv1.QuayReceiver)
	e.run(t, path, []hookCall{
		{name: "a push to the secret path triggers", body: quayPush, code: http.StatusOK, trigger: true},
		{name: "a push to a path of another token is not found", path: guessed, body: quayPush, code: http.StatusNotFound},
		{name: "a body without updated tags is refused", body: strings.Replace(quayPush, `["1.2.3","latest"]`, `[]`, 1), code: http.StatusBadRequest},
		{name: "a body without docker_url is refused", body: `{"repository":"shop/app","updated_tags":["1.2.3"]}`, code: http.StatusBadRequest},
		{name: "a push over the size cap gets 413", body: oversized(), code: http.StatusRequestEntityTooLarge},
	})
}

func TestACRCallsMustBeRegistryEventsToTheSecretPath(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-acr")
	path, guessed := e.typed(t, notificationv1.ACRReceiver)
	e.run(t, path, []hookCall{
		{name: "a push to the secret path triggers", body: acrPush, code: http.StatusOK, trigger: true},
		{name: "a ping is answered and ignored", body: acrPing, code: http.StatusOK},
		{name: "a push to a path of another token is not found", path: guessed, body: acrPush, code: http.StatusNotFound},
		{name: "a push without target.repository is refused", body: strings.Replace(acrPush, `"repository":"app"`, `"repository":""`, 1), code: http.StatusBadRequest},
		{name: "a body without an action is refused", body: `{"target":{"repository":"app"}}`, code: http.StatusBadRequest},
		{name: "a push over the size cap gets 413", body: oversized(), code: http.StatusRequestEntityTooLarge},
	})
}

func TestNexusCallsMustBeSignedWithTheToken(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-nexus")
	path, _ := e.typed(t, notificationv1.NexusReceiver)
	big := oversized()
	signed := func(body, key string) map[string]string {
		return map[string]string{"X-Nexus-Webhook-Id": "rm:repository:component", "X-Nexus-Webhook-Signature": sign(sha1.New, key, body)}
	}
	e.run(t, path, []hookCall{
		{name: "a component event signed with the token triggers", headers: signed(nexusComponent, hookToken), body: nexusComponent, code: http.StatusOK, trigger: true},
		{name: "an event signed with another key is refused", headers: signed(nexusComponent, "forged"), body: nexusComponent, code: http.StatusUnauthorized},
		{name: "an unsigned event is refused", body: nexusComponent, code: http.StatusUnauthorized},
		{name: "a signature that is not hex is refused", headers: map[string]string{"X-Nexus-Webhook-Signature": "not-hex"}, body: nexusComponent, code: http.StatusUnauthorized},
		{name: "a signed body without an action is refused", headers: signed(`{"repositoryName":"docker-hosted"}`, hookToken), body: `{"repositoryName":"docker-hosted"}`, code: http.StatusBadRequest},
		{name: "a signed event over the size cap gets 413", headers: signed(big, hookToken), body: big, code: http.StatusRequestEntityTooLarge},
	})
}

func TestCDEventsCallsMustBeCDEventsOfAListedType(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-cdevents")
	const merged, published = "dev.cdevents.change.merged.0.2.0", "dev.cdevents.artifact.published.0.1.1"
	path, guessed := e.typed(t, notificationv1.CDEventsReceiver, merged)
	ce := func(typ string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "271069a8-fc18-44f1-b38f-9d70a1695819", "Ce-Source": "/event/source/123", "Ce-Type": typ, "Content-Type": "application/json"}
	}
	e.run(t, path, []hookCall{
		{name: "a change merged event of a listed type triggers", headers: ce(merged), body: cdeventMerged, code: http.StatusOK, trigger: true},
		{name: "an event of a type not listed is answered and ignored", headers: ce(published), body: cdeventPublished, code: http.StatusOK},
		{name: "an event to a path of another token is not found", path: guessed, headers: ce(merged), body: cdeventMerged, code: http.StatusNotFound},
		{name: "an event without context.id is refused", headers: ce(merged), body: cdeventNoID, code: http.StatusBadRequest},
		{name: "an event whose type is not a CDEvent's is refused", headers: ce(merged), body: cdeventBadType, code: http.StatusBadRequest},
		{name: "a body that is not JSON is refused", headers: ce(merged), body: "merged", code: http.StatusBadRequest},
		{name: "an event over the size cap gets 413", headers: ce(merged), body: oversized(), code: http.StatusRequestEntityTooLarge},
	})
}

func TestCDEventsOfTheSpecBefore04AreRead(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-cdevents-03")
	path, _ := e.typed(t, notificationv1.CDEventsReceiver)
	e.run(t, path, []hookCall{
		{name: "an artifact published event with context.version triggers", headers: map[string]string{"Ce-Type": "dev.cdevents.artifact.published.0.1.1"}, body: cdeventPublished, code: http.StatusOK, trigger: true},
	})
}

// pubSubPushBody is a Pub/Sub push of a registry notification.
func pubSubPushBody(notification string) string {
	return `{"message":{"attributes":{},"data":"` + base64.StdEncoding.EncodeToString([]byte(notification)) + `",` +
		`"messageId":"136969346945","message_id":"136969346945","publishTime":"2024-05-02T15:01:23.045123456Z","publish_time":"2024-05-02T15:01:23.045123456Z"},` +
		`"subscription":"projects/example-project/subscriptions/sluice-hook"}`
}

const artifactRegistryInsert = `{"action":"INSERT","digest":"us-east1-docker.pkg.dev/example-project/shop/app@sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",` +
	`"tag":"us-east1-docker.pkg.dev/example-project/shop/app:1.2.3"}`

func TestGCRCallsMustCarryAGoogleIDTokenForTheSecretsAccount(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-gcr")
	path, _ := e.typed(t, notificationv1.GCRReceiver)
	body := pubSubPushBody(artifactRegistryInsert)
	bearer := func(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }
	good := func(change func(map[string]any)) map[string]string {
		return bearer(signJWT(t, e.googleKey, "k1", change))
	}
	stranger := testKey(t)
	e.run(t, path, []hookCall{
		{name: "a push with Google's ID token for the audience and account triggers", headers: good(nil), body: body, code: http.StatusOK, trigger: true},
		{name: "a token signed by another key under Google's key id is refused", headers: bearer(signJWT(t, stranger, "k1", nil)), body: body, code: http.StatusUnauthorized},
		{name: "a token under a key id Google does not publish is refused", headers: bearer(signJWT(t, stranger, "k2", nil)), body: body, code: http.StatusUnauthorized},
		{name: "an unsigned token is refused", headers: bearer(unsignedJWT(t, claims(nil))), body: body, code: http.StatusUnauthorized},
		{name: "a token signed with the Secret's token as an HMAC key is refused", headers: bearer(hmacJWT(t, hookToken, claims(nil))), body: body, code: http.StatusUnauthorized},
		{name: "the Secret's token as the bearer is refused", headers: bearer(hookToken), body: body, code: http.StatusUnauthorized},
		{name: "a call without Authorization is refused", body: body, code: http.StatusUnauthorized},
		{name: "a token for another audience is refused", headers: good(func(c map[string]any) { c["aud"] = "https://other.example.com" }), body: body, code: http.StatusUnauthorized},
		{name: "a token of another service account is refused", headers: good(func(c map[string]any) { c["email"] = "someone@evil-project.iam.gserviceaccount.com" }), body: body, code: http.StatusUnauthorized},
		{name: "a token whose email is not verified is refused", headers: good(func(c map[string]any) { c["email_verified"] = false }), body: body, code: http.StatusUnauthorized},
		{name: "a token from another issuer is refused", headers: good(func(c map[string]any) { c["iss"] = "https://issuer.example.com" }), body: body, code: http.StatusUnauthorized},
		{name: "an expired token is refused", headers: good(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), body: body, code: http.StatusUnauthorized},
		{name: "a good token with a body that is not a registry notification is refused", headers: good(nil), body: pubSubPushBody(`{"hello":"world"}`), code: http.StatusBadRequest},
		{name: "a good token with message data that is not base64 is refused", headers: good(nil), body: strings.Replace(body, `"data":"`, `"data":"%%`, 1), code: http.StatusBadRequest},
		{name: "a push over the size cap gets 413", headers: good(nil), body: oversized(), code: http.StatusRequestEntityTooLarge},
	})

	// Where Google's keys cannot be fetched, a call is refused, not let
	// through.
	offline := httptest.NewServer(&Handler{Client: e.mgr.GetClient(), Log: logr.Discard(), GoogleCertsURL: "http://127.0.0.1:1/certs"})
	t.Cleanup(offline.Close)
	before := annotation(t, e.ns)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, offline.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", good(nil)["Authorization"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with Google's keys out of reach: status %d, want 503", resp.StatusCode)
	}
	if annotation(t, e.ns) != before {
		t.Fatal("with Google's keys out of reach, a reconcile was requested")
	}
}

// testKey makes a signing key.
func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// jwks serves keys as a JWK set, as Google's certs endpoint does.
func jwks(t testing.TB, keys map[string]*rsa.PublicKey) http.Handler {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		set.Keys = append(set.Keys, map[string]string{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
		_, _ = w.Write(body)
	})
}

// claims are those of a Pub/Sub push's ID token for the Secret "hook",
// with change applied.
func claims(change func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": "https://accounts.google.com", "aud": hookAudience, "azp": "112233445566778899000",
		"sub": "112233445566778899000", "email": hookEmail, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if change != nil {
		change(c)
	}
	return c
}

func segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signJWT signs the claims with RS256 under the key id.
func signJWT(t testing.TB, key *rsa.PrivateKey, kid string, change func(map[string]any)) string {
	t.Helper()
	signing := segment(t, map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"}) + "." + segment(t, claims(change))
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// unsignedJWT is a token with "alg": "none".
func unsignedJWT(t testing.TB, c map[string]any) string {
	t.Helper()
	return segment(t, map[string]string{"alg": "none", "kid": "k1", "typ": "JWT"}) + "." + segment(t, c) + "."
}

// hmacJWT is a token signed with HS256 by a shared key.
func hmacJWT(t testing.TB, key string, c map[string]any) string {
	t.Helper()
	signing := segment(t, map[string]string{"alg": "HS256", "kid": "k1", "typ": "JWT"}) + "." + segment(t, c)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
