package analysis

import (
	"strings"
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func canaryForRender() *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{}
	c.Name, c.Namespace = "podinfo", "shop"
	c.Spec.TargetRef = sluicev1beta1.TargetReference{Kind: "Deployment", Name: "podinfo-app"}
	c.Spec.Service.Name = "podinfo-svc"
	c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{Name: "public"}
	c.Spec.Service.RouteRef = &sluicev1beta1.LocalObjectReference{Name: "web"}
	return c
}

func TestRenderCallsEveryTemplateFunction(t *testing.T) {
	c := canaryForRender()
	m := sluicev1beta1.CanaryMetric{Name: "errors", Interval: "30s", TemplateVariables: map[string]string{"direction": "inbound"}}
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"name is the Canary's name", `{{ name }}`, "podinfo"},
		{"namespace is the Canary's namespace", `{{ namespace }}`, "shop"},
		{"target is the target workload", `{{ target }}-primary`, "podinfo-app-primary"},
		{"service is spec.service.name", `{{ service }}`, "podinfo-svc"},
		{"ingress is spec.ingressRef", `{{ ingress }}`, "public"},
		{"route is spec.service.routeRef", `{{ route }}`, "web"},
		{"interval is the metric's interval", `rate(x[{{ interval }}])`, "rate(x[30s])"},
		{"variables reads templateVariables", `{{ variables.direction }}`, "inbound"},
		{"underscore writes what is not a word character as _, as Skipper's route ids do", `{{ target | underscore }}.{{ "a.b/c" | underscore }}`, "podinfo_app.a_b_c"},
		{"a whole query renders", `sum(rate(requests{namespace="{{ namespace }}",pod=~"{{ target }}-.*",direction="{{ variables.direction }}"}[{{ interval }}]))`,
			`sum(rate(requests{namespace="shop",pod=~"podinfo-app-.*",direction="inbound"}[30s]))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.query, ModelFor(c, m))
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRenderDefaultsFollowTheTarget(t *testing.T) {
	c := &sluicev1beta1.Canary{}
	c.Name, c.Namespace = "podinfo", "shop"
	c.Spec.TargetRef.Name = "app"
	got, err := Render(`{{ service }} {{ ingress }} {{ route }} {{ interval }}`, ModelFor(c, sluicev1beta1.CanaryMetric{}))
	if err != nil || got != "app app app 1m" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestABadTemplateIsAnErrorThatSaysWhy(t *testing.T) {
	c := canaryForRender()
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"a missing variable", `{{ variables.nope }}`, `map has no entry for key "nope"`},
		{"an unknown function", `{{ pod }}`, `function "pod" not defined`},
		{"an unclosed action", `sum(x{a="{{ target }"})`, "parse"},
		{"a field of the data", `{{ .Target }}`, "render"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.query, ModelFor(c, sluicev1beta1.CanaryMetric{}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		`sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-.*"}[{{ interval }}]))`,
		`{{ variables.direction }}`,
		`{{ range $k, $v := variables }}{{ $k }}={{ $v }}{{ end }}`,
		`{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`,
		`{{`, `}}`, `{{ .Missing }}`, `{{ printf "%s" name }}`,
	} {
		f.Add(seed)
	}
	c := canaryForRender()
	m := ModelFor(c, sluicev1beta1.CanaryMetric{TemplateVariables: map[string]string{"direction": "inbound"}})
	f.Fuzz(func(t *testing.T, query string) {
		out, err := Render(query, m)
		if err == nil && !strings.Contains(query, "{{") && out != query {
			t.Fatalf("a query without actions changed: %q -> %q", query, out)
		}
	})
}
