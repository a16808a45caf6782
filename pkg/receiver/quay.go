package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// quaySender trusts its secret path, as Quay signs nothing, and checks
// the body is a Quay repository push: the image (docker_url) and the tags
// it updated.
type quaySender struct{}

// quayPayload is the part of a Quay "Push to Repository" notification's body
// that is checked.
type quayPayload struct {
	DockerURL   string   `json:"docker_url"`
	UpdatedTags []string `json:"updated_tags"`
}

func (quaySender) verify(_ context.Context, c *Call) (Verdict, error) {
	var push quayPayload
	if err := json.Unmarshal(c.Body, &push); err != nil {
		return Verdict{}, fmt.Errorf("body is not a Quay push: %w", err)
	}
	if push.DockerURL == "" || len(push.UpdatedTags) == 0 {
		return Verdict{}, errors.New("body is not a Quay push: docker_url or updated_tags is missing")
	}
	return Verdict{Trigger: true}, nil
}
