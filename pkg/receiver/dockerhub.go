package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// dockerHubSender trusts its secret path, as Docker Hub signs nothing,
// and checks the body is a Docker Hub push: an https callback_url (where
// Docker Hub takes a webhook chain's answer), the pushed tag and the
// repository's name.
type dockerHubSender struct{}

// dockerHubPayload is the part of a Docker Hub push webhook's body that is
// checked.
type dockerHubPayload struct {
	CallbackURL string `json:"callback_url"`
	PushData    struct {
		Tag string `json:"tag"`
	} `json:"push_data"`
	Repository struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

func (dockerHubSender) verify(_ context.Context, c *Call) (Verdict, error) {
	var push dockerHubPayload
	if err := json.Unmarshal(c.Body, &push); err != nil {
		return Verdict{}, fmt.Errorf("body is not a Docker Hub push: %w", err)
	}
	if u, err := url.Parse(push.CallbackURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return Verdict{}, fmt.Errorf("body is not a Docker Hub push: callback_url %q is not an https URL", push.CallbackURL)
	}
	if push.PushData.Tag == "" || push.Repository.RepoName == "" {
		return Verdict{}, errors.New("body is not a Docker Hub push: push_data.tag or repository.repo_name is missing")
	}
	return Verdict{Trigger: true}, nil
}
