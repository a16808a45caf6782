package flagger

import (
	"net/http"
	"regexp"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// request is what a Gateway matches an HTTPRoute's rules against. The
// suite reads routes the way a Gateway would route these requests, rather
// than comparing them with a layout: Flagger and Sluice may order and
// name their rules differently and still route alike.
type request struct {
	// name says what the request is, in failure messages.
	name   string
	path   string
	header http.Header
}

// plain is a request with no header a match looks at.
var plain = request{name: "a plain request", path: "/"}

// withHeader is a request to / carrying one header.
func withHeader(name, key, value string) request {
	return request{name: name, path: "/", header: http.Header{http.CanonicalHeaderKey(key): {value}}}
}

// split is how a route shares a request between the primary and the
// canary, in percent.
type split struct{ primary, canary int }

// routeTo is the split of the rule that route picks for req: the one a
// conformant implementation picks, by the Gateway API's precedence
// (HTTPRouteRule docs): an exact path match over a prefix one, the
// longest prefix, a method match, then the most header matches, then the
// most query matches; a tie goes to the first rule. ok is false when no
// rule matches.
func routeTo(route *gatewayv1.HTTPRoute, req request, primary, canary string) (split, bool) {
	rule, ok := ruleFor(route, req)
	if !ok {
		return split{}, false
	}
	return splitOf(rule, primary, canary), true
}

func ruleFor(route *gatewayv1.HTTPRoute, req request) (gatewayv1.HTTPRouteRule, bool) {
	var best gatewayv1.HTTPRouteRule
	var bestKey [5]int
	found := false
	for _, rule := range route.Spec.Rules {
		ms := rule.Matches
		if len(ms) == 0 {
			// The API's default: a prefix match on /.
			ms = []gatewayv1.HTTPRouteMatch{{}}
		}
		for _, m := range ms {
			if !matches(m, req) {
				continue
			}
			if k := precedence(m); !found || greater(k, bestKey) {
				best, bestKey, found = rule, k, true
			}
		}
	}
	return best, found
}

func greater(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

// precedence orders matches by the Gateway API's rules.
func precedence(m gatewayv1.HTTPRouteMatch) [5]int {
	exact, prefix := 0, 1
	if p := m.Path; p != nil && p.Value != nil {
		if p.Type != nil && *p.Type == gatewayv1.PathMatchExact {
			exact = 1
		}
		prefix = len(*p.Value)
	}
	method := 0
	if m.Method != nil {
		method = 1
	}
	return [5]int{exact, prefix, method, len(m.Headers), len(m.QueryParams)}
}

// matches reports whether a GET of req meets every condition of m.
// Regular expressions must match whole values, as Envoy-based Gateways
// (Istio, Envoy Gateway) apply them.
func matches(m gatewayv1.HTTPRouteMatch, req request) bool {
	if p := m.Path; p != nil && p.Value != nil {
		v := *p.Value
		typ := gatewayv1.PathMatchPathPrefix
		if p.Type != nil {
			typ = *p.Type
		}
		switch typ {
		case gatewayv1.PathMatchExact:
			if req.path != v {
				return false
			}
		case gatewayv1.PathMatchRegularExpression:
			if !fullMatch(v, req.path) {
				return false
			}
		default:
			if v != "/" && req.path != v && !strings.HasPrefix(req.path, strings.TrimSuffix(v, "/")+"/") {
				return false
			}
		}
	}
	if m.Method != nil && *m.Method != gatewayv1.HTTPMethodGet {
		return false
	}
	for _, h := range m.Headers {
		values := req.header.Values(string(h.Name))
		ok := false
		for _, v := range values {
			if h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression {
				ok = ok || fullMatch(h.Value, v)
			} else {
				ok = ok || v == h.Value
			}
		}
		if !ok {
			return false
		}
	}
	// The requests here carry no query.
	return len(m.QueryParams) == 0
}

func fullMatch(expr, s string) bool {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	return err == nil && re.MatchString(s)
}

// splitOf is how rule's backends share requests, in percent; a backend
// with no weight weighs 1, as the Gateway API defines.
func splitOf(rule gatewayv1.HTTPRouteRule, primary, canary string) split {
	var p, c, total int
	for _, b := range rule.BackendRefs {
		w := 1
		if b.Weight != nil {
			w = int(*b.Weight)
		}
		total += w
		switch string(b.Name) {
		case primary:
			p += w
		case canary:
			c += w
		}
	}
	if total == 0 {
		return split{}
	}
	return split{primary: p * 100 / total, canary: c * 100 / total}
}

// setCookies are the Set-Cookie headers the route adds to an answer from
// backend to req: those of the chosen rule's ResponseHeaderModifier
// filters, then those of the backend's.
func setCookies(route *gatewayv1.HTTPRoute, req request, backend string) []string {
	rule, ok := ruleFor(route, req)
	if !ok {
		return nil
	}
	var out []string
	add := func(filters []gatewayv1.HTTPRouteFilter) {
		for _, f := range filters {
			if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || f.ResponseHeaderModifier == nil {
				continue
			}
			for _, h := range append(append([]gatewayv1.HTTPHeader{}, f.ResponseHeaderModifier.Set...), f.ResponseHeaderModifier.Add...) {
				if strings.EqualFold(string(h.Name), "Set-Cookie") {
					out = append(out, h.Value)
				}
			}
		}
	}
	add(rule.Filters)
	for _, b := range rule.BackendRefs {
		if string(b.Name) == backend {
			add(b.Filters)
		}
	}
	return out
}
