package notify

import (
	"strings"
	"time"
)

// alertmanager posts an alert to Alertmanager's API,
// https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml
// (postAlerts), labelled with the event's object, its reason and severity,
// the object's own labels and the event's metadata, so that routes and
// silences can match on any of them.
type alertmanager struct{}

// alertmanagerAlert is one postableAlert.
type alertmanagerAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (alertmanager) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	// An address without the API path, as a person would copy it from the
	// browser, gets it.
	if path := strings.TrimSuffix(u.Path, "/"); !strings.HasSuffix(path, "/api/v2/alerts") {
		u = u.JoinPath("api/v2/alerts")
	}
	e := n.event
	labels := map[string]string{}
	// The object's labels first and the event's facts last, so that an
	// object label never hides one of them.
	for _, m := range []map[string]string{n.labels, e.Metadata} {
		for k, v := range m {
			if k = labelName(k); k != "" && v != "" {
				labels[k] = v
			}
		}
	}
	for k, v := range map[string]string{
		"alertname":           "Sluice" + e.InvolvedObject.Kind + e.Reason,
		"severity":            e.Severity,
		"reason":              e.Reason,
		"kind":                e.InvolvedObject.Kind,
		"name":                e.InvolvedObject.Name,
		"namespace":           e.InvolvedObject.Namespace,
		"reportingcontroller": e.ReportingController,
	} {
		if v != "" {
			labels[k] = v
		}
	}
	annotations := map[string]string{"message": e.Message}
	if s := e.Metadata[metaSummary]; s != "" {
		annotations["summary"] = s
	}
	return jsonPost(t.typ, u.String(), []alertmanagerAlert{{Labels: labels, Annotations: annotations, StartsAt: e.Timestamp.UTC()}})
}

// labelName makes a Kubernetes label key or a metadata key a Prometheus
// label name, [a-zA-Z_][a-zA-Z0-9_]*: app.kubernetes.io/name becomes
// app_kubernetes_io_name.
func labelName(k string) string {
	b := []byte(k)
	for i, c := range b {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if digit := i > 0 && c >= '0' && c <= '9'; !letter && !digit {
			b[i] = '_'
		}
	}
	return string(b)
}
