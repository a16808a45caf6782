package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/utils/ptr"
)

// FuzzMessageTemplate renders arbitrary messageTemplates: whatever the
// text, rendering ends quickly with a bounded, non-empty text.
func FuzzMessageTemplate(f *testing.F) {
	for _, seed := range []string{
		"",
		defaultTemplate,
		"{{.Name}}.{{.Namespace}} {{.Reason}}: {{.Message}}",
		"{{with .Metric}}{{.Name}} {{.Value}} {{.Min}} {{.Max}} {{.Range}}{{else}}no metric{{end}}",
		"{{.Metric.Range}}",
		"{{if gt .Weight 10}}high{{else if eq .Severity \"error\"}}bad{{end}}",
		"{{$x := .Name}}{{$x}}{{/* a comment */}}",
		"{{printf \"%s is %05.1f%%\" .Name 3.14159}}",
		"{{printf \"%999999999d\" 1}}",
		"{{printf \"%*d\" 999999999 1}}",
		"{{printf \"%[1]*d\" 999999999}}",
		"{{printf \"%.999999999f\" 1.0}}",
		"{{range 100000000}}x{{end}}",
		"{{range $i, $c := .Message}}{{$c}}{{end}}",
		"{{define \"a\"}}{{template \"a\" .}}{{template \"a\" .}}{{end}}{{template \"a\" .}}",
		"{{block \"b\" .}}{{.Name}}{{end}}",
		"{{call .Name}}",
		"{{index .Message 100000}}",
		"{{slice .Message 0 100000}}",
		"{{len .Name | printf \"%d\"}}",
		"{{html .Message}} {{js .Message}} {{urlquery .Message}}",
		strings.Repeat("{{.Message}}", 400),
		strings.Repeat("{{if .Name}}", 200) + "x" + strings.Repeat("{{end}}", 200),
		"{{",
		"}}",
		"{{end}}",
		"{{break}}",
		"{{.Nope}}",
		"{{nil}}",
		"\xff\xfe{{.Name}}",
		"   \n\t ",
	} {
		f.Add(seed)
	}
	withMetric := templateData{
		Name: "podinfo", Namespace: "test", Target: "Deployment/podinfo", Phase: "Progressing",
		Weight: 20, FailedChecks: 2, Reason: "RolledBack", Severity: "error", Cluster: "prod",
		Message: strings.Repeat("Rolling back Deployment/podinfo: request-success-rate 98.5 < 99. ", 10),
		Metric:  &templateMetric{Name: "request-success-rate", Value: "98.5", Min: ptr.To(99.0)},
	}
	withoutMetric := withMetric
	withoutMetric.Metric = nil
	f.Fuzz(func(t *testing.T, tmpl string) {
		for _, data := range []templateData{withMetric, withoutMetric} {
			out := render(tmpl, data, func(s string) string { return s })
			if strings.TrimSpace(out) == "" || len(out) > maxTextBytes {
				t.Fatalf("render(%q) = %d bytes %q, want a non-empty text of at most %d bytes", tmpl, len(out), out, maxTextBytes)
			}
			if utf8.ValidString(tmpl) && !utf8.ValidString(out) {
				t.Fatalf("render(%q) = %q, not UTF-8", tmpl, out)
			}
		}
	})
}

func TestALongMessageIsCutOnACharacterBoundary(t *testing.T) {
	data := templateData{Name: "podinfo", Namespace: "test", Message: strings.Repeat("é", maxTextBytes)}
	out := render("", data, func(s string) string { return s })
	if len(out) > maxTextBytes || !utf8.ValidString(out) || !strings.HasSuffix(out, "…") {
		t.Errorf("render = %d bytes, valid UTF-8 %v, ending %q; want at most %d bytes of UTF-8 ending with …", len(out), utf8.ValidString(out), out[len(out)-8:], maxTextBytes)
	}
}

func TestRetryAfterIsReadFromTheHeaderOrDiscordsBody(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		body   string
		want   time.Duration
	}{
		{name: "seconds", header: "30", want: 30 * time.Second},
		{name: "an HTTP date", header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "a date in the past", header: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{name: "Discord's body", body: `{"message":"You are being rate limited.","retry_after":64.57,"global":false}`, want: 64570 * time.Millisecond},
		{name: "the header before the body", header: "2", body: `{"retry_after":64.57}`, want: 2 * time.Second},
		{name: "an absurd wait is capped", header: "1e300", want: time.Hour},
		{name: "nothing", body: "rate_limited", want: 0},
		{name: "a negative number", header: "-5", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.header, []byte(tt.body), now); got != tt.want {
				t.Errorf("parseRetryAfter(%q, %q) = %s, want %s", tt.header, tt.body, got, tt.want)
			}
		})
	}
}
