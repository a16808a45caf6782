package notify

import (
	"encoding/base64"
	"slices"
	"strings"
)

// grafana posts an annotation, https://grafana.com/docs/grafana/latest/developers/http_api/annotations/,
// tagged with the object and the event's metadata so that a dashboard
// shows releases and sync failures beside the graphs. The address is
// Grafana's /api/annotations; the Secret's token is a service account
// token, or username and password are basic auth.
type grafana struct{}

// grafanaAnnotation is the body of "Create Annotation".
type grafanaAnnotation struct {
	Time int64    `json:"time"`
	Tags []string `json:"tags"`
	Text string   `json:"text"`
}

func (grafana) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	if path := strings.TrimSuffix(u.Path, "/"); !strings.HasSuffix(path, "/api/annotations") {
		u = u.JoinPath("api/annotations")
	}
	e := n.event
	tags := []string{"sluice", strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.InvolvedObject.Namespace, e.Severity}
	if e.Reason != "" {
		tags = append(tags, e.Reason)
	}
	var meta []string
	for k, v := range e.Metadata {
		meta = append(meta, k+": "+v)
	}
	slices.Sort(meta)
	p, err := jsonPost(t.typ, u.String(), grafanaAnnotation{
		Time: e.Timestamp.UnixMilli(),
		Tags: append(tags, meta...),
		Text: n.message.title + "\n" + n.message.text,
	})
	switch {
	case t.token != "":
		p.header.Set("Authorization", "Bearer "+t.token)
	case t.user != "" || t.password != "":
		p.header.Set("Authorization", basicAuth(t.user, t.password))
	}
	return p, err
}

// basicAuth is the Authorization header of HTTP basic authentication.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
