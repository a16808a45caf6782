package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// acrSender trusts its secret path, as Azure Container Registry signs
// nothing, and checks the body is a registry event: an action and the
// repository it acted on. The "ping" ACR sends to test a webhook is
// answered and never triggers.
type acrSender struct{}

// acrPayload is the part of an Azure Container Registry webhook's body that
// is checked.
type acrPayload struct {
	Action string `json:"action"`
	Target struct {
		Repository string `json:"repository"`
	} `json:"target"`
}

func (acrSender) verify(_ context.Context, c *Call) (Verdict, error) {
	var event acrPayload
	if err := json.Unmarshal(c.Body, &event); err != nil {
		return Verdict{}, fmt.Errorf("body is not an ACR event: %w", err)
	}
	switch {
	case event.Action == "":
		return Verdict{}, errors.New("body is not an ACR event: no action")
	case event.Action == "ping":
		return Verdict{Reason: "ACR ping answered"}, nil
	case event.Target.Repository == "":
		return Verdict{}, errors.New("body is not an ACR event: no target.repository")
	}
	return Verdict{Trigger: true}, nil
}
