package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// slackAPI is the base of the Slack Web API, used with a bot token.
const slackAPI = "https://slack.com/api"

// slack posts to an incoming webhook, or with a bot token to the Web
// API's chat.postMessage: https://api.slack.com/messaging/webhooks.
type slack struct{}

// Slack incoming webhook and Rocket.Chat incoming webhook payload; the Web
// API's chat.postMessage takes the same fields.
type slackMessage struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments,omitempty"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback,omitempty"`
	Title    string       `json:"title"`
	Fields   []slackField `json:"fields,omitempty"`
	MrkdwnIn []string     `json:"mrkdwn_in,omitempty"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// escape: Slack reads &, < and > as control characters in text.
func (slack) escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (s slack) build(t target, n note) (post, error) {
	if t.token != "" {
		return s.buildAPI(t, n)
	}
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	return jsonPost(t.typ, u.String(), slackPayload(t, n.message, true))
}

// slackPayload puts the text first, where notifications show it, and the
// facts in a coloured attachment.
func slackPayload(t target, m message, slack bool) slackMessage {
	a := slackAttachment{Color: style(m.severity).color, Title: m.title}
	for _, f := range m.fields {
		a.Fields = append(a.Fields, slackField{Title: f.title, Value: f.value, Short: f.short})
	}
	if slack {
		a.Fallback = m.title
		a.MrkdwnIn = []string{"text", "fields"}
	}
	return slackMessage{Channel: t.channel, Username: t.username, Text: m.text, Attachments: []slackAttachment{a}}
}

// buildAPI posts with a bot token to chat.postMessage. The address, when
// set, replaces the API base (or is the full method URL).
func (slack) buildAPI(t target, n note) (post, error) {
	u, err := checkAddress(orElse(t.address, slackAPI))
	if err != nil {
		return post{}, err
	}
	if !strings.HasSuffix(u.Path, "/chat.postMessage") {
		u = u.JoinPath("chat.postMessage")
	}
	if t.channel == "" {
		return post{}, errors.New("a Slack bot token needs spec.channel")
	}
	p, err := jsonPost(t.typ, u.String(), slackPayload(t, n.message, true))
	p.header.Set("Authorization", "Bearer "+t.token)
	p.check = checkSlackAPIAnswer
	return p, err
}

// checkSlackAPIAnswer reads the Web API's answer, which is 200 with
// "ok": false on failure.
func checkSlackAPIAnswer(body []byte) error {
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("slack answered with no JSON: %w", err)
	}
	if !answer.OK {
		return fmt.Errorf("slack answered ok: false: %s", orElse(answer.Error, "no error given"))
	}
	return nil
}
