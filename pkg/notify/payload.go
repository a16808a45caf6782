package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// slackAPI is the base of the Slack Web API, used with a bot token.
const slackAPI = "https://slack.com/api"

// post is an HTTP POST of JSON ready to be sent, again on a retry.
type post struct {
	url string
	// token is sent as a bearer token.
	token string
	body  []byte
	// check reads the body of a 2xx answer for a failure that the status
	// does not tell.
	check func(body []byte) error
}

// severityStyle is how a severity looks in each format.
type severityStyle struct {
	// color is a hex colour for Slack and Rocket.Chat attachments; rgb is
	// the same colour for Discord embeds.
	color string
	rgb   int
	// teams is an Adaptive Card TextBlock colour.
	teams string
	emoji string
}

func style(s sluicev1beta1.AlertSeverity) severityStyle {
	switch s {
	case sluicev1beta1.SeverityError:
		return severityStyle{color: "#A30200", rgb: 0xA30200, teams: "Attention", emoji: "🚨"}
	case sluicev1beta1.SeverityWarn:
		return severityStyle{color: "#DAA038", rgb: 0xDAA038, teams: "Warning", emoji: "⚠️"}
	}
	return severityStyle{color: "#2EB886", rgb: 0x2EB886, teams: "Good", emoji: "ℹ️"}
}

// build turns a message into the post an AlertProvider's service expects.
func build(p *sluicev1beta1.AlertProvider, ep endpoint, m message) (post, error) {
	if p.Spec.Type == "slack" && ep.token != "" {
		return buildSlackAPI(p, ep, m)
	}
	address, err := checkAddress(ep.address)
	if err != nil {
		return post{}, err
	}
	var payload any
	var check func([]byte) error
	switch p.Spec.Type {
	case "slack":
		payload = slackPayload(p, m, true)
	case "rocket":
		payload, check = slackPayload(p, m, false), checkRocketAnswer
	case "msteams":
		payload = teamsPayload(m)
	case "discord":
		payload = discordPayload(p, m)
	case "gchat":
		payload = gchatPayload(m)
	default:
		return post{}, fmt.Errorf("unknown type %q", p.Spec.Type)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return post{}, fmt.Errorf("encode %s payload: %w", p.Spec.Type, err)
	}
	return post{url: address, body: body, check: check}, nil
}

// Errors of checkAddress, which an AlertProvider's Ready reason tells
// apart.
var (
	errNoAddress      = errors.New("no address: set spec.address or the address key of the Secret in spec.secretRef")
	errInvalidAddress = errors.New("the address is not an http or https URL")
)

// checkAddress accepts an http or https URL. The URL itself stays out of
// errors and logs: webhook URLs carry their credentials.
func checkAddress(address string) (string, error) {
	if address == "" {
		return "", errNoAddress
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errInvalidAddress
	}
	return address, nil
}

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

// slackPayload puts the text first, where notifications show it, and the
// facts in a coloured attachment.
func slackPayload(p *sluicev1beta1.AlertProvider, m message, slack bool) slackMessage {
	a := slackAttachment{Color: style(m.severity).color, Title: m.title}
	for _, f := range m.fields {
		a.Fields = append(a.Fields, slackField{Title: f.title, Value: f.value, Short: f.short})
	}
	if slack {
		a.Fallback = m.title
		a.MrkdwnIn = []string{"text", "fields"}
	}
	return slackMessage{Channel: p.Spec.Channel, Username: p.Spec.Username, Text: m.text, Attachments: []slackAttachment{a}}
}

// buildSlackAPI posts with a bot token to chat.postMessage. The address,
// when set, replaces the API base (or is the full method URL).
func buildSlackAPI(p *sluicev1beta1.AlertProvider, ep endpoint, m message) (post, error) {
	base := ep.address
	if base == "" {
		base = slackAPI
	}
	if _, err := checkAddress(base); err != nil {
		return post{}, err
	}
	u, _ := url.Parse(base)
	if !strings.HasSuffix(u.Path, "/chat.postMessage") {
		u = u.JoinPath("chat.postMessage")
	}
	if p.Spec.Channel == "" {
		return post{}, errors.New("a Slack bot token needs spec.channel")
	}
	body, err := json.Marshal(slackPayload(p, m, true))
	if err != nil {
		return post{}, fmt.Errorf("encode slack payload: %w", err)
	}
	return post{url: u.String(), token: ep.token, body: body, check: checkSlackAPIAnswer}, nil
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

// Microsoft Teams Workflows webhook payload: a message with one Adaptive
// Card.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []teamsElement `json:"body"`
}

type teamsElement struct {
	Type   string      `json:"type"`
	Text   string      `json:"text,omitempty"`
	Weight string      `json:"weight,omitempty"`
	Size   string      `json:"size,omitempty"`
	Color  string      `json:"color,omitempty"`
	Wrap   bool        `json:"wrap,omitempty"`
	Facts  []teamsFact `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

func teamsPayload(m message) teamsMessage {
	body := []teamsElement{
		{Type: "TextBlock", Text: m.title, Weight: "Bolder", Size: "Medium", Color: style(m.severity).teams, Wrap: true},
		{Type: "TextBlock", Text: m.text, Wrap: true},
	}
	if len(m.fields) > 0 {
		facts := teamsElement{Type: "FactSet"}
		for _, f := range m.fields {
			facts.Facts = append(facts.Facts, teamsFact{Title: f.title, Value: f.value})
		}
		body = append(body, facts)
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{
			Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
			Type:    "AdaptiveCard",
			Version: "1.4",
			Body:    body,
		},
	}}}
}

// Discord execute-webhook payload.
type discordMessage struct {
	Username string         `json:"username,omitempty"`
	Content  string         `json:"content"`
	Embeds   []discordEmbed `json:"embeds"`
}

type discordEmbed struct {
	Title  string         `json:"title"`
	Color  int            `json:"color"`
	Fields []discordField `json:"fields,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// Discord's limits on content, embed titles and field names and values;
// a longer message is refused.
const (
	discordContentMax = 2000
	discordTitleMax   = 256
	discordNameMax    = 256
	discordValueMax   = 1024
)

func discordPayload(p *sluicev1beta1.AlertProvider, m message) discordMessage {
	e := discordEmbed{Title: cutRunes(m.title, discordTitleMax), Color: style(m.severity).rgb}
	for _, f := range m.fields {
		e.Fields = append(e.Fields, discordField{Name: cutRunes(f.title, discordNameMax), Value: cutRunes(f.value, discordValueMax), Inline: f.short})
	}
	return discordMessage{Username: p.Spec.Username, Content: cutRunes(m.text, discordContentMax), Embeds: []discordEmbed{e}}
}

// cutRunes cuts s to at most n characters, marking the cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Google Chat webhook payload: the text and a card (cardsV2) of facts.
type gchatMessage struct {
	Text    string      `json:"text"`
	CardsV2 []gchatCard `json:"cardsV2,omitempty"`
}

type gchatCard struct {
	CardID string        `json:"cardId"`
	Card   gchatCardBody `json:"card"`
}

type gchatCardBody struct {
	Header   gchatHeader    `json:"header"`
	Sections []gchatSection `json:"sections"`
}

type gchatHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type gchatSection struct {
	Widgets []gchatWidget `json:"widgets"`
}

type gchatWidget struct {
	DecoratedText gchatDecoratedText `json:"decoratedText"`
}

type gchatDecoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
	WrapText bool   `json:"wrapText"`
}

func gchatPayload(m message) gchatMessage {
	msg := gchatMessage{Text: m.text}
	if len(m.fields) == 0 {
		return msg
	}
	var s gchatSection
	for _, f := range m.fields {
		s.Widgets = append(s.Widgets, gchatWidget{DecoratedText: gchatDecoratedText{TopLabel: f.title, Text: f.value, WrapText: true}})
	}
	msg.CardsV2 = []gchatCard{{
		CardID: "sluice-alert",
		Card:   gchatCardBody{Header: gchatHeader{Title: m.title, Subtitle: string(m.severity)}, Sections: []gchatSection{s}},
	}}
	return msg
}
