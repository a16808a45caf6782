package receiver

import (
	"context"
	"crypto/sha1" //nolint:gosec // Nexus signs its webhooks with HMAC-SHA1; HMAC does not rest on SHA-1's collision resistance.
	"encoding/json"
	"errors"
	"fmt"
)

// nexusSender checks X-Nexus-Webhook-Signature, Nexus Repository's hex
// HMAC-SHA1 of the body keyed by the token, then that the body is a Nexus
// event with an action.
type nexusSender struct{}

// nexusPayload is the part of a Nexus repository, component or asset
// webhook's body that is checked.
type nexusPayload struct {
	Action string `json:"action"`
}

func (nexusSender) verify(_ context.Context, c *Call) (Verdict, error) {
	sig := c.Header.Get("X-Nexus-Webhook-Signature")
	if sig == "" {
		return Verdict{}, fmt.Errorf("header X-Nexus-Webhook-Signature is missing: %w", ErrUnauthorized)
	}
	if err := checkHMAC(sha1.New, sig, c.token(), c.Body); err != nil {
		return Verdict{}, fmt.Errorf("header X-Nexus-Webhook-Signature: %w", err)
	}
	var event nexusPayload
	if err := json.Unmarshal(c.Body, &event); err != nil {
		return Verdict{}, fmt.Errorf("body is not a Nexus event: %w", err)
	}
	if event.Action == "" {
		return Verdict{}, errors.New("body is not a Nexus event: no action")
	}
	return Verdict{Trigger: true}, nil
}
