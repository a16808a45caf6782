package notify

// msTeams posts one Adaptive Card to a Teams Workflows webhook:
// https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using.
type msTeams struct{}

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

func (msTeams) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	m := n.message
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
	return jsonPost(t.typ, u.String(), teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{
			Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
			Type:    "AdaptiveCard",
			Version: "1.4",
			Body:    body,
		},
	}}})
}
