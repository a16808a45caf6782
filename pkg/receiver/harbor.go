package receiver

import (
	"context"
	"fmt"
)

// harborSender checks that the Authorization header is the token: Harbor
// sends its webhook's "Auth Header" as it is, with no scheme added.
type harborSender struct{}

func (harborSender) verify(_ context.Context, c *Call) (Verdict, error) {
	if !sameToken(c.Header.Get("Authorization"), c.token()) {
		return Verdict{}, fmt.Errorf("header Authorization does not match the token: %w", ErrUnauthorized)
	}
	return Verdict{Trigger: true}, nil
}
