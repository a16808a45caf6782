package receiver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
)

// bitbucketSender checks X-Hub-Signature, Bitbucket Server's
// "sha256=<hex>" HMAC-SHA256 of the body keyed by the token, and filters
// on X-Event-Key. Only SHA-256 is accepted: it is the one Bitbucket signs
// with. The test call, "diagnostics:ping", is answered and never
// triggers.
type bitbucketSender struct{}

func (bitbucketSender) verify(_ context.Context, c *Call) (Verdict, error) {
	digest, ok := strings.CutPrefix(c.Header.Get("X-Hub-Signature"), "sha256=")
	if !ok {
		return Verdict{}, fmt.Errorf("header X-Hub-Signature must be sha256=<hex>: %w", ErrUnauthorized)
	}
	if err := checkHMAC(sha256.New, digest, c.token(), c.Body); err != nil {
		return Verdict{}, fmt.Errorf("header X-Hub-Signature: %w", err)
	}
	event := c.Header.Get("X-Event-Key")
	if event == "diagnostics:ping" {
		return Verdict{Reason: "Bitbucket ping answered"}, nil
	}
	return filter(c.Events, event, "X-Event-Key"), nil
}
