package receiver

import (
	"context"
	"fmt"
	"strings"
)

// githubSender checks X-Hub-Signature-256, GitHub's "sha256=<hex>"
// HMAC-SHA256 of the body keyed by the token, and filters on
// X-GitHub-Event. A ping is answered and never triggers.
type githubSender struct{}

func (githubSender) verify(_ context.Context, c *Call) (Verdict, error) {
	sig := c.Header.Get("X-Hub-Signature-256")
	if !strings.HasPrefix(sig, "sha256=") {
		return Verdict{}, fmt.Errorf("header X-Hub-Signature-256 must be sha256=<hex>: %w", ErrUnauthorized)
	}
	if err := checkSignature(sig, c.token(), c.Body); err != nil {
		return Verdict{}, fmt.Errorf("header X-Hub-Signature-256: %w", err)
	}
	event := c.Header.Get("X-GitHub-Event")
	if event == "ping" {
		return Verdict{Reason: "GitHub ping answered"}, nil
	}
	return filter(c.Events, event, "X-GitHub-Event"), nil
}
