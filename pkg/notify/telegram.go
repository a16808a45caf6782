package notify

import (
	"encoding/json"
	"errors"
	"fmt"
)

// telegramAPI is the Bot API's base; the address replaces it.
const telegramAPI = "https://api.telegram.org"

// telegram sends a message to the chat in spec.channel through the Bot
// API's sendMessage, https://core.telegram.org/bots/api#sendmessage, with
// the Secret's token as the bot token.
type telegram struct{}

// telegramMessage is the body of sendMessage. The text is plain: no
// parse_mode, so that nothing in a message can break its markup.
type telegramMessage struct {
	ChatID string `json:"chat_id"`
	Text   string `json:"text"`
}

// telegramTextMax is the longest text sendMessage accepts.
const telegramTextMax = 4096

func (telegram) build(t target, n note) (post, error) {
	u, err := checkAddress(orElse(t.address, telegramAPI))
	if err != nil {
		return post{}, err
	}
	if t.token == "" {
		return post{}, errNoToken
	}
	if t.channel == "" {
		return post{}, errors.New("telegram needs spec.channel, the chat id")
	}
	text := n.message.title + "\n" + n.message.text
	for _, f := range n.message.fields {
		text += "\n" + f.title + ": " + f.value
	}
	p, err := jsonPost(t.typ, u.JoinPath("bot"+t.token, "sendMessage").String(), telegramMessage{ChatID: t.channel, Text: cutRunes(text, telegramTextMax)})
	p.check = checkTelegramAnswer
	return p, err
}

// checkTelegramAnswer reads the Bot API's {"ok": false} failures.
func checkTelegramAnswer(body []byte) error {
	var answer struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("telegram answered with no JSON: %w", err)
	}
	if !answer.OK {
		return fmt.Errorf("telegram answered ok: false: %s", orElse(answer.Description, "no description given"))
	}
	return nil
}
