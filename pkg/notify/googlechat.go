package notify

// googleChatFlaggerType is Flagger's name for Google Chat in an
// AlertProvider; Flux's Provider calls it googlechat.
const googleChatFlaggerType = "gchat"

// googleChat posts the text and a card to a space's webhook:
// https://developers.google.com/workspace/chat/quickstart/webhooks.
type googleChat struct{}

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

func (googleChat) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	m := n.message
	msg := gchatMessage{Text: m.text}
	if len(m.fields) > 0 {
		var s gchatSection
		for _, f := range m.fields {
			s.Widgets = append(s.Widgets, gchatWidget{DecoratedText: gchatDecoratedText{TopLabel: f.title, Text: f.value, WrapText: true}})
		}
		msg.CardsV2 = []gchatCard{{
			CardID: "sluice-alert",
			Card:   gchatCardBody{Header: gchatHeader{Title: m.title, Subtitle: m.severity}, Sections: []gchatSection{s}},
		}}
	}
	return jsonPost(t.typ, u.String(), msg)
}
