// Package analysis evaluates a Canary's metrics at each analysis step: it
// resolves MetricTemplates and the built-in metrics, renders their
// queries, runs them all at once through cached providers, and turns the
// values into an answer for the state machine under each metric's
// no-data policy.
package analysis

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Model is what a metric query is rendered with. Templates call its
// fields as functions, as in Flagger: {{ name }}, {{ namespace }},
// {{ target }}, {{ service }}, {{ ingress }}, {{ route }}, {{ interval }}
// and {{ variables.key }}; and {{ revision }}, the canary's revision as
// Sluice tracks it: a Knative Revision's name, a hash of the pod template
// for workloads. {{ x | underscore }} writes every character
// of x that is not a letter, digit or _ as _, as Skipper does in its
// route ids.
type Model struct {
	Name      string
	Namespace string
	Target    string
	Service   string
	Ingress   string
	Route     string
	Revision  string
	Interval  string
	Variables map[string]string
}

// ModelFor builds the model of one of a Canary's metrics.
func ModelFor(c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric) Model {
	model := Model{
		Name:      c.Name,
		Namespace: c.Namespace,
		Target:    c.Spec.TargetRef.Name,
		Service:   c.Spec.TargetRef.Name,
		Ingress:   c.Spec.TargetRef.Name,
		Route:     c.Spec.TargetRef.Name,
		Revision:  c.Status.LastAppliedSpec,
		Interval:  m.Interval,
		Variables: m.TemplateVariables,
	}
	if c.Spec.Service.Name != "" {
		model.Service = c.Spec.Service.Name
	}
	if c.Spec.IngressRef != nil {
		model.Ingress = c.Spec.IngressRef.Name
	}
	if ref := c.Spec.Service.RouteRef; ref != nil {
		model.Route = ref.Name
	} else if c.Spec.RouteRef != nil {
		model.Route = c.Spec.RouteRef.Name
	}
	if model.Interval == "" {
		model.Interval = defaultInterval
	}
	if model.Variables == nil {
		model.Variables = map[string]string{}
	}
	return model
}

// defaultInterval is a metric's window when it sets none (the CRD default).
const defaultInterval = "1m"

// Render executes a query template. A missing variable is an error, not
// "<no value>" sent to the provider.
func Render(query string, m Model) (string, error) {
	t, err := template.New("query").Option("missingkey=error").Funcs(template.FuncMap{
		"name":      func() string { return m.Name },
		"namespace": func() string { return m.Namespace },
		"target":    func() string { return m.Target },
		"service":   func() string { return m.Service },
		"ingress":   func() string { return m.Ingress },
		"route":     func() string { return m.Route },
		"revision":  func() string { return m.Revision },
		"interval":  func() string { return m.Interval },
		"variables": func() map[string]string { return m.Variables },
		"underscore": func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
					return r
				}
				return '_'
			}, s)
		},
	}).Parse(query)
	if err != nil {
		return "", fmt.Errorf("parse: %w", err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, nil); err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	return out.String(), nil
}
