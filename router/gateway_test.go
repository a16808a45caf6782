package router_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// describeHTTPRoute renders the parts of a route's rules that routing
// decides, one line a rule, so that tests compare them whole.
func describeHTTPRoute(r *gatewayv1.HTTPRoute) []string {
	var out []string
	for _, rule := range r.Spec.Rules {
		name := "-"
		if rule.Name != nil {
			name = string(*rule.Name)
		}
		line := name + ":"
		for _, m := range rule.Matches {
			var parts []string
			if m.Path != nil {
				parts = append(parts, fmt.Sprintf("path %s %s", *m.Path.Type, *m.Path.Value))
			}
			for _, h := range m.Headers {
				parts = append(parts, fmt.Sprintf("header %s %s %s", h.Name, *h.Type, h.Value))
			}
			for _, q := range m.QueryParams {
				parts = append(parts, fmt.Sprintf("query %s %s %s", q.Name, *q.Type, q.Value))
			}
			line += " match[" + strings.Join(parts, ", ") + "]"
		}
		for _, f := range rule.Filters {
			line += " " + describeFilter(f)
		}
		for _, b := range rule.BackendRefs {
			line += fmt.Sprintf(" %s:%d", b.Name, *b.Weight)
			for _, f := range b.Filters {
				line += "(" + describeFilter(f) + ")"
			}
		}
		out = append(out, line)
	}
	return out
}

func describeFilter(f gatewayv1.HTTPRouteFilter) string {
	switch {
	case f.RequestMirror != nil:
		s := "mirror " + string(f.RequestMirror.BackendRef.Name)
		if f.RequestMirror.Percent != nil {
			s += fmt.Sprintf(" %d%%", *f.RequestMirror.Percent)
		}
		return s
	case f.ResponseHeaderModifier != nil && len(f.ResponseHeaderModifier.Add) == 1 && f.ResponseHeaderModifier.Add[0].Name == "Set-Cookie":
		return "set-cookie " + f.ResponseHeaderModifier.Add[0].Value
	}
	return string(f.Type)
}

func getHTTPRoute(t *testing.T, ns, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	r := &gatewayv1.HTTPRoute{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func gatewayRouter(t *testing.T) router.Router {
	t.Helper()
	r, err := router.New("gatewayapi:v1", router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGatewayAPIGeneratedHTTPRoute(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "gateway-generated", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "gatewayapi:v1"
		c.Spec.Service = sluicev1beta1.CanaryService{
			Port: 9898, Hosts: []string{"www.example.com"}, Timeout: "30s",
			GatewayRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateways"))}},
			Headers:     &sluicev1beta1.Headers{Request: &sluicev1beta1.HeaderOperations{Set: map[string]string{"x-env": "prod"}}},
		}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{
			Interval: "1m", StepWeight: 10,
			SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary", MaxAge: 600},
			Match: []sluicev1beta1.HTTPMatchRequest{
				{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}},
				{QueryParams: map[string]sluicev1beta1.StringMatch{"beta": {Prefix: "yes"}}},
			},
		}
	})
	r := gatewayRouter(t)
	if err := r.Initialize(ctx, c); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		status func(*sluicev1beta1.CanaryStatus)
		routes *traffic.Routes
		want   []string
	}{
		{"taking over sends everything to the primary", nil, nil,
			[]string{"sluice: match[path PathPrefix /] RequestHeaderModifier podinfo-primary:100 podinfo-canary:0"}},
		{"a weighted step pins users to their side with cookies", func(s *sluicev1beta1.CanaryStatus) {
			s.SessionAffinityCookie, s.PrimarySessionAffinityCookie = "canary=abc", "primary=abc"
		}, ptr.To(traffic.Weighted(10)), []string{
			"sluice-0-canary-cookie: match[path PathPrefix /, header Cookie RegularExpression .*canary=abc.*] RequestHeaderModifier podinfo-canary:100",
			"sluice-0-primary-cookie: match[path PathPrefix /, header Cookie RegularExpression .*primary=abc.*] RequestHeaderModifier podinfo-primary:100",
			"sluice: match[path PathPrefix /] RequestHeaderModifier podinfo-primary:90(set-cookie primary=abc; Max-Age=60) podinfo-canary:10(set-cookie canary=abc; Max-Age=600)",
		}},
		{"mirroring copies half the traffic to the canary", nil, ptr.To(traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: 50}),
			[]string{"sluice: match[path PathPrefix /] RequestHeaderModifier mirror podinfo-canary 50% podinfo-primary:100 podinfo-canary:0"}},
		{"an A/B test sends matching requests to the canary", nil, ptr.To(traffic.Routes{Primary: 100, Match: true}), []string{
			"sluice-0-ab-0: match[path PathPrefix /, header x-canary Exact insider] RequestHeaderModifier podinfo-canary:100",
			"sluice-0-ab-1: match[path PathPrefix /, query beta RegularExpression ^yes.*] RequestHeaderModifier podinfo-canary:100",
			"sluice: match[path PathPrefix /] RequestHeaderModifier podinfo-primary:100 podinfo-canary:0",
		}},
		{"after the rollout the canary cookie is expired", func(s *sluicev1beta1.CanaryStatus) {
			s.SessionAffinityCookie, s.PrimarySessionAffinityCookie, s.PreviousSessionAffinityCookie = "", "", "canary=abc"
		}, ptr.To(traffic.PrimaryOnly()), []string{
			"sluice: match[path PathPrefix /] RequestHeaderModifier podinfo-primary:100(set-cookie canary=abc; Max-Age=-1) podinfo-canary:0",
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.status != nil {
				step.status(&c.Status)
			}
			var err error
			if step.routes == nil {
				err = r.Reconcile(ctx, c)
			} else {
				err = r.SetRoutes(ctx, c, *step.routes)
			}
			if err != nil {
				t.Fatal(err)
			}
			route := getHTTPRoute(t, c.Namespace, "podinfo")
			if got := describeHTTPRoute(route); !reflect.DeepEqual(got, step.want) {
				t.Fatalf("rules\n got %q\nwant %q", got, step.want)
			}
			if len(route.Spec.Hostnames) != 1 || route.Spec.Hostnames[0] != "www.example.com" || route.Spec.ParentRefs[0].Name != "public" ||
				*route.Spec.Rules[len(route.Spec.Rules)-1].Timeouts.Request != "30s" {
				t.Fatalf("hostnames %v parents %v", route.Spec.Hostnames, route.Spec.ParentRefs)
			}
			want := traffic.PrimaryOnly()
			if step.routes != nil {
				want = *step.routes
			}
			if got, err := r.Routes(ctx, c); err != nil || got != want {
				t.Fatalf("routes read back %+v (%v), want %+v", got, err, want)
			}
			if err := r.SetRoutes(ctx, c, want); err != nil {
				t.Fatal(err)
			}
			if again := getHTTPRoute(t, c.Namespace, "podinfo"); again.ResourceVersion != route.ResourceVersion {
				t.Fatal("setting the same split again wrote the route")
			}
		})
	}
	t.Run("the route is marked and owned", func(t *testing.T) {
		route := getHTTPRoute(t, c.Namespace, "podinfo")
		if !metav1.IsControlledBy(route, c) || route.Labels["sluice.dev/canary"] != "podinfo" || route.Annotations["kustomize.toolkit.fluxcd.io/reconcile"] != "disabled" {
			t.Fatalf("metadata %+v", route.ObjectMeta)
		}
	})
	t.Run("finalize points the route at the apex Service and lets it outlive the Canary", func(t *testing.T) {
		if err := r.Finalize(ctx, c); err != nil {
			t.Fatal(err)
		}
		route := getHTTPRoute(t, c.Namespace, "podinfo")
		if got := describeHTTPRoute(route); !reflect.DeepEqual(got, []string{"sluice: match[path PathPrefix /] RequestHeaderModifier podinfo:100"}) || len(route.OwnerReferences) != 0 {
			t.Fatalf("after finalize %q, owners %v", got, route.OwnerReferences)
		}
	})
}

// userRoute is an HTTPRoute written by a user: one rule for the Canary's
// apex Service between two rules of their own.
func userRoute(ns string) *gatewayv1.HTTPRoute {
	port := ptr.To(gatewayv1.PortNumber(9898))
	backend := func(name string) []gatewayv1.HTTPBackendRef {
		return []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: port}}}}
	}
	prefix := func(p string) []gatewayv1.HTTPRouteMatch {
		return []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(p)}}}
	}
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Annotations: map[string]string{"team": "web"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public", SectionName: ptr.To(gatewayv1.SectionName("https"))}}},
			Hostnames:       []gatewayv1.Hostname{"shop.example.com", "www.shop.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{Name: ptr.To(gatewayv1.SectionName("auth")), Matches: prefix("/auth"), BackendRefs: backend("auth"),
					Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: ptr.To(gatewayv1.PreciseHostname("auth.internal"))}}}},
				{Matches: prefix("/"), BackendRefs: backend("podinfo"),
					Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "x-shop", Value: "1"}}}}}},
				{Name: ptr.To(gatewayv1.SectionName("static")), Matches: prefix("/static"), BackendRefs: backend("static"),
					Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{Group: "example.com", Kind: "Cache", Name: "static"}}}},
			},
		},
	}
}

func specJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGatewayAPIAdoptedHTTPRouteKeepsTheUsersRules(t *testing.T) {
	ctx := t.Context()
	const ns = "gateway-adopted"
	c := setupCanary(t, ns, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "gatewayapi:v1"
		c.Spec.Service = sluicev1beta1.CanaryService{Port: 9898, RouteRef: &sluicev1beta1.LocalObjectReference{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "shop"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}}
	})
	if err := cp.Client.Create(ctx, userRoute(ns)); err != nil {
		t.Fatal(err)
	}
	original := getHTTPRoute(t, ns, "shop")
	r := gatewayRouter(t)
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, routes := range []traffic.Routes{traffic.Weighted(30), {Primary: 100, Match: true}, traffic.Weighted(100), traffic.PrimaryOnly()} {
		if err := r.SetRoutes(ctx, c, routes); err != nil {
			t.Fatal(err)
		}
		route := getHTTPRoute(t, ns, "shop")
		var rules []gatewayv1.HTTPRouteRule
		for _, rule := range route.Spec.Rules {
			if rule.Name != nil && (*rule.Name == "auth" || *rule.Name == "static") {
				rules = append(rules, rule)
			}
		}
		if specJSON(t, rules) != specJSON(t, []gatewayv1.HTTPRouteRule{original.Spec.Rules[0], original.Spec.Rules[2]}) {
			t.Fatalf("at %s the user's rules changed:\n%s", routes, specJSON(t, rules))
		}
		if specJSON(t, route.Spec.Hostnames) != specJSON(t, original.Spec.Hostnames) || specJSON(t, route.Spec.ParentRefs) != specJSON(t, original.Spec.ParentRefs) {
			t.Fatalf("at %s hostnames or parents changed", routes)
		}
		if route.Annotations["team"] != "web" || len(route.OwnerReferences) != 0 {
			t.Fatalf("at %s the user's metadata changed: %+v", routes, route.ObjectMeta)
		}
		if routes == traffic.Weighted(30) {
			want := []string{
				"auth: match[path PathPrefix /auth] URLRewrite auth:1",
				"-: match[path PathPrefix /] RequestHeaderModifier podinfo-primary:70 podinfo-canary:30",
				"static: match[path PathPrefix /static] ExtensionRef static:1",
			}
			if got := describeHTTPRoute(route); !reflect.DeepEqual(got, want) {
				t.Fatalf("weighted rules\n got %q\nwant %q", got, want)
			}
		}
		if routes.Match {
			if got := describeHTTPRoute(route)[1]; got != "sluice-0-ab-0: match[path PathPrefix /, header x-canary Exact insider] RequestHeaderModifier podinfo-canary:100" {
				t.Fatalf("A/B rule %q: want the user's path and filters with the header added", got)
			}
		}
	}
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	restored := getHTTPRoute(t, ns, "shop")
	if specJSON(t, restored.Spec) != specJSON(t, original.Spec) {
		t.Fatalf("finalize did not give the route back byte for byte:\n got %s\nwant %s", specJSON(t, restored.Spec), specJSON(t, original.Spec))
	}
	if _, ok := restored.Annotations[sluicev1beta1.OriginalConfigurationAnnotation]; ok {
		t.Fatal("the original configuration annotation was left behind")
	}
}

func TestGatewayAPIGRPCRoute(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "gateway-grpc", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "gatewayapi:v1"
		c.Spec.Service = sluicev1beta1.CanaryService{Port: 9898, AppProtocol: "grpc", GatewayRefs: []gatewayv1.ParentReference{{Name: "mesh", Kind: ptr.To(gatewayv1.Kind("Service")), Group: ptr.To(gatewayv1.Group(""))}}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "1"}}}}}
	})
	r := gatewayRouter(t)
	for _, routes := range []traffic.Routes{traffic.Weighted(20), {Primary: 100, Match: true}, {Primary: 100, Mirror: true}} {
		if err := r.SetRoutes(ctx, c, routes); err != nil {
			t.Fatal(err)
		}
		route := &gatewayv1.GRPCRoute{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "podinfo"}, route); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Routes(ctx, c); err != nil || got != routes {
			t.Fatalf("GRPCRoute read back %+v (%v), want %+v", got, err, routes)
		}
		if *route.Spec.ParentRefs[0].Kind != "Service" {
			t.Fatalf("GAMMA parent %+v", route.Spec.ParentRefs[0])
		}
		if routes.Match && (len(route.Spec.Rules) != 2 || route.Spec.Rules[0].Matches[0].Headers[0].Name != "x-canary") {
			t.Fatalf("A/B GRPCRoute rules %+v", route.Spec.Rules)
		}
	}
}
