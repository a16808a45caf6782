package receiver

import (
	"context"
	"crypto/sha1" //nolint:gosec // generic-hmac senders may sign with SHA-1; it is their choice, as in Flux.
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// genericHMACSender checks X-Signature, "<algorithm>=<hex HMAC of the
// body keyed by the token>" with sha1, sha256 or sha512.
type genericHMACSender struct{}

func (genericHMACSender) verify(_ context.Context, c *Call) (Verdict, error) {
	if err := checkSignature(c.Header.Get("X-Signature"), c.token(), c.Body); err != nil {
		return Verdict{}, fmt.Errorf("header X-Signature: %w", err)
	}
	return Verdict{Trigger: true}, nil
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
	return checkHMAC(newHash, digest, token, body)
}
