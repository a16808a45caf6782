package router

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;grpcroutes,verbs=get;list;watch;create;update;patch;delete

// Gateway routes with the Gateway API (providers gatewayapi:v1 and
// gatewayapi:v1beta1, both written as v1). It generates an HTTPRoute, or a
// GRPCRoute for gRPC services, named after the apex Service, or adopts the
// route named by spec.service.routeRef.
//
// The rules Sluice adds are named sluice-*: A/B matches, session affinity
// cookies. The rules it owns are those whose backends are the Canary's
// Services; it sets their backendRefs and filters and leaves every other
// rule, filter, hostname and parentRef of an adopted route as the user
// wrote them (flagger#1857, #1888).
type Gateway struct{ Deps }

// Rule names and markers.
const (
	gatewayRulePrefix = "sluice-"
	gatewayMainRule   = "sluice"
)

// Capabilities are weights, header, cookie and query matches, mirroring with
// a percentage, and session affinity by cookie.
func (g *Gateway) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, QueryMatch: true, Mirror: true, MirrorWeight: true, SessionAffinity: true}
}

// GoldenSignals use the application's own histogram: Gateway API
// implementations export different series.
func (g *Gateway) GoldenSignals() traffic.GoldenSignals { return appHistogramSignals() }

// Initialize needs nothing before the primary takes traffic.
func (g *Gateway) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or adopts the route, keeping its current split.
func (g *Gateway) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return g.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the route.
func (g *Gateway) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return g.write(ctx, c, setSplit(r))
}

func (g *Gateway) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	return routeKindOf(c).write(ctx, g, c, sp)
}

// Routes reads the split from the route's owned rule.
func (g *Gateway) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	return routeKindOf(c).routes(ctx, g, c)
}

// Finalize gives an adopted route back as it was; a generated one is
// pointed at the apex Service and released, so that it outlives the
// Canary.
func (g *Gateway) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return routeKindOf(c).finalize(ctx, g, c)
}

// routeWriter writes, reads and gives back a Canary's route of one kind.
type routeWriter interface {
	write(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary, sp split) error
	routes(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary) (traffic.Routes, error)
	finalize(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary) error
}

// routeKindOf is the kind of the Canary's route: a GRPCRoute for a gRPC
// service, an HTTPRoute otherwise.
func routeKindOf(c *sluicev1beta1.Canary) routeWriter {
	if grpc(c) {
		return grpcRouteKind()
	}
	return httpRouteKind()
}

// routeKind adapts one Gateway API route kind (HTTPRoute, GRPCRoute) to
// the one path that writes, reads and gives back a Canary's route: Route
// is the object, Rule its rule type. The kinds differ only in their rules.
type routeKind[Route client.Object, Rule any] struct {
	// name is the kind, for errors.
	name     string
	newRoute func() Route
	// parts are the fields of a route the router writes; spec points at
	// the whole spec, recorded as an adopted route's original.
	parts func(Route) routeParts[Rule]
	// view reads what the split and the layout need of a rule.
	view func(Rule) gatewayRule
	// generated is the rule of a generated route, before its backends.
	generated func(*sluicev1beta1.Canary) Rule
	// expand lays out one owned rule for a split: the A/B and affinity
	// rules derived from it, named with prefix, then the rule itself with
	// weighted backends.
	expand func(c *sluicev1beta1.Canary, rule Rule, prefix string, r traffic.Routes) ([]Rule, error)
	// toApex points an owned rule at the apex Service alone, without the
	// mirror to the canary.
	toApex func(c *sluicev1beta1.Canary, rule Rule) Rule
}

// routeParts are the parts of a route's object the router writes.
type routeParts[Rule any] struct {
	meta      *metav1.ObjectMeta
	spec      any
	parents   *[]gatewayv1.ParentReference
	hostnames *[]gatewayv1.Hostname
	rules     *[]Rule
}

func (k routeKind[Route, Rule]) write(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary, sp split) error {
	route := k.newRoute()
	p := k.parts(route)
	p.meta.Name, p.meta.Namespace = gatewayRouteName(c), c.Namespace
	setRules := func(base []Rule) error {
		r, err := sp.of(route, func() (traffic.Routes, error) { return k.split(c, *p.rules), nil })
		if err != nil {
			return err
		}
		rules, err := k.lay(c, base, r)
		*p.rules = rules
		return err
	}
	if c.Spec.Service.RouteRef == nil {
		return g.ensureGenerated(ctx, c, route, func() error {
			applyMetadata(p.meta, c.Spec.Service.Apex, c.Spec.Service.UnmanagedMetadata, true)
			*p.parents = parentRefs(c)
			*p.hostnames = hostnames(c)
			return setRules([]Rule{k.generated(c)})
		})
	}
	if err := g.Client.Get(ctx, client.ObjectKeyFromObject(route), route); err != nil {
		return missingRef("spec.service.routeRef", k.name+" "+p.meta.Name, err)
	}
	return g.patch(ctx, route, func() error {
		if err := keepOriginal(route, p.spec); err != nil {
			return err
		}
		return setRules(*p.rules)
	})
}

func (k routeKind[Route, Rule]) routes(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	route := k.newRoute()
	if err := g.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: gatewayRouteName(c)}, route); apierrors.IsNotFound(err) && c.Spec.Service.RouteRef == nil {
		return traffic.PrimaryOnly(), nil
	} else if c.Spec.Service.RouteRef != nil && err != nil {
		return traffic.Routes{}, missingRef("spec.service.routeRef", k.name+" "+gatewayRouteName(c), err)
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get %s %s: %w", k.name, gatewayRouteName(c), err)
	}
	return k.split(c, *k.parts(route).rules), nil
}

func (k routeKind[Route, Rule]) finalize(ctx context.Context, g *Gateway, c *sluicev1beta1.Canary) error {
	route := k.newRoute()
	if err := g.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: gatewayRouteName(c)}, route); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get %s %s: %w", k.name, gatewayRouteName(c), err)
	}
	p := k.parts(route)
	return g.patch(ctx, route, func() error {
		if adopted, err := takeOriginal(route, p.spec); err != nil || adopted {
			return err
		}
		var out []Rule
		for _, rule := range *p.rules {
			v := k.view(rule)
			if isSluiceRule(v.name) {
				continue
			}
			if ownsBackends(v.refs, c) {
				rule = k.toApex(c, rule)
			}
			out = append(out, rule)
		}
		*p.rules = out
		release(route, c)
		return nil
	})
}

// split is the split a route's owned rules hold.
func (k routeKind[Route, Rule]) split(c *sluicev1beta1.Canary, rules []Rule) traffic.Routes {
	views := make([]gatewayRule, 0, len(rules))
	for _, rule := range rules {
		views = append(views, k.view(rule))
	}
	return gatewaySplit(c, views)
}

// lay lays out the rules of a route for a split. Every owned rule (one
// whose backends are the Canary's Services) is expanded: the A/B and
// session affinity rules derived from it come before it, and its backends
// are weighted. Sluice's own rules from before are dropped, and other
// rules stay as they are.
func (k routeKind[Route, Rule]) lay(c *sluicev1beta1.Canary, rules []Rule, r traffic.Routes) ([]Rule, error) {
	var out []Rule
	owned := 0
	for _, rule := range rules {
		v := k.view(rule)
		if isSluiceRule(v.name) {
			continue
		}
		if !ownsBackends(v.refs, c) {
			out = append(out, rule)
			continue
		}
		expanded, err := k.expand(c, rule, fmt.Sprintf("%s%d-", gatewayRulePrefix, owned), r)
		if err != nil {
			return nil, err
		}
		owned++
		out = append(out, expanded...)
	}
	if owned == 0 {
		apex, primary, canary := ServiceNames(c)
		return nil, fmt.Errorf("no rule of the route sends traffic to Service %s, %s or %s", apex, primary, canary)
	}
	return out, nil
}

// sessionAffinity is the Canary's analysis.sessionAffinity, nil when
// there is no analysis.
func sessionAffinity(c *sluicev1beta1.Canary) *sluicev1beta1.SessionAffinity {
	if c.Spec.Analysis == nil {
		return nil
	}
	return c.Spec.Analysis.SessionAffinity
}

// ruleView reads what the split and the layout need of a rule of either
// kind: its name, its backends and its mirrors.
func ruleView[B, F any](name *gatewayv1.SectionName, backends []B, ref func(B) gatewayv1.BackendRef, filters []F, mirror func(F) *gatewayv1.HTTPRequestMirrorFilter) gatewayRule {
	v := gatewayRule{name: name}
	for _, b := range backends {
		v.refs = append(v.refs, ref(b))
	}
	for _, f := range filters {
		v.mirrors = append(v.mirrors, mirror(f))
	}
	return v
}

// isSluiceRule reports whether a rule is one Sluice added (sluice-*).
func isSluiceRule(name *gatewayv1.SectionName) bool {
	return name != nil && strings.HasPrefix(string(*name), gatewayRulePrefix)
}

// gatewayRule is what the split reads of an HTTPRoute or GRPCRoute rule.
type gatewayRule struct {
	name    *gatewayv1.SectionName
	refs    []gatewayv1.BackendRef
	mirrors []*gatewayv1.HTTPRequestMirrorFilter
}

// gatewaySplit reads the split from a route's rules: A/B rules mean a
// match, and the first rule that routes to the Canary's Services holds
// the weights and the mirror.
func gatewaySplit(c *sluicev1beta1.Canary, rules []gatewayRule) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	r := traffic.PrimaryOnly()
	found := false
	for _, rule := range rules {
		if isGatewayRule(rule.name, "ab-") {
			r.Match = true
			continue
		}
		if found || isGatewayRule(rule.name, "") || !ownsBackends(rule.refs, c) {
			continue
		}
		found = true
		r.Primary, r.Canary = weightsOf(rule.refs, primary, canary)
		for _, m := range rule.mirrors {
			if m != nil && string(m.BackendRef.Name) == canary {
				r.Mirror = true
				if m.Percent != nil {
					r.MirrorWeight = int(*m.Percent)
				}
			}
		}
	}
	if r.Match {
		r.Primary, r.Canary = 100, 0
	}
	return r
}

// gatewayRouteName is the adopted route's name, or the apex Service's.
func gatewayRouteName(c *sluicev1beta1.Canary) string {
	if ref := c.Spec.Service.RouteRef; ref != nil {
		return ref.Name
	}
	apex, _, _ := ServiceNames(c)
	return apex
}

// grpc reports whether the Canary's route is a GRPCRoute: an adopted one,
// or a generated one for a gRPC port.
func grpc(c *sluicev1beta1.Canary) bool {
	if ref := c.Spec.Service.RouteRef; ref != nil {
		return ref.Kind == "GRPCRoute"
	}
	s := c.Spec.Service
	return s.AppProtocol == "grpc" || s.AppProtocol == "kubernetes.io/h2c" || s.PortName == "grpc"
}

// parentRefs are the Canary's gatewayRefs with the API's defaults written
// out, so that the route compares equal to what the API server stores.
func parentRefs(c *sluicev1beta1.Canary) []gatewayv1.ParentReference {
	var out []gatewayv1.ParentReference
	for _, p := range c.Spec.Service.GatewayRefs {
		p = *p.DeepCopy()
		if p.Group == nil {
			p.Group = ptr.To(gatewayv1.Group(gatewayv1.GroupName))
		}
		if p.Kind == nil {
			p.Kind = ptr.To(gatewayv1.Kind("Gateway"))
		}
		out = append(out, p)
	}
	return out
}

func hostnames(c *sluicev1beta1.Canary) []gatewayv1.Hostname {
	var out []gatewayv1.Hostname
	for _, h := range c.Spec.Service.Hosts {
		out = append(out, gatewayv1.Hostname(h))
	}
	return out
}

// generatedHTTPRule is the rule of a generated HTTPRoute before Sluice
// sets its backends: the Canary's matches, timeouts, rewrite, headers, CORS
// and static mirrors.
func generatedHTTPRule(c *sluicev1beta1.Canary) gatewayv1.HTTPRouteRule {
	s := c.Spec.Service
	apex, _, _ := ServiceNames(c)
	rule := gatewayv1.HTTPRouteRule{
		Name:        ptr.To(gatewayv1.SectionName(gatewayMainRule)),
		BackendRefs: []gatewayv1.HTTPBackendRef{httpBackend(c, apex, 100, nil)},
	}
	for _, m := range s.Match {
		rule.Matches = append(rule.Matches, httpMatch(m))
	}
	if len(rule.Matches) == 0 {
		// The API's default, written out so that the route compares equal
		// to what the API server stores.
		rule.Matches = []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}}}
	}
	if s.Timeout != "" || s.BackendTimeout != "" {
		rule.Timeouts = &gatewayv1.HTTPRouteTimeouts{}
		if s.Timeout != "" {
			rule.Timeouts.Request = ptr.To(gatewayv1.Duration(s.Timeout))
		}
		if s.BackendTimeout != "" {
			rule.Timeouts.BackendRequest = ptr.To(gatewayv1.Duration(s.BackendTimeout))
		}
	}
	if rw := s.Rewrite; rw != nil {
		f := gatewayv1.HTTPURLRewriteFilter{}
		if rw.Authority != "" {
			f.Hostname = ptr.To(gatewayv1.PreciseHostname(rw.Authority))
		}
		if rw.URI != "" {
			if rw.Type == "ReplaceFullPath" {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(rw.URI)}
			} else {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(rw.URI)}
			}
		}
		rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &f})
	}
	if h := s.Headers; h != nil {
		if h.Request != nil {
			rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: headerFilter(h.Request)})
		}
		if h.Response != nil {
			rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: headerFilter(h.Response)})
		}
	}
	if cors := s.CorsPolicy; cors != nil {
		rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterCORS, CORS: corsFilter(cors)})
	}
	for i := range s.Mirror {
		rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: s.Mirror[i].DeepCopy()})
	}
	return rule
}

// httpRouteKind writes HTTPRoutes: weights, A/B by header, cookie or
// query, mirroring, and session affinity by cookie.
func httpRouteKind() routeKind[*gatewayv1.HTTPRoute, gatewayv1.HTTPRouteRule] {
	return routeKind[*gatewayv1.HTTPRoute, gatewayv1.HTTPRouteRule]{
		name:     "HTTPRoute",
		newRoute: func() *gatewayv1.HTTPRoute { return &gatewayv1.HTTPRoute{} },
		parts: func(rt *gatewayv1.HTTPRoute) routeParts[gatewayv1.HTTPRouteRule] {
			return routeParts[gatewayv1.HTTPRouteRule]{meta: &rt.ObjectMeta, spec: &rt.Spec, parents: &rt.Spec.ParentRefs, hostnames: &rt.Spec.Hostnames, rules: &rt.Spec.Rules}
		},
		view: func(rule gatewayv1.HTTPRouteRule) gatewayRule {
			return ruleView(rule.Name, rule.BackendRefs, func(b gatewayv1.HTTPBackendRef) gatewayv1.BackendRef { return b.BackendRef },
				rule.Filters, func(f gatewayv1.HTTPRouteFilter) *gatewayv1.HTTPRequestMirrorFilter { return f.RequestMirror })
		},
		generated: generatedHTTPRule,
		expand:    expandHTTPRule,
		toApex: func(c *sluicev1beta1.Canary, rule gatewayv1.HTTPRouteRule) gatewayv1.HTTPRouteRule {
			apex, _, canary := ServiceNames(c)
			rule.Filters = withoutCanaryMirror(rule.Filters, canary)
			rule.BackendRefs = []gatewayv1.HTTPBackendRef{httpBackend(c, apex, 100, nil)}
			return rule
		},
	}
}

// expandHTTPRule lays out one owned HTTPRoute rule for a split.
func expandHTTPRule(c *sluicev1beta1.Canary, rule gatewayv1.HTTPRouteRule, prefix string, r traffic.Routes) ([]gatewayv1.HTTPRouteRule, error) {
	_, primary, canary := ServiceNames(c)
	var out []gatewayv1.HTTPRouteRule
	base := rule.DeepCopy()
	base.Filters = withoutCanaryMirror(base.Filters, canary)
	if r.Match && c.Spec.Analysis != nil {
		for i, m := range c.Spec.Analysis.Match {
			ab := *base.DeepCopy()
			ab.Name = ptr.To(gatewayv1.SectionName(fmt.Sprintf("%sab-%d", prefix, i)))
			matches, err := combineHTTPMatches(ab.Matches, m)
			if err != nil {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", i), "%w", err)
			}
			ab.Matches = matches
			ab.BackendRefs = []gatewayv1.HTTPBackendRef{httpBackend(c, canary, 100, nil)}
			out = append(out, ab)
		}
	}
	var primaryFilters, canaryFilters []gatewayv1.HTTPRouteFilter
	if sa := sessionAffinity(c); sa != nil {
		st := c.Status
		if st.SessionAffinityCookie != "" && r.Canary > 0 {
			sticky := *base.DeepCopy()
			sticky.Name = ptr.To(gatewayv1.SectionName(prefix + "canary-cookie"))
			sticky.Matches = withCookie(sticky.Matches, st.SessionAffinityCookie)
			sticky.BackendRefs = []gatewayv1.HTTPBackendRef{httpBackend(c, canary, 100, nil)}
			out = append(out, sticky)
			canaryFilters = setCookie(cookieHeader(st.SessionAffinityCookie, sa, strconv.Itoa(sa.MaxAge)))
		}
		if st.PrimarySessionAffinityCookie != "" && r.Canary > 0 {
			sticky := *base.DeepCopy()
			sticky.Name = ptr.To(gatewayv1.SectionName(prefix + "primary-cookie"))
			sticky.Matches = withCookie(sticky.Matches, st.PrimarySessionAffinityCookie)
			sticky.BackendRefs = []gatewayv1.HTTPBackendRef{httpBackend(c, primary, 100, nil)}
			out = append(out, sticky)
			primaryFilters = setCookie(cookieHeader(st.PrimarySessionAffinityCookie, sa, analysisSeconds(c)))
		}
		if st.SessionAffinityCookie == "" && st.PreviousSessionAffinityCookie != "" {
			// The rollout is over: expire its cookie in browsers.
			primaryFilters = setCookie(cookieHeader(st.PreviousSessionAffinityCookie, sa, "-1"))
		}
	}
	main := *base
	main.BackendRefs = []gatewayv1.HTTPBackendRef{
		httpBackend(c, primary, r.Primary, primaryFilters),
		httpBackend(c, canary, r.Canary, canaryFilters),
	}
	if r.Mirror {
		main.Filters = append(main.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: mirrorTo(c, canary, r.MirrorWeight)})
	}
	return append(out, main), nil
}

// ownsBackends reports whether backends are the Canary's Services only.
func ownsBackends(refs []gatewayv1.BackendRef, c *sluicev1beta1.Canary) bool {
	apex, primary, canary := ServiceNames(c)
	if len(refs) == 0 {
		return false
	}
	for _, b := range refs {
		if (b.Kind != nil && *b.Kind != "Service") || (b.Group != nil && *b.Group != "") {
			return false
		}
		if n := string(b.Name); n != apex && n != primary && n != canary {
			return false
		}
	}
	return true
}

func weightsOf(refs []gatewayv1.BackendRef, primary, canary string) (int, int) {
	var p, cw int
	for _, b := range refs {
		w := 1
		if b.Weight != nil {
			w = int(*b.Weight)
		}
		switch string(b.Name) {
		case primary:
			p += w
		case canary:
			cw += w
		}
	}
	if total := p + cw; total > 0 && total != 100 {
		// Weights are relative; report them as percentages.
		return p * 100 / total, 100 - p*100/total
	}
	return p, cw
}

func isGatewayRule(name *gatewayv1.SectionName, kind string) bool {
	if name == nil {
		return false
	}
	n := string(*name)
	if !strings.HasPrefix(n, gatewayRulePrefix) {
		return false
	}
	rest := strings.TrimPrefix(n, gatewayRulePrefix)
	if i := strings.Index(rest, "-"); i >= 0 {
		rest = rest[i+1:]
	}
	return strings.HasPrefix(rest, kind)
}

func httpBackend(c *sluicev1beta1.Canary, service string, weight int, filters []gatewayv1.HTTPRouteFilter) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{
		BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr.To(gatewayv1.Group("")),
				Kind:  ptr.To(gatewayv1.Kind("Service")),
				Name:  gatewayv1.ObjectName(service),
				Port:  ptr.To(c.Spec.Service.Port),
			},
			Weight: ptr.To(int32(weight)),
		},
		Filters: filters,
	}
}

func mirrorTo(c *sluicev1beta1.Canary, service string, percent int) *gatewayv1.HTTPRequestMirrorFilter {
	m := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{
		Group: ptr.To(gatewayv1.Group("")),
		Kind:  ptr.To(gatewayv1.Kind("Service")),
		Name:  gatewayv1.ObjectName(service),
		Port:  ptr.To(c.Spec.Service.Port),
	}}
	if percent > 0 && percent < 100 {
		m.Percent = ptr.To(int32(percent))
	}
	return m
}

// withoutCanaryMirror drops the mirror of analysis traffic to the canary,
// keeping the user's static mirrors.
func withoutCanaryMirror(filters []gatewayv1.HTTPRouteFilter, canary string) []gatewayv1.HTTPRouteFilter {
	var out []gatewayv1.HTTPRouteFilter
	for _, f := range filters {
		if f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary {
			continue
		}
		out = append(out, f)
	}
	return out
}

// httpMatch converts an Istio-shaped match to a Gateway API one. Fields
// the Gateway API cannot express are refused by combineHTTPMatches.
func httpMatch(m sluicev1beta1.HTTPMatchRequest) gatewayv1.HTTPRouteMatch {
	var out gatewayv1.HTTPRouteMatch
	if u := m.URI; u != nil {
		switch {
		case u.Exact != "":
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To(u.Exact)}
		case u.Prefix != "":
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(u.Prefix)}
		default:
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression), Value: ptr.To(stringMatchRegex(*u))}
		}
	}
	for _, name := range sortedKeys(m.Headers) {
		v := m.Headers[name]
		h := gatewayv1.HTTPHeaderMatch{Name: gatewayv1.HTTPHeaderName(name), Type: ptr.To(gatewayv1.HeaderMatchExact), Value: v.Exact}
		if v.Exact == "" {
			h.Type, h.Value = ptr.To(gatewayv1.HeaderMatchRegularExpression), stringMatchRegex(v)
		}
		out.Headers = append(out.Headers, h)
	}
	for _, name := range sortedKeys(m.QueryParams) {
		v := m.QueryParams[name]
		q := gatewayv1.HTTPQueryParamMatch{Name: gatewayv1.HTTPHeaderName(name), Type: ptr.To(gatewayv1.QueryParamMatchExact), Value: v.Exact}
		if v.Exact == "" {
			q.Type, q.Value = ptr.To(gatewayv1.QueryParamMatchRegularExpression), stringMatchRegex(v)
		}
		out.QueryParams = append(out.QueryParams, q)
	}
	if m.Method != nil && m.Method.Exact != "" {
		out.Method = ptr.To(gatewayv1.HTTPMethod(m.Method.Exact))
	}
	return out
}

// combineHTTPMatches ANDs an A/B match into each of a rule's matches (a
// rule with none matches every request).
func combineHTTPMatches(matches []gatewayv1.HTTPRouteMatch, ab sluicev1beta1.HTTPMatchRequest) ([]gatewayv1.HTTPRouteMatch, error) {
	if ab.Authority != nil || ab.Scheme != nil || ab.Port != 0 || len(ab.WithoutHeaders) > 0 || len(ab.SourceLabels) > 0 || ab.SourceNamespace != "" || len(ab.Gateways) > 0 {
		return nil, fmt.Errorf("the Gateway API matches path, headers, query parameters and method only")
	}
	extra := httpMatch(ab)
	if len(matches) == 0 {
		return []gatewayv1.HTTPRouteMatch{extra}, nil
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(matches))
	for _, m := range matches {
		m = *m.DeepCopy()
		if extra.Path != nil {
			m.Path = extra.Path
		}
		if extra.Method != nil {
			m.Method = extra.Method
		}
		m.Headers = append(m.Headers, extra.Headers...)
		m.QueryParams = append(m.QueryParams, extra.QueryParams...)
		out = append(out, m)
	}
	return out, nil
}

// withCookie adds a match on a cookie (name=value) to every match.
func withCookie(matches []gatewayv1.HTTPRouteMatch, cookie string) []gatewayv1.HTTPRouteMatch {
	h := gatewayv1.HTTPHeaderMatch{
		Name:  "Cookie",
		Type:  ptr.To(gatewayv1.HeaderMatchRegularExpression),
		Value: ".*" + regexp.QuoteMeta(cookie) + ".*",
	}
	if len(matches) == 0 {
		return []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{h}}}
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(matches))
	for _, m := range matches {
		m = *m.DeepCopy()
		m.Headers = append(m.Headers, h)
		out = append(out, m)
	}
	return out
}

// cookieHeader is a Set-Cookie value with the Canary's cookie attributes.
func cookieHeader(cookie string, sa *sluicev1beta1.SessionAffinity, maxAge string) string {
	parts := []string{cookie, "Max-Age=" + maxAge}
	if sa.Path != "" {
		parts = append(parts, "Path="+sa.Path)
	}
	if sa.Domain != "" {
		parts = append(parts, "Domain="+sa.Domain)
	}
	if sa.HTTPOnly {
		parts = append(parts, "HttpOnly")
	}
	if sa.Secure {
		parts = append(parts, "Secure")
	}
	if sa.SameSite != "" {
		parts = append(parts, "SameSite="+sa.SameSite)
	}
	if sa.Partitioned {
		parts = append(parts, "Partitioned")
	}
	return strings.Join(parts, "; ")
}

func setCookie(value string) []gatewayv1.HTTPRouteFilter {
	return []gatewayv1.HTTPRouteFilter{{
		Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}}},
	}}
}

// analysisSeconds is the analysis interval in seconds: the lifetime of the
// cookie that keeps a user on the primary for one step.
func analysisSeconds(c *sluicev1beta1.Canary) string {
	d, err := parseDuration(c.Spec.Analysis.Interval)
	if err != nil || d <= 0 {
		return "60"
	}
	return strconv.Itoa(int(d.Seconds()))
}

func headerFilter(h *sluicev1beta1.HeaderOperations) *gatewayv1.HTTPHeaderFilter {
	f := &gatewayv1.HTTPHeaderFilter{Remove: h.Remove}
	for _, k := range sortedKeys(h.Set) {
		f.Set = append(f.Set, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(k), Value: h.Set[k]})
	}
	for _, k := range sortedKeys(h.Add) {
		f.Add = append(f.Add, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(k), Value: h.Add[k]})
	}
	return f
}

func corsFilter(p *sluicev1beta1.CorsPolicy) *gatewayv1.HTTPCORSFilter {
	f := &gatewayv1.HTTPCORSFilter{AllowCredentials: p.AllowCredentials}
	for _, o := range p.AllowOrigin { //nolint:staticcheck // Flagger's deprecated field still routes
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o))
	}
	for _, o := range p.AllowOrigins {
		if o.Exact != "" {
			f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o.Exact))
		}
	}
	for _, m := range p.AllowMethods {
		f.AllowMethods = append(f.AllowMethods, gatewayv1.HTTPMethodWithWildcard(m))
	}
	for _, h := range p.AllowHeaders {
		f.AllowHeaders = append(f.AllowHeaders, gatewayv1.HTTPHeaderName(h))
	}
	for _, h := range p.ExposeHeaders {
		f.ExposeHeaders = append(f.ExposeHeaders, gatewayv1.HTTPHeaderName(h))
	}
	if d, err := parseDuration(p.MaxAge); err == nil && d > 0 {
		f.MaxAge = int32(d.Seconds())
	}
	return f
}

// stringMatchRegex turns a prefix, suffix or regex match into an RE2
// regular expression.
func stringMatchRegex(m sluicev1beta1.StringMatch) string {
	switch {
	case m.Regex != "":
		return m.Regex
	case m.Prefix != "":
		return "^" + regexp.QuoteMeta(m.Prefix) + ".*"
	case m.Suffix != "":
		return ".*" + regexp.QuoteMeta(m.Suffix) + "$"
	case m.Exact != "":
		return "^" + regexp.QuoteMeta(m.Exact) + "$"
	}
	return ".*"
}
