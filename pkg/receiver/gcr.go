package receiver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// gcrSender checks a Google Pub/Sub push from a subscription to a
// registry's topic (gcr, Artifact Registry), as Pub/Sub authenticates
// it: the Authorization header is "Bearer <ID token>", a JWT that must be
// signed by one of Google's published keys and name the Secret's
// audience and service account. The body is then checked to be a push
// whose message data is a registry notification.
type gcrSender struct {
	keys *googleKeys
}

func (gcrSender) secretKeys() []string { return []string{"email", "audience"} }

// pubSubPush is the body of a Pub/Sub push.
type pubSubPush struct {
	Message struct {
		// Data is the message, base64: for a registry, its
		// notification.
		Data      string `json:"data"`
		MessageID string `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

func (s gcrSender) verify(ctx context.Context, c *Call) (Verdict, error) {
	token, ok := strings.CutPrefix(c.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return Verdict{}, fmt.Errorf("header Authorization must be Bearer <ID token>: %w", ErrUnauthorized)
	}
	if s.keys == nil {
		return Verdict{}, fmt.Errorf("no source of Google's signing keys: %w", errUnavailable)
	}
	if err := s.keys.verifyIDToken(ctx, token, string(c.Secret["audience"]), string(c.Secret["email"]), c.Now); err != nil {
		return Verdict{}, fmt.Errorf("header Authorization: %w", err)
	}

	var push pubSubPush
	if err := json.Unmarshal(c.Body, &push); err != nil {
		return Verdict{}, fmt.Errorf("body is not a Pub/Sub push: %w", err)
	}
	if push.Message.MessageID == "" || push.Subscription == "" {
		return Verdict{}, errors.New("body is not a Pub/Sub push: message.messageId or subscription is missing")
	}
	data, err := base64.StdEncoding.DecodeString(push.Message.Data)
	if err != nil {
		return Verdict{}, fmt.Errorf("body is not a Pub/Sub push: message.data is not base64: %w", err)
	}
	// The message a registry publishes on its topic: JSON with an action
	// (INSERT, DELETE), a digest and a tag. It is decoded as a map once,
	// for the resource filters, which read it as req.
	var note map[string]any
	if err := json.Unmarshal(data, &note); err != nil {
		return Verdict{}, fmt.Errorf("message.data is not a registry notification: %w", err)
	}
	action, _ := note["action"].(string)
	digest, _ := note["digest"].(string)
	tag, _ := note["tag"].(string)
	if action == "" || digest == "" && tag == "" {
		return Verdict{}, errors.New("message.data is not a registry notification: no action, or neither digest nor tag")
	}
	return Verdict{Trigger: true, Request: note}, nil
}
