package notify

// discord posts an embed to a webhook:
// https://discord.com/developers/docs/resources/webhook#execute-webhook.
type discord struct{}

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

func (discord) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	m := n.message
	e := discordEmbed{Title: cutRunes(m.title, discordTitleMax), Color: style(m.severity).rgb}
	for _, f := range m.fields {
		e.Fields = append(e.Fields, discordField{Name: cutRunes(f.title, discordNameMax), Value: cutRunes(f.value, discordValueMax), Inline: f.short})
	}
	return jsonPost(t.typ, u.String(), discordMessage{Username: t.username, Content: cutRunes(m.text, discordContentMax), Embeds: []discordEmbed{e}})
}
