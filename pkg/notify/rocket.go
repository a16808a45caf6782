package notify

import (
	"encoding/json"
	"fmt"
)

// rocket posts to a Rocket.Chat incoming webhook, which takes Slack's
// format: https://docs.rocket.chat/use-rocket.chat/workspace-administration/integrations.
type rocket struct{}

func (rocket) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	p, err := jsonPost(t.typ, u.String(), slackPayload(t, n.message, false))
	p.check = checkRocketAnswer
	return p, err
}

// checkRocketAnswer reads Rocket.Chat's {"success": false} failures.
func checkRocketAnswer(body []byte) error {
	var answer struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Success != nil && !*answer.Success {
		return fmt.Errorf("rocket.chat answered success: false: %s", orElse(answer.Error, "no error given"))
	}
	return nil
}
