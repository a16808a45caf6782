package router

import (
	"fmt"
	"strings"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// CapabilityTable is the Markdown table of what each provider's router can
// do, made from the routers' own declarations so that the docs cannot
// disagree with the code. Providers without a router are listed as such.
func CapabilityTable() string {
	columns := []struct {
		name string
		has  func(traffic.Capabilities) bool
	}{
		{"weights (canary)", func(c traffic.Capabilities) bool { return c.Weights }},
		{"header match (A/B)", func(c traffic.Capabilities) bool { return c.HeaderMatch }},
		{"cookie match (A/B)", func(c traffic.Capabilities) bool { return c.CookieMatch }},
		{"query match (A/B)", func(c traffic.Capabilities) bool { return c.QueryMatch }},
		{"source match (A/B)", func(c traffic.Capabilities) bool { return c.SourceMatch }},
		{"mirroring", func(c traffic.Capabilities) bool { return c.Mirror }},
		{"mirror weight", func(c traffic.Capabilities) bool { return c.MirrorWeight }},
		{"session affinity", func(c traffic.Capabilities) bool { return c.SessionAffinity }},
	}
	var b strings.Builder
	b.WriteString("| provider | blue/green |")
	for _, col := range columns {
		b.WriteString(" " + col.name + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(columns)) + "\n")
	available := routers()
	for _, p := range sluicev1beta1.Providers() {
		newRouter, ok := available[p]
		if !ok {
			fmt.Fprintf(&b, "| `%s` | no router yet |%s\n", p, strings.Repeat(" |", len(columns)))
			continue
		}
		caps := newRouter(Deps{}).Capabilities()
		fmt.Fprintf(&b, "| `%s` | ✔ |", p)
		for _, col := range columns {
			mark := " "
			if col.has(caps) {
				mark = "✔"
			}
			b.WriteString(" " + mark + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
