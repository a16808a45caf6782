package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
)

// ErrUnauthorized is a call whose signature or token does not match.
var ErrUnauthorized = errors.New("unauthorized")

// errUnavailable is a call that cannot be checked now, because something
// the check needs (Google's signing keys) cannot be fetched. The call is
// refused, never let through.
var errUnavailable = errors.New("cannot be verified now")

// WebhookPath is the path a Receiver listens on, as in Flux: the token
// makes it unguessable, and name and namespace make it unique.
func WebhookPath(token, name, namespace string) string {
	sum := sha256.Sum256([]byte(token + name + namespace))
	return "/hook/" + hex.EncodeToString(sum[:])
}

// Verdict is what a verified call asks for.
type Verdict struct {
	// Trigger is true when the call should reconcile the resources.
	Trigger bool
	// Reason says why a verified call does not trigger.
	Reason string
	// Claims are the verified token's claims of a generic-oidc call, which
	// the resource filters read as claims; nil for the other types.
	Claims map[string]any
	// Request is what the resource filters read as req in place of the
	// body: the registry notification inside a gcr push, as in Flux; nil
	// for the other types.
	Request map[string]any
}

// Call is one webhook call, its body already read within the size cap,
// with what its Receiver holds to check it.
type Call struct {
	// Header is the call's HTTP header.
	Header http.Header
	// Body is the call's body.
	Body []byte
	// Secret is the data of the Receiver's Secret: "token", and the keys
	// the type needs besides.
	Secret map[string][]byte
	// Events is the Receiver's spec.events.
	Events []string
	// OIDCProviders is the Receiver's spec.oidcProviders.
	OIDCProviders []notificationv1.OIDCProvider
	// oidc are the providers' variables and validations, aligned with
	// OIDCProviders, compiled once for the call.
	oidc []oidcProgram
	// Now is when the call came, for checks that expire.
	Now time.Time
}

// token is the shared secret of the Receiver.
func (c *Call) token() []byte { return c.Secret["token"] }

// sender checks the calls of one Receiver type: how the sender proves a
// call is its own, and what the call must look like.
type sender interface {
	// verify checks a call. An error wrapping ErrUnauthorized means the
	// sender could not prove who it is, one wrapping errUnavailable that
	// the proof cannot be checked now; any other error is a malformed
	// call.
	verify(ctx context.Context, c *Call) (Verdict, error)
}

// keyed is a sender whose check needs keys of the Secret besides "token".
type keyed interface {
	secretKeys() []string
}

// deps is what some senders need beyond the call.
type deps struct {
	// google holds Google's ID token signing keys, for gcr.
	google *googleKeys
	// oidc holds the OIDC issuers' signing keys, for generic-oidc.
	oidc *oidcIssuers
}

// senders maps each Receiver type to its check. Adding a type is a file
// with its sender and a line here.
func senders(d deps) map[string]sender {
	return map[string]sender{
		notificationv1.GenericReceiver:     genericSender{},
		notificationv1.GenericHMACReceiver: genericHMACSender{},
		notificationv1.GenericOIDCReceiver: genericOIDCSender{issuers: d.oidc},
		notificationv1.GitHubReceiver:      githubSender{},
		notificationv1.GitLabReceiver:      gitlabSender{},
		notificationv1.BitbucketReceiver:   bitbucketSender{},
		notificationv1.HarborReceiver:      harborSender{},
		notificationv1.DockerHubReceiver:   dockerHubSender{},
		notificationv1.QuayReceiver:        quaySender{},
		notificationv1.GCRReceiver:         gcrSender{keys: d.google},
		notificationv1.NexusReceiver:       nexusSender{},
		notificationv1.ACRReceiver:         acrSender{},
		notificationv1.CDEventsReceiver:    cdeventsSender{},
	}
}

// Types lists the Receiver types the endpoint checks.
func Types() []string {
	var out []string
	for t := range senders(deps{}) {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// verify checks a call against the Receiver's type.
func verify(ctx context.Context, d deps, typ string, c *Call) (Verdict, error) {
	s, ok := senders(d)[typ]
	if !ok {
		return Verdict{}, fmt.Errorf("receiver type %q is not supported", typ)
	}
	return s.verify(ctx, c)
}

// secretKeys lists the keys a Receiver of the type needs in its Secret.
func secretKeys(typ string) []string {
	keys := []string{"token"}
	if k, ok := senders(deps{})[typ].(keyed); ok {
		keys = append(keys, k.secretKeys()...)
	}
	return keys
}

// filter lets an event through when no events are listed or it is one.
func filter(events []string, event, header string) Verdict {
	if len(events) == 0 || slices.ContainsFunc(events, func(e string) bool { return strings.EqualFold(e, event) }) {
		return Verdict{Trigger: true}
	}
	return Verdict{Reason: fmt.Sprintf("%s %q is not in spec.events", header, event)}
}

// sameToken compares a value a call sent with the token in constant time.
func sameToken(got string, token []byte) bool {
	return subtle.ConstantTimeCompare([]byte(got), token) == 1
}

// checkHMAC checks a hex digest against the HMAC of body keyed by token,
// in constant time.
func checkHMAC(newHash func() hash.Hash, digest string, token, body []byte) error {
	want, err := hex.DecodeString(digest)
	if err != nil {
		return fmt.Errorf("digest is not hex: %w", ErrUnauthorized)
	}
	mac := hmac.New(newHash, token)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return fmt.Errorf("signature does not match the body: %w", ErrUnauthorized)
	}
	return nil
}
