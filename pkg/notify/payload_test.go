package notify_test

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/notify"
)

// The payloads as each service documents its incoming webhook. They are
// decoded strictly: a field the documentation does not have fails.
type (
	// https://api.slack.com/messaging/webhooks, legacy attachments; also
	// Rocket.Chat's incoming webhook, which takes Slack's format.
	slackWebhook struct {
		Channel     string `json:"channel"`
		Username    string `json:"username"`
		Text        string `json:"text"`
		Attachments []struct {
			Color    string `json:"color"`
			Fallback string `json:"fallback"`
			Title    string `json:"title"`
			Fields   []struct {
				Title string `json:"title"`
				Value string `json:"value"`
				Short bool   `json:"short"`
			} `json:"fields"`
			MrkdwnIn []string `json:"mrkdwn_in"`
		} `json:"attachments"`
	}
	// https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
	// (Workflows: Adaptive Cards only).
	teamsWebhook struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Schema  string `json:"$schema"`
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type   string `json:"type"`
					Text   string `json:"text"`
					Weight string `json:"weight"`
					Size   string `json:"size"`
					Color  string `json:"color"`
					Wrap   bool   `json:"wrap"`
					Facts  []struct {
						Title string `json:"title"`
						Value string `json:"value"`
					} `json:"facts"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	// https://discord.com/developers/docs/resources/webhook#execute-webhook
	discordWebhook struct {
		Username string `json:"username"`
		Content  string `json:"content"`
		Embeds   []struct {
			Title  string `json:"title"`
			Color  int    `json:"color"`
			Fields []struct {
				Name   string `json:"name"`
				Value  string `json:"value"`
				Inline bool   `json:"inline"`
			} `json:"fields"`
		} `json:"embeds"`
	}
	// https://developers.google.com/workspace/chat/quickstart/webhooks and
	// the cardsV2 of https://developers.google.com/chat/api/reference/rest/v1/cards
	gchatWebhook struct {
		Text    string `json:"text"`
		CardsV2 []struct {
			CardID string `json:"cardId"`
			Card   struct {
				Header struct {
					Title    string `json:"title"`
					Subtitle string `json:"subtitle"`
				} `json:"header"`
				Sections []struct {
					Widgets []struct {
						DecoratedText struct {
							TopLabel string `json:"topLabel"`
							Text     string `json:"text"`
							WrapText bool   `json:"wrapText"`
						} `json:"decoratedText"`
					} `json:"widgets"`
				} `json:"sections"`
			} `json:"card"`
		} `json:"cardsV2"`
	}
)

// answerLikeTheService answers as each service does on success.
func answerLikeTheService(w http.ResponseWriter, r *http.Request, _ int) {
	switch r.URL.Path {
	case "/rocket":
		_, _ = io.WriteString(w, `{"success":true}`)
	case "/msteams":
		w.WriteHeader(http.StatusAccepted)
	case "/discord":
		w.WriteHeader(http.StatusNoContent)
	case "/gchat":
		_, _ = io.WriteString(w, `{"name":"spaces/AAAA/messages/BBBB","text":"..."}`)
	default:
		_, _ = io.WriteString(w, "ok")
	}
}

func TestEachProviderTypePostsItsDocumentedWebhookPayload(t *testing.T) {
	wantFields := map[string]string{
		"Target":        "Deployment/podinfo",
		"Phase":         "Progressing",
		"Weight":        "20%",
		"Failed checks": "2/5",
		"Metric":        "request-success-rate: 98.5 (expected at least 99)",
		"Cluster":       "prod-eu",
	}
	tests := []struct {
		typ   sluicev1beta1.AlertProviderType
		check func(t *testing.T, body []byte, text, title string)
	}{
		{typ: "slack", check: func(t *testing.T, body []byte, text, title string) {
			var m slackWebhook
			decodeStrict(t, body, &m)
			// Slack reads < as markup: values are escaped.
			text = strings.ReplaceAll(text, "<", "&lt;")
			if m.Channel != "#deploys" || m.Username != "sluice-bot" || m.Text != text || len(m.Attachments) != 1 {
				t.Fatalf("message = %+v, want channel #deploys, username sluice-bot, text %q and one attachment", m, text)
			}
			a := m.Attachments[0]
			fields := map[string]string{}
			for _, f := range a.Fields {
				fields[f.Title] = f.Value
			}
			if a.Color != "#A30200" || a.Title != title || a.Fallback != title || !maps.Equal(fields, wantFields) {
				t.Errorf("attachment = %+v, want the error colour, title %q and fields %v", a, title, wantFields)
			}
		}},
		{typ: "rocket", check: func(t *testing.T, body []byte, text, title string) {
			var m slackWebhook
			decodeStrict(t, body, &m)
			if m.Channel != "#deploys" || m.Username != "sluice-bot" || m.Text != text || len(m.Attachments) != 1 {
				t.Fatalf("message = %+v, want channel #deploys, username sluice-bot, text %q and one attachment", m, text)
			}
			a := m.Attachments[0]
			fields := map[string]string{}
			for _, f := range a.Fields {
				fields[f.Title] = f.Value
			}
			if a.Color != "#A30200" || a.Title != title || !maps.Equal(fields, wantFields) {
				t.Errorf("attachment = %+v, want the error colour, title %q and fields %v", a, title, wantFields)
			}
		}},
		{typ: "msteams", check: func(t *testing.T, body []byte, text, title string) {
			var m teamsWebhook
			decodeStrict(t, body, &m)
			if m.Type != "message" || len(m.Attachments) != 1 {
				t.Fatalf("message = %+v, want a message with one attachment", m)
			}
			a := m.Attachments[0]
			c := a.Content
			if a.ContentType != "application/vnd.microsoft.card.adaptive" || c.Schema != "http://adaptivecards.io/schemas/adaptive-card.json" || c.Type != "AdaptiveCard" || c.Version != "1.4" || len(c.Body) != 3 {
				t.Fatalf("attachment = %+v, want an Adaptive Card 1.4 with a title, the text and facts", a)
			}
			heading, textBlock, factSet := c.Body[0], c.Body[1], c.Body[2]
			if heading.Type != "TextBlock" || heading.Text != title || heading.Weight != "Bolder" || heading.Color != "Attention" {
				t.Errorf("heading = %+v, want a bold TextBlock %q in the Attention colour", heading, title)
			}
			if textBlock.Type != "TextBlock" || textBlock.Text != text || !textBlock.Wrap {
				t.Errorf("text block = %+v, want a wrapped TextBlock %q", textBlock, text)
			}
			facts := map[string]string{}
			for _, f := range factSet.Facts {
				facts[f.Title] = f.Value
			}
			if factSet.Type != "FactSet" || !maps.Equal(facts, wantFields) {
				t.Errorf("fact set = %+v, want the facts %v", factSet, wantFields)
			}
		}},
		{typ: "discord", check: func(t *testing.T, body []byte, text, title string) {
			var m discordWebhook
			decodeStrict(t, body, &m)
			if m.Username != "sluice-bot" || m.Content != text || len(m.Embeds) != 1 {
				t.Fatalf("message = %+v, want username sluice-bot, content %q and one embed", m, text)
			}
			e := m.Embeds[0]
			fields := map[string]string{}
			for _, f := range e.Fields {
				fields[f.Name] = f.Value
			}
			if e.Title != title || e.Color != 0xA30200 || !maps.Equal(fields, wantFields) {
				t.Errorf("embed = %+v, want title %q, the error colour and fields %v", e, title, wantFields)
			}
		}},
		{typ: "gchat", check: func(t *testing.T, body []byte, text, title string) {
			var m gchatWebhook
			decodeStrict(t, body, &m)
			if m.Text != text || len(m.CardsV2) != 1 || len(m.CardsV2[0].Card.Sections) != 1 {
				t.Fatalf("message = %+v, want text %q and one card with one section", m, text)
			}
			card := m.CardsV2[0]
			fields := map[string]string{}
			for _, w := range card.Card.Sections[0].Widgets {
				fields[w.DecoratedText.TopLabel] = w.DecoratedText.Text
			}
			if card.CardID == "" || card.Card.Header.Title != title || card.Card.Header.Subtitle != "error" || !maps.Equal(fields, wantFields) {
				t.Errorf("card = %+v, want an id, title %q, subtitle error and fields %v", card, title, wantFields)
			}
		}},
	}
	rc := newReceiver(t, answerLikeTheService)
	d, logs := start(t, notify.Options{ClusterName: "prod-eu"})
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			e := newEnv(t)
			e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: tt.typ, Channel: "#deploys", Username: "sluice-bot", Address: rc.URL + "/" + string(tt.typ)}, nil)
			c := e.canary(alertTo("chat", sluicev1beta1.SeverityInfo))

			if err := d.Notify(t.Context(), c, rollback()); err != nil {
				t.Fatal(err)
			}

			got := rc.waitFor(t, "/"+string(tt.typ), 1)[0]
			if got.Method != http.MethodPost || !strings.HasPrefix(got.Header.Get("Content-Type"), "application/json") {
				t.Errorf("request = %s with Content-Type %q, want a POST of JSON", got.Method, got.Header.Get("Content-Type"))
			}
			text := "podinfo." + e.ns + " in prod-eu: " + rollback().Message + "\nMetric request-success-rate is 98.5, expected at least 99"
			tt.check(t, got.Body, text, "🚨 podinfo."+e.ns+" RolledBack")
		})
	}
	logs.waitFor(t, "alert sent", len(tests))
	if dropped := logs.with("alert dropped"); len(dropped) > 0 {
		t.Errorf("alerts dropped: %v", dropped)
	}
}
