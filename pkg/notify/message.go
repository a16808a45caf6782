package notify

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
)

// maxTextBytes caps the text of an alert: Slack advises at most 4000
// characters, and a template must not make the operator build megabytes.
const maxTextBytes = 4000

// maxPrintfWidth caps the width and precision of printf verbs in
// messageTemplates, which would otherwise allocate whatever they ask for.
const maxPrintfWidth = 256

// defaultTemplate is the alert text unless the AlertProvider has a
// messageTemplate.
const defaultTemplate = `{{.Name}}.{{.Namespace}}{{with .Cluster}} in {{.}}{{end}}: {{or .Message .Reason}}` +
	`{{with .Metric}}` + "\n" + `Metric {{.Name}} is {{or .Value "without data"}}{{with .Range}}, expected {{.}}{{end}}{{end}}`

// parsedDefault is immutable once parsed, and safe for concurrent use.
var parsedDefault = template.Must(parseTemplate(defaultTemplate))

// templateData is what a messageTemplate renders, as documented on
// AlertProviderSpec.MessageTemplate.
type templateData struct {
	Name         string
	Namespace    string
	Target       string
	Phase        string
	Weight       int
	FailedChecks int
	Reason       string
	Message      string
	Severity     string
	Cluster      string
	// Metric is nil when no metric failed.
	Metric *templateMetric
}

// templateMetric is a metric that failed the step.
type templateMetric struct {
	Name  string
	Value string
	Min   *float64
	Max   *float64
}

// Range is the metric's accepted range in words, empty when unbounded.
func (m *templateMetric) Range() string {
	switch {
	case m.Min != nil && m.Max != nil:
		return fmt.Sprintf("between %s and %s", formatFloat(*m.Min), formatFloat(*m.Max))
	case m.Min != nil:
		return "at least " + formatFloat(*m.Min)
	case m.Max != nil:
		return "at most " + formatFloat(*m.Max)
	}
	return ""
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// message is an alert ready to be put into a provider's payload. Its
// strings are escaped for the provider's markup.
type message struct {
	severity string
	// title names the Canary and the event.
	title string
	// text is the rendered template.
	text   string
	fields []field
}

// field is a labelled value shown next to the text where the format has
// room for it.
type field struct {
	title, value string
	short        bool
}

// newMessage renders a Canary's alert for an AlertProvider of type typ
// with its messageTemplate (empty: the default).
func newMessage(c *sluicev1beta1.Canary, a alert.Canary, cluster, typ, tmpl string) message {
	esc := escapeFor(typ)
	data := templateData{
		Name:         esc(c.Name),
		Namespace:    esc(c.Namespace),
		Target:       esc(c.Spec.TargetRef.Kind + "/" + c.Spec.TargetRef.Name),
		Phase:        esc(string(c.Status.Phase)),
		Weight:       c.Status.CanaryWeight,
		FailedChecks: c.Status.FailedChecks,
		Reason:       esc(a.Reason),
		Message:      esc(a.Message),
		Severity:     string(severityOrInfo(a.Severity)),
		Cluster:      esc(cluster),
	}
	if m := a.Metric; m != nil {
		data.Metric = &templateMetric{Name: esc(m.Name), Value: esc(m.Value), Min: m.Min, Max: m.Max}
	}
	return message{
		severity: string(severityOrInfo(a.Severity)),
		title:    fmt.Sprintf("%s %s.%s %s", style(string(a.Severity)).emoji, data.Name, data.Namespace, data.Reason),
		text:     render(tmpl, data, esc),
		fields:   fields(c, data),
	}
}

func severityOrInfo(s sluicev1beta1.AlertSeverity) sluicev1beta1.AlertSeverity {
	if s == "" {
		return sluicev1beta1.SeverityInfo
	}
	return s
}

// fields are the structured facts of an alert; empty ones are left out.
func fields(c *sluicev1beta1.Canary, d templateData) []field {
	checks := strconv.Itoa(d.FailedChecks)
	if a := c.Spec.Analysis; a != nil && a.Threshold > 0 {
		checks += "/" + strconv.Itoa(a.Threshold)
	}
	out := []field{
		{title: "Target", value: d.Target, short: true},
		{title: "Phase", value: d.Phase, short: true},
		{title: "Weight", value: strconv.Itoa(d.Weight) + "%", short: true},
		{title: "Failed checks", value: checks, short: true},
	}
	if m := d.Metric; m != nil {
		v := m.Name + ": " + orElse(m.Value, "no data")
		if r := m.Range(); r != "" {
			v += " (expected " + r + ")"
		}
		out = append(out, field{title: "Metric", value: v})
	}
	out = append(out, field{title: "Cluster", value: d.Cluster, short: true})
	kept := out[:0]
	for _, f := range out {
		if f.value != "" {
			kept = append(kept, f)
		}
	}
	return kept
}

// render executes a messageTemplate, or the default one when it is empty.
// A template that cannot be used falls back to the default text with the
// reason appended: the alert is sent either way.
func render(text string, data templateData, esc func(string) string) string {
	if strings.TrimSpace(text) == "" {
		return execute(parsedDefault, data)
	}
	t, err := parseTemplate(text)
	if err == nil {
		var out string
		if out, err = executeChecked(t, data); err == nil {
			return out
		}
	}
	return truncate(execute(parsedDefault, data) + "\n(messageTemplate not used: " + esc(err.Error()) + ")")
}

// execute runs a template known to work on any data: the default one.
func execute(t *template.Template, data templateData) string {
	out, err := executeChecked(t, data)
	if err != nil {
		return truncate(err.Error())
	}
	return out
}

// executeChecked runs a template into at most maxTextBytes; a longer text
// is cut rather than refused.
func executeChecked(t *template.Template, data templateData) (string, error) {
	// One byte more than fits tells truncate to cut.
	w := &cappedBuffer{limit: maxTextBytes + 1}
	if err := t.Execute(w, data); err != nil && !errors.Is(err, errTextTooLong) {
		return "", err
	}
	out := truncate(w.String())
	if strings.TrimSpace(out) == "" {
		return "", errors.New("the template renders no text")
	}
	return out, nil
}

// truncate cuts s to maxTextBytes on a rune boundary.
func truncate(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	const ellipsis = "…"
	k := maxTextBytes - len(ellipsis)
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return s[:k] + ellipsis
}

var errTextTooLong = errors.New("text too long")

// cappedBuffer stops a template once it has written limit bytes, which
// also stops its execution.
type cappedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.Buffer.Write(p[:max(room, 0)])
		return max(room, 0), errTextTooLong
	}
	return b.Buffer.Write(p)
}

// allowedFunc says whether a messageTemplate may call a function: the
// builtins that are harmless on the alert's data, and printf, which
// parseTemplate replaces with boundedPrintf.
func allowedFunc(name string) bool {
	switch name {
	case "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge",
		"len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery":
		return true
	}
	return false
}

// parseTemplate parses a messageTemplate and refuses what would make its
// execution unbounded: range loops and template calls (which can recurse
// or fan out exponentially), and functions beyond allowedFuncs. What is
// left runs in time linear in the template's length.
func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("message").Funcs(template.FuncMap{"printf": boundedPrintf}).Parse(text)
	if err != nil {
		return nil, err
	}
	if t.Tree == nil {
		return nil, errors.New("the template has no body")
	}
	if err := checkNode(t.Tree, t.Root); err != nil {
		return nil, err
	}
	return t, nil
}

func checkNode(tree *parse.Tree, n parse.Node) error {
	refuse := func(what string) error {
		location, _ := tree.ErrorContext(n)
		return fmt.Errorf("%s: %s is not allowed in a messageTemplate", location, what)
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if err := checkNode(tree, child); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkNode(tree, n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, cmd := range n.Cmds {
			if err := checkNode(tree, cmd); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, arg := range n.Args {
			if err := checkNode(tree, arg); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkNode(tree, n.Node)
	case *parse.IfNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.WithNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.IdentifierNode:
		if !allowedFunc(n.Ident) {
			return refuse("function " + n.Ident)
		}
	case *parse.RangeNode:
		return refuse("range")
	case *parse.TemplateNode:
		return refuse("template")
	}
	// Text, comments, fields, variables, dot and constants are harmless.
	return nil
}

func checkBranch(tree *parse.Tree, b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := checkNode(tree, n); err != nil {
			return err
		}
	}
	return nil
}

// boundedPrintf is fmt.Sprintf that refuses widths and precisions beyond
// maxPrintfWidth, and * ones, which would allocate what they ask for.
func boundedPrintf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0
	verb:
		for i++; i < len(format); i++ {
			switch ch := format[i]; {
			case ch == '*':
				return "", errors.New("printf: * width is not allowed")
			case ch >= '0' && ch <= '9':
				if n = n*10 + int(ch-'0'); n > maxPrintfWidth {
					return "", fmt.Errorf("printf: widths above %d are not allowed", maxPrintfWidth)
				}
			case ch == '.' || ch == '[' || ch == ']':
				n = 0
			case ch == '+' || ch == '-' || ch == '#' || ch == ' ':
			default:
				break verb
			}
		}
	}
	return fmt.Sprintf(format, args...), nil
}

// eventMessage renders an Event of any Sluice object for people: the
// object and the reason as the title, the Event's message as the text and
// its metadata (the revision first) as fields.
func eventMessage(e Event, cluster string, esc func(string) string) message {
	obj := e.InvolvedObject
	title := fmt.Sprintf("%s %s/%s.%s %s", style(e.Severity).emoji, strings.ToLower(obj.Kind), esc(obj.Name), esc(obj.Namespace), esc(e.Reason))
	keys := slices.Sorted(maps.Keys(e.Metadata))
	if i := slices.Index(keys, metaRevision); i > 0 {
		keys = append(append([]string{metaRevision}, keys[:i]...), keys[i+1:]...)
	}
	var out []field
	for _, k := range keys {
		if v := e.Metadata[k]; v != "" {
			out = append(out, field{title: esc(k), value: esc(v), short: len(v) <= 40})
		}
	}
	if cluster != "" {
		out = append(out, field{title: "Cluster", value: esc(cluster), short: true})
	}
	return message{severity: e.Severity, title: title, text: truncate(esc(orElse(e.Message, e.Reason))), fields: out}
}
