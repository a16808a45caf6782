// Package traffic holds the values that describe how traffic is split
// between a primary and its canary, and the queries that measure it,
// shared by the canary state machine, the analysis and the routers.
package traffic

import "fmt"

// Routes is a split of traffic between the primary and the canary.
type Routes struct {
	// Primary and Canary are the percentages of traffic each gets; they add
	// up to 100.
	Primary int
	Canary  int
	// Mirror shadows a copy of the primary's traffic to the canary, whose
	// answers are dropped.
	Mirror bool
	// MirrorWeight is the percentage of traffic mirrored; 0 means 100.
	MirrorWeight int
	// Match sends the requests matching the Canary's analysis.match to the
	// canary and the rest to the primary (A/B testing).
	Match bool
}

// PrimaryOnly is the split with every request on the primary.
func PrimaryOnly() Routes { return Routes{Primary: 100} }

// Weighted is a split with the given percentage on the canary.
func Weighted(canary int) Routes { return Routes{Primary: 100 - canary, Canary: canary} }

// IsPrimaryOnly reports whether the canary receives nothing at all.
func (r Routes) IsPrimaryOnly() bool {
	return r.Canary == 0 && !r.Mirror && !r.Match
}

func (r Routes) String() string {
	s := fmt.Sprintf("primary %d%%, canary %d%%", r.Primary, r.Canary)
	if r.Mirror {
		s += ", mirrored"
	}
	if r.Match {
		s += ", matching requests to the canary"
	}
	return s
}

// Capabilities are what a router can do with traffic.
type Capabilities struct {
	// Weights splits traffic by percentage (progressive canary).
	Weights bool
	// HeaderMatch routes requests by header (A/B testing).
	HeaderMatch bool
	// CookieMatch routes requests by cookie (A/B testing).
	CookieMatch bool
	// QueryMatch routes requests by query parameter (A/B testing).
	QueryMatch bool
	// SourceMatch routes requests by the calling workload's labels or
	// namespace (mesh A/B testing).
	SourceMatch bool
	// Mirror shadows traffic to the canary.
	Mirror bool
	// MirrorWeight mirrors a percentage of traffic rather than all of it.
	MirrorWeight bool
	// SessionAffinity keeps users on the version they reached first.
	SessionAffinity bool
}

// GoldenSignals are the Prometheus queries of the built-in metrics
// request-success-rate and request-duration for a router. They are Go
// templates rendered for each Canary with the functions of MetricTemplates
// (namespace, target, service, ingress, route, interval).
type GoldenSignals struct {
	// SuccessRate is the percentage of the canary's responses that are not
	// 5xx.
	SuccessRate string
	// Duration is the 99th percentile of the canary's response times, in
	// milliseconds.
	Duration string
}
