package receiver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/test/controlplane"
)

// issuer is a loopback OIDC issuer: a discovery document, and the JWK set
// of the keys it signs with, which a test may rotate.
type issuer struct {
	srv *httptest.Server

	mu sync.Mutex
	// keys are the published keys by id, and the algorithm of each.
	keys    map[string]crypto.Signer
	algs    map[string]jose.SignatureAlgorithm
	fetches int
}

// newIssuer starts an issuer publishing an RS256 key "rsa" and an ES256
// key "ec".
func newIssuer(t testing.TB) *issuer {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{}
	iss.rotate(map[string]crypto.Signer{"rsa": testKey(t), "ec": ec})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		iss.fetches++
		var set jose.JSONWebKeySet
		for kid, k := range iss.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(iss.algs[kid]), Use: "sig"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

// rotate replaces the published keys.
func (i *issuer) rotate(keys map[string]crypto.Signer) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys, i.algs = keys, map[string]jose.SignatureAlgorithm{}
	for kid, k := range keys {
		i.algs[kid] = jose.RS256
		if _, ok := k.(*ecdsa.PrivateKey); ok {
			i.algs[kid] = jose.ES256
		}
	}
}

// keyFetches is how often the JWK set was fetched.
func (i *issuer) keyFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.fetches
}

// token is a token the issuer signs with its key kid, with the claims of
// a GitHub Actions run of shop/app on main at now for the default
// audience, changed by change.
func (i *issuer) token(t testing.TB, kid string, now time.Time, change func(map[string]any)) string {
	t.Helper()
	i.mu.Lock()
	key, alg := i.keys[kid], i.algs[kid]
	i.mu.Unlock()
	return signToken(t, key, alg, kid, ghClaims(i.srv.URL, now, change))
}

// ghClaims are the claims of a GitHub Actions ID token.
func ghClaims(iss string, now time.Time, change func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": iss, "aud": notificationv1.DefaultOIDCAudience, "sub": "repo:shop/app:ref:refs/heads/main",
		"repository_owner": "shop", "repository": "shop/app", "ref": "refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	if change != nil {
		change(c)
	}
	return c
}

// signToken signs claims with key as a JWT whose header names kid.
func signToken(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// post sends a call to the endpoint at url and returns its status and
// body.
func post(t testing.TB, url, path string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// ghProvider is a provider of iss for GitHub Actions runs of shop's main
// branch, with variables that build on each other, as Flux's example.
func ghProvider(iss string) notificationv1.OIDCProvider {
	return notificationv1.OIDCProvider{
		IssuerURL: iss,
		Variables: []notificationv1.OIDCVariable{
			{Name: "owner", Expression: "claims.repository_owner"},
			{Name: "allowedRepos", Expression: "[vars.owner + '/app', vars.owner + '/web']"},
		},
		Validations: []notificationv1.OIDCValidation{
			{Expression: "vars.owner == 'shop'", Message: "wrong org"},
			{Expression: "claims.repository in vars.allowedRepos", Message: "repo not in allowlist"},
			{Expression: "claims.ref == 'refs/heads/main'", Message: "must be main branch"},
		},
	}
}

func TestAGenericOIDCCallMustCarryAnIDTokenThatPassesTheValidations(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-oidc")
	gh, deployer, stranger := newIssuer(t), newIssuer(t), newIssuer(t)
	path := e.receiverWith(t, "oidc", notificationv1.ReceiverSpec{
		Type: notificationv1.GenericOIDCReceiver,
		OIDCProviders: []notificationv1.OIDCProvider{
			ghProvider(gh.srv.URL),
			{IssuerURL: deployer.srv.URL, Audience: "sluice", Validations: []notificationv1.OIDCValidation{{Expression: "claims.sub == 'deployer'", Message: "not the deployer"}}},
			// Nothing listens there.
			{IssuerURL: "http://127.0.0.1:1", Validations: []notificationv1.OIDCValidation{{Expression: "true", Message: "never"}}},
		},
		Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}},
		// The verified claims reach the resource filter as claims.
		ResourceFilter: "claims.repository == 'shop/' + res.metadata.name",
	})
	if want := WebhookPath("", "oidc", e.ns); path != want {
		t.Fatalf("path %s, want sha256 of the name and namespace alone: %s", path, want)
	}
	now := time.Now()
	forged := testKey(t)
	tests := []struct {
		name    string
		headers map[string]string
		code    int
		// told is what the caller must be told.
		told    string
		trigger bool
	}{
		{name: "an RS256 token from the issuer for the default audience whose claims pass every validation triggers", headers: bearer(gh.token(t, "rsa", now, nil)), code: http.StatusOK, trigger: true},
		{name: "an ES256 token from the issuer triggers", headers: bearer(gh.token(t, "ec", now, nil)), code: http.StatusOK, trigger: true},
		{name: "a token from the second provider for its own audience triggers", headers: bearer(deployer.token(t, "rsa", now, func(c map[string]any) {
			c["aud"], c["sub"], c["repository"] = []string{"other", "sluice"}, "deployer", "shop/app"
		})), code: http.StatusOK, trigger: true},
		{name: "a token whose claims pass but that the resource filter leaves out requests nothing", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { c["repository"] = "shop/web" })), code: http.StatusOK},
		{name: "a token for another audience is refused", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { c["aud"] = "someone-else" })), code: http.StatusUnauthorized, told: "audience"},
		{name: "a token of the second provider for the default audience is refused, as it names its own", headers: bearer(deployer.token(t, "rsa", now, func(c map[string]any) { c["sub"] = "deployer" })), code: http.StatusUnauthorized, told: "audience"},
		{name: "a token from an issuer no provider names is refused", headers: bearer(stranger.token(t, "rsa", now, nil)), code: http.StatusUnauthorized, told: "no spec.oidcProviders entry"},
		{name: "a token naming the issuer but signed by another key under its key id is refused", headers: bearer(signToken(t, forged, jose.RS256, "rsa", ghClaims(gh.srv.URL, now, nil))), code: http.StatusUnauthorized, told: "signature"},
		{name: "an expired token is refused", headers: bearer(gh.token(t, "rsa", now.Add(-time.Hour), nil)), code: http.StatusUnauthorized, told: "expired"},
		{name: "a token expired within the minute of leeway triggers", headers: bearer(gh.token(t, "rsa", now.Add(-10*time.Minute-30*time.Second), nil)), code: http.StatusOK, trigger: true},
		{name: "a token signed with an algorithm the issuer's discovery does not list is refused", headers: bearer(signToken(t, gh.keys["rsa"], jose.PS256, "rsa", ghClaims(gh.srv.URL, now, nil))), code: http.StatusUnauthorized, told: "PS256"},
		{name: "a token of an issuer that cannot be reached gets 503", headers: bearer(signToken(t, forged, jose.RS256, "k", ghClaims("http://127.0.0.1:1", now, nil))), code: http.StatusServiceUnavailable, told: "cannot be verified now"},
		{name: "a token not valid yet is refused", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })), code: http.StatusUnauthorized},
		{name: "a token of another org is refused with the validation's message", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { c["repository_owner"], c["repository"] = "evil", "evil/app" })), code: http.StatusUnauthorized, told: "token validation failed: wrong org"},
		{name: "a token failing two validations is told both messages", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { c["repository"], c["ref"] = "shop/secret", "refs/heads/dev" })), code: http.StatusUnauthorized, told: "repo not in allowlist; must be main branch"},
		{name: "a token without a claim the variables read is refused", headers: bearer(gh.token(t, "rsa", now, func(c map[string]any) { delete(c, "repository_owner") })), code: http.StatusUnauthorized, told: "variables[0]"},
		{name: "an HMAC-signed token is refused", headers: bearer(hmacJWT(t, "shared", ghClaims(gh.srv.URL, now, nil))), code: http.StatusUnauthorized},
		{name: "an unsigned token is refused", headers: bearer(unsignedJWT(t, ghClaims(gh.srv.URL, now, nil))), code: http.StatusUnauthorized},
		{name: "a call without Authorization is refused", code: http.StatusUnauthorized},
		{name: "a bearer that is not a JWT is refused", headers: bearer("t0ken"), code: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := annotation(t, e.ns)
			code, body := post(t, e.hook.URL, path, tt.headers)
			if code != tt.code || !strings.Contains(body, tt.told) {
				t.Fatalf("status %d %q, want %d telling %q", code, body, tt.code, tt.told)
			}
			if got := annotation(t, e.ns) != before; got != tt.trigger {
				t.Fatalf("reconcile requested %v, want %v", got, tt.trigger)
			}
		})
	}
}

// clock is a settable clock for the endpoint.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestAKeyRotatedAtTheIssuerIsPickedUpAndUnknownKeyIDsFetchAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-oidc-rotate")
	gh := newIssuer(t)
	path := e.receiverWith(t, "oidc", notificationv1.ReceiverSpec{
		Type:          notificationv1.GenericOIDCReceiver,
		OIDCProviders: []notificationv1.OIDCProvider{ghProvider(gh.srv.URL)},
		Resources:     []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}},
	})
	now := &clock{t: time.Now()}
	hook := httptest.NewServer(&Handler{Client: e.mgr.GetClient(), Log: logr.Discard(), Now: now.Now})
	t.Cleanup(hook.Close)

	old := gh.token(t, "rsa", now.Now(), nil)
	newKey := testKey(t)
	steps := []struct {
		name string
		// after is how far the clock moves before the call.
		after time.Duration
		// rotate publishes only the new key before the call.
		rotate  bool
		token   func() string
		code    int
		fetches int
	}{
		{name: "the first call fetches the keys", token: func() string { return old }, code: http.StatusOK, fetches: 1},
		{name: "the next call uses the cached keys", after: time.Second, token: func() string { return old }, code: http.StatusOK, fetches: 1},
		{name: "a token under a new key id just after a fetch is refused without fetching again", after: 10 * time.Second, rotate: true, token: func() string { return gh.token(t, "rsa2", now.Now(), nil) }, code: http.StatusUnauthorized, fetches: 1},
		{name: "a minute on, the unknown key id fetches the rotated keys and is accepted", after: time.Minute, token: func() string { return gh.token(t, "rsa2", now.Now(), nil) }, code: http.StatusOK, fetches: 2},
		{name: "the retired key is refused", after: time.Second, token: func() string { return old }, code: http.StatusUnauthorized, fetches: 2},
	}
	for _, s := range steps {
		now.add(s.after)
		if s.rotate {
			gh.rotate(map[string]crypto.Signer{"rsa2": newKey})
		}
		before := annotation(t, e.ns)
		code, body := post(t, hook.URL, path, bearer(s.token()))
		if code != s.code {
			t.Fatalf("%s: status %d %q, want %d", s.name, code, body, s.code)
		}
		if got, want := annotation(t, e.ns) != before, s.code == http.StatusOK; got != want {
			t.Fatalf("%s: reconcile requested %v, want %v", s.name, got, want)
		}
		if got := gh.keyFetches(); got != s.fetches {
			t.Fatalf("%s: the keys were fetched %d times, want %d", s.name, got, s.fetches)
		}
	}
}

func TestAnExpressionThatDoesNotCompileStallsTheReceiverNamingItsField(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-bad-cel")
	gh := newIssuer(t)
	broken := func(change func(*notificationv1.OIDCProvider)) notificationv1.ReceiverSpec {
		p := ghProvider(gh.srv.URL)
		change(&p)
		return notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{p},
			Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}}
	}
	generic := func(filter string, resources ...notificationv1.CrossNamespaceObjectReference) notificationv1.ReceiverSpec {
		return notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "hook"}, ResourceFilter: filter, Resources: resources}
	}
	app := notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app"}
	tests := []struct {
		name  string
		spec  notificationv1.ReceiverSpec
		field string
	}{
		{"a validation that does not parse", broken(func(p *notificationv1.OIDCProvider) { p.Validations[1].Expression = "claims.repository in" }), "spec.oidcProviders[0].validations[1].expression"},
		{"a validation that is not boolean", broken(func(p *notificationv1.OIDCProvider) { p.Validations[2].Expression = "'main'" }), "spec.oidcProviders[0].validations[2].expression"},
		{"a variable that reads an undeclared name", broken(func(p *notificationv1.OIDCProvider) { p.Variables[0].Expression = "token.repository_owner" }), "spec.oidcProviders[0].variables[0].expression"},
		{"claims in the resourceFilter of a type that has no token", generic("claims.sub == 'x'", app), "spec.resourceFilter"},
		{"a resource's filter that does not parse", generic("", app, notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "*", MatchLabels: map[string]string{"team": "shop"}, Filter: "res.metadata.name =="}), "spec.resources[1].filter"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("bad-%d", i)
			create(t, &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: tt.spec})
			rcv := &notificationv1.Receiver{}
			controlplane.Eventually(t, 30*time.Second, "Receiver stalled on "+tt.field, func(ctx context.Context) (bool, string) {
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, rcv); err != nil {
					return false, err.Error()
				}
				c := meta.FindStatusCondition(rcv.Status.Conditions, "Ready")
				return c != nil && c.Status == metav1.ConditionFalse && c.Reason == notificationv1.ReasonInvalidCELExpression &&
					strings.HasPrefix(c.Message, tt.field+": invalid CEL expression") && meta.IsStatusConditionTrue(rcv.Status.Conditions, "Stalled"), fmt.Sprintf("%+v", rcv.Status)
			})
			controlplane.Eventually(t, 10*time.Second, "a Warning Event naming "+tt.field, func(ctx context.Context) (bool, string) {
				var list eventsv1.EventList
				if err := cp.Client.List(ctx, &list, client.InNamespace(e.ns)); err != nil {
					return false, err.Error()
				}
				for _, ev := range list.Items {
					if ev.Regarding.Name == name && ev.Type == corev1.EventTypeWarning && ev.Reason == notificationv1.ReasonInvalidCELExpression && strings.HasPrefix(ev.Note, tt.field) {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%d events", len(list.Items))
			})
		})
	}

	// A call with a good token to the path a broken generic-oidc Receiver
	// would have is refused and requests nothing.
	before := annotation(t, e.ns)
	if code, body := post(t, e.hook.URL, WebhookPath("", "bad-0", e.ns), bearer(gh.token(t, "rsa", time.Now(), nil))); code == http.StatusOK {
		t.Fatalf("a call to a stalled Receiver got %d %q", code, body)
	}
	if annotation(t, e.ns) != before {
		t.Fatal("a call to a stalled Receiver requested a reconcile")
	}
}

func TestTheAPIServerRefusesASecretRefOrOIDCProvidersThatDoNotFitTheType(t *testing.T) {
	t.Parallel()
	const ns = "rcv-oidc-crd"
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	secret := &notificationv1.LocalObjectReference{Name: "hook"}
	provider := ghProvider("https://token.actions.githubusercontent.com")
	app := []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}
	tests := []struct {
		name string
		spec notificationv1.ReceiverSpec
		// field is what the refusal names; empty means accepted.
		field string
	}{
		{"generic-oidc with providers and no Secret is accepted", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{provider}, Resources: app}, ""},
		{"generic-oidc with a Secret is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{provider}, SecretRef: secret, Resources: app}, "spec.secretRef"},
		{"generic-oidc without providers is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, Resources: app}, "spec.oidcProviders"},
		{"another type without a Secret is refused", notificationv1.ReceiverSpec{Type: notificationv1.GitHubReceiver, Resources: app}, "spec.secretRef"},
		{"another type with providers is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, SecretRef: secret, OIDCProviders: []notificationv1.OIDCProvider{provider}, Resources: app}, "spec.oidcProviders"},
		{"a provider without validations is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{{IssuerURL: provider.IssuerURL}}, Resources: app}, "spec.oidcProviders[0].validations"},
		{"an issuer that is not an http(s) URL is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{{IssuerURL: "token.actions.githubusercontent.com", Validations: provider.Validations}}, Resources: app}, "spec.oidcProviders[0].issuerURL"},
		{"two providers of one issuer are refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{provider, provider}, Resources: app}, "spec.oidcProviders[1]"},
		{"a validation without a message is refused", notificationv1.ReceiverSpec{Type: notificationv1.GenericOIDCReceiver, OIDCProviders: []notificationv1.OIDCProvider{{IssuerURL: provider.IssuerURL, Validations: []notificationv1.OIDCValidation{{Expression: "true"}}}}, Resources: app}, "spec.oidcProviders[0].validations[0].message"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cp.Client.Create(t.Context(), &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%d", i), Namespace: ns}, Spec: tt.spec})
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.field != "" && err == nil:
				t.Fatalf("accepted, want %s refused", tt.field)
			case tt.field != "" && !strings.Contains(err.Error(), tt.field):
				t.Fatalf("refused without naming %s: %v", tt.field, err)
			}
		})
	}
}
