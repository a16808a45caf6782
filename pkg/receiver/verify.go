package receiver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // generic-hmac senders may sign with SHA-1; it is their choice, as in Flux.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
)

// ErrUnauthorized is a call whose signature or token does not match.
var ErrUnauthorized = errors.New("unauthorized")

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
}

// Verify checks a call against the Receiver's type, token and events. An
// error wrapping ErrUnauthorized means the sender could not prove who it
// is; any other error is a malformed call.
func Verify(typ string, token []byte, events []string, h http.Header, body []byte) (Verdict, error) {
	switch typ {
	case notificationv1.GenericReceiver:
		return Verdict{Trigger: true}, nil
	case notificationv1.GenericHMACReceiver:
		if err := checkSignature(h.Get("X-Signature"), token, body); err != nil {
			return Verdict{}, fmt.Errorf("header X-Signature: %w", err)
		}
		return Verdict{Trigger: true}, nil
	case notificationv1.GitHubReceiver:
		sig := h.Get("X-Hub-Signature-256")
		if !strings.HasPrefix(sig, "sha256=") {
			return Verdict{}, fmt.Errorf("header X-Hub-Signature-256 must be sha256=<hex>: %w", ErrUnauthorized)
		}
		if err := checkSignature(sig, token, body); err != nil {
			return Verdict{}, fmt.Errorf("header X-Hub-Signature-256: %w", err)
		}
		event := h.Get("X-GitHub-Event")
		if event == "ping" {
			return Verdict{Reason: "GitHub ping answered"}, nil
		}
		return filter(events, event, "X-GitHub-Event"), nil
	case notificationv1.GitLabReceiver:
		if subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), token) != 1 {
			return Verdict{}, fmt.Errorf("header X-Gitlab-Token does not match the token: %w", ErrUnauthorized)
		}
		return filter(events, h.Get("X-Gitlab-Event"), "X-Gitlab-Event"), nil
	}
	return Verdict{}, fmt.Errorf("receiver type %q is not supported", typ)
}

// filter lets an event through when no events are listed or it is one.
func filter(events []string, event, header string) Verdict {
	if len(events) == 0 || slices.ContainsFunc(events, func(e string) bool { return strings.EqualFold(e, event) }) {
		return Verdict{Trigger: true}
	}
	return Verdict{Reason: fmt.Sprintf("%s %q is not in spec.events", header, event)}
}

// checkSignature checks "<algorithm>=<hex HMAC of body keyed by token>".
func checkSignature(sig string, token, body []byte) error {
	algo, digest, ok := strings.Cut(sig, "=")
	if !ok {
		return fmt.Errorf("missing or not <algorithm>=<hex>: %w", ErrUnauthorized)
	}
	var newHash func() hash.Hash
	switch strings.ToLower(algo) {
	case "sha1":
		newHash = sha1.New
	case "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	default:
		return fmt.Errorf("algorithm %q is not sha1, sha256 or sha512: %w", algo, ErrUnauthorized)
	}
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
