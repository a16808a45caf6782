package receiver

import (
	"context"
	"fmt"
)

// gitlabSender checks that X-Gitlab-Token is the token, and filters on
// X-Gitlab-Event.
type gitlabSender struct{}

func (gitlabSender) verify(_ context.Context, c *Call) (Verdict, error) {
	if !sameToken(c.Header.Get("X-Gitlab-Token"), c.token()) {
		return Verdict{}, fmt.Errorf("header X-Gitlab-Token does not match the token: %w", ErrUnauthorized)
	}
	return filter(c.Events, c.Header.Get("X-Gitlab-Event"), "X-Gitlab-Event"), nil
}
